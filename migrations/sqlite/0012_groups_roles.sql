-- Groups of users and per-client roles, defined by the operator. They reach tokens as the
-- `groups` and `roles` claims; a client may require its users to be in one of its groups.
CREATE TABLE access_groups (
    name       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
CREATE TABLE group_members (
    group_name TEXT NOT NULL REFERENCES access_groups (name) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_name)
);
CREATE TABLE client_roles (
    client_id TEXT NOT NULL,
    role      TEXT NOT NULL,
    PRIMARY KEY (client_id, role)
);
CREATE TABLE role_members (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    role      TEXT NOT NULL,
    PRIMARY KEY (user_id, client_id, role),
    FOREIGN KEY (client_id, role) REFERENCES client_roles (client_id, role) ON DELETE CASCADE
);
-- No cascade: a group a client requires cannot be removed (that would open the client to all).
CREATE TABLE client_required_groups (
    client_id  TEXT NOT NULL,
    group_name TEXT NOT NULL REFERENCES access_groups (name),
    PRIMARY KEY (client_id, group_name)
);

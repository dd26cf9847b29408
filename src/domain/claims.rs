//! Which user claims a grant releases, and where (OIDC Core §5.4 scopes, §5.5 `claims`).

use super::User;
use serde_json::{Map, Value};

/// Claims each scope value requests (OIDC Core §5.4).
pub const SCOPE_CLAIMS: &[(&str, &[&str])] = &[
    (
        "profile",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// Scopes this provider understands; others are dropped from requests.
pub const SCOPES_SUPPORTED: &[&str] =
    &["openid", "profile", "email", "address", "phone", "offline_access", "groups", "roles"];

/// The operator's groups and the client's roles a user has, released as the `groups` and
/// `roles` claims (arrays of names) when the `groups` / `roles` scope was granted.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub groups: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
}

impl Access {
    /// Which of the two the scopes ask for.
    pub fn wanted(scopes: &[String]) -> (bool, bool) {
        (scopes.iter().any(|s| s == "groups"), scopes.iter().any(|s| s == "roles"))
    }

    pub fn claims(&self) -> Map<String, Value> {
        let mut out = Map::new();
        if let Some(g) = &self.groups {
            out.insert("groups".into(), Value::from(g.clone()));
        }
        if let Some(r) = &self.roles {
            out.insert("roles".into(), Value::from(r.clone()));
        }
        out
    }
}

/// Every claim a userinfo response can carry.
pub fn claims_supported() -> Vec<&'static str> {
    let mut v = vec!["sub", "iss", "auth_time", "acr", "amr", "sid", "groups", "roles"];
    for (_, claims) in SCOPE_CLAIMS {
        v.extend_from_slice(claims);
    }
    v
}

/// Where a claim was requested through the `claims` parameter.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    UserInfo,
    IdToken,
}

/// Names requested for `target` in a `claims` parameter value.
pub fn requested_names(claims_param: Option<&str>, target: Target) -> Vec<String> {
    let Some(json) = claims_param else { return Vec::new() };
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(json) else { return Vec::new() };
    let member = match target {
        Target::UserInfo => "userinfo",
        Target::IdToken => "id_token",
    };
    match root.get(member) {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The values of the named claims the user has. `sub` is always added by the caller.
pub fn release(user: &User, names: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    for name in names {
        let value = match name.as_str() {
            "email" => Some(Value::String(user.email.clone())),
            "email_verified" => Some(user.claims.get("email_verified").cloned().unwrap_or(Value::Bool(false))),
            "updated_at" => Some(Value::from(user.updated_at)),
            "preferred_username" => Some(
                user.claims.get("preferred_username").cloned().unwrap_or_else(|| Value::String(user.username.clone())),
            ),
            "phone_number_verified" if user.claims.contains_key("phone_number") => {
                Some(user.claims.get(name).cloned().unwrap_or(Value::Bool(false)))
            }
            other => user.claims.get(other).cloned(),
        };
        if let Some(v) = value {
            out.insert(name.clone(), v);
        }
    }
    out
}

/// The claim names a set of scopes releases at userinfo.
pub fn names_for_scopes(scopes: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    for (scope, claims) in SCOPE_CLAIMS {
        if scopes.iter().any(|s| s == scope) {
            names.extend(claims.iter().map(|c| c.to_string()));
        }
    }
    names
}

/// The scopes whose consent covers the claims a `claims` parameter asks for by name (in the ID
/// token or at userinfo): asking for `email` by name needs the consent `email` would.
pub fn scopes_for_claims(claims_param: Option<&str>) -> Vec<String> {
    let mut names = requested_names(claims_param, Target::UserInfo);
    names.extend(requested_names(claims_param, Target::IdToken));
    SCOPE_CLAIMS
        .iter()
        .filter(|(_, claims)| names.iter().any(|n| claims.contains(&n.as_str())))
        .map(|(scope, _)| scope.to_string())
        .collect()
}

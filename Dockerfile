# Latchkey in a small runtime image. Build: docker build -t latchkey .
# The builder compiles the release binary; the runtime image holds only that binary, the
# shared libraries it links (OpenSSL), CA certificates and curl for health checks, and runs it
# as an unprivileged user.

FROM rust:1-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo .cargo
COPY src src
COPY templates templates
COPY migrations migrations
COPY locales locales
RUN cargo build --release --locked --bin latchkey

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/latchkey --create-home latchkey \
    && mkdir -p /var/lib/latchkey/data /var/lib/latchkey/keys \
    && chown -R latchkey:latchkey /var/lib/latchkey
# The data and keys directories exist, owned by the server's user, before any volume is mounted
# on them: Docker gives a new named volume the ownership of the directory it is mounted on, so
# the `keys` volume of docker-compose.yml is writable by uid 10001 from its first start.
COPY --from=build /src/target/release/latchkey /usr/local/bin/latchkey
USER latchkey
WORKDIR /var/lib/latchkey
ENV LATCHKEY_LISTEN=0.0.0.0:8080 \
    LATCHKEY_DATA_DIR=/var/lib/latchkey/data \
    LATCHKEY_KEYS_DIR=/var/lib/latchkey/keys
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["latchkey"]
CMD ["serve"]

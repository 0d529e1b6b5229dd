# syntax=docker/dockerfile:1
# Multi-stage build: compile a release binary, ship it on a slim base as an unprivileged user.

FROM rust:1.95-slim-bookworm AS build
# gcc builds aws-lc (the crypto library) and the bundled SQLite; no system libraries needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so they are cached while only our sources change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY migrations migrations
COPY src src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/layer-idp --create-home layer-idp
COPY --from=build /src/target/release/layer-idp /usr/local/bin/layer-idp
USER layer-idp
WORKDIR /var/lib/layer-idp
ENV LAYER_IDP_LISTEN=0.0.0.0:8080 \
    LAYER_IDP_DATA_DIR=/var/lib/layer-idp/data \
    LAYER_IDP_KEYS_DIR=/var/lib/layer-idp/keys \
    LAYER_IDP_LOG__FORMAT=json
VOLUME ["/var/lib/layer-idp"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["layer-idp", "healthcheck"]
ENTRYPOINT ["layer-idp"]
CMD ["serve"]

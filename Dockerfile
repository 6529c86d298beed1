# syntax=docker/dockerfile:1
# dp in a container (docker-compose.yml's `scheduler` service). Release build
# in a Rust image (the toolchain of Cargo.toml's rust-version), then only the
# binary on a slim Debian of the same release (same glibc).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The crate registry and target/ are BuildKit cache mounts: a rebuild after a
# source change recompiles dp, not its dependencies (a first build takes
# about 20 minutes on 2 cores, see README "Speed").
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin dp && cp target/release/dp /usr/local/bin/dp

FROM debian:bookworm-slim
# ca-certificates: TLS to S3, PostgreSQL, Slack and SMTP. tini: PID 1, so
# SIGTERM reaches dp and the children of shell tasks are reaped.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tini && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/dp /usr/local/bin/dp
WORKDIR /project
ENTRYPOINT ["/usr/bin/tini", "--", "dp"]
CMD ["--help"]

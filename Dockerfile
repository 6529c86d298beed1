# dp in a container (docker-compose.yml's `scheduler` service). Release build
# in a Rust image, then only the binary on a slim Debian.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin dp && cp target/release/dp /usr/local/bin/dp

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/dp /usr/local/bin/dp
WORKDIR /project
ENTRYPOINT ["dp"]

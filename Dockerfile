# syntax=docker/dockerfile:1
# The billing server (and billingctl) in a small image that runs as a non-root user.
#
#   docker build -t billing-server .
#   docker compose up            # with Postgres, see compose.yaml
#
# Stage 1 compiles in the official Rust image, with cargo's registry and the target directory
# in build caches so a rebuild only recompiles what changed. Stage 2 is distroless: glibc and
# CA certificates, no shell, no package manager, user 65532. The binaries need no OpenSSL
# (rustls) and no libsqlite3 (bundled), so nothing else is installed.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p billing-server -p billingctl \
 && mkdir -p /out /app-owned/data \
 && cp target/release/billing-server target/release/billingctl /out/

FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /out/ /usr/local/bin/
# /app/data, owned by nonroot: the default DATABASE_URL (sqlite://data/billing.sqlite, relative
# to /app) writes there. Distroless has no shell to mkdir/chown, so the empty directory is made
# in the build stage and copied with its owner. Mount a volume on it to keep an SQLite database
# (`docker run -v billing-data:/app/data …`); with Postgres (compose.yaml) it stays empty.
COPY --from=build --chown=nonroot:nonroot /app-owned/ /app/
# The example plan catalog; mount your own over it (PLANS_FILE names another path).
COPY plans.toml /app/plans.toml
ENV BIND_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json \
    PLANS_FILE=/app/plans.toml
USER nonroot:nonroot
EXPOSE 8080
# `docker compose exec billing billingctl events list` runs the operator CLI beside the server,
# with the same configuration.
CMD ["billing-server", "serve"]

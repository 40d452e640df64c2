# syntax=docker/dockerfile:1.7
#
# Container images of the workspace, one build target per image:
#
#   docker build --target nsqd         -t ghcr.io/rustnsq/nsqd:0.1.0         .
#   docker build --target nsqlookupd   -t ghcr.io/rustnsq/nsqlookupd:0.1.0   .
#   docker build --target nsq-operator -t ghcr.io/rustnsq/nsq-operator:0.1.0 .
#   docker build --target nsq          -t ghcr.io/rustnsq/nsq:0.1.0          .
#
# (`docker build .` without --target builds the last stage, nsqd.)
#
# How it is built:
# - cargo-chef splits the build in two layers: `cook` compiles only the dependencies (from
#   recipe.json, which changes only when a Cargo.toml or Cargo.lock does), then the
#   workspace sources are copied and compiled. Editing a .rs file reuses the dependency
#   layer.
# - One builder stage compiles all four binaries with `--locked` (Cargo.lock is the
#   truth); every image target copies its binary out of it, so building all four images
#   compiles the workspace once.
# - Runtime base: distroless `cc` (glibc, libgcc, CA certificates, tzdata; no shell, no
#   package manager), `nonroot` variant: UID/GID 65532, the same UID the operator's pods
#   run as (operator/src/resources/pod.rs RUN_AS_USER). The builder is Debian bookworm, so
#   the binaries link against the glibc of distroless' debian12 images.
# - Nothing at runtime needs a shell: ENTRYPOINT is the binary in exec form, and the
#   operator passes nsqd/nsqlookupd their flags as container `args`.
#
# Image sizes: NOT MEASURED. This Dockerfile was written on a machine without a Docker
# daemon, where no image can be built or pulled. What was measured there: the builder
# stage's cargo commands, run outside Docker on the same build context (cargo-chef 0.1.78,
# rustc 1.95): `cargo chef cook` 5 min, then the source build 3 min on 2 cores, giving
# stripped binaries of nsqd 5.2 MB, nsqlookupd 3.0 MB, nsq-operator 17.7 MB, nsq 6.4 MB.
# Each image is the distroless cc base plus one of those; `docker images` after a build
# gives the real sizes (the e2e workflow prints them).
#
# Build arguments: RUST_VERSION (builder toolchain; the operator crate needs >= 1.89),
# VERSION, REVISION, CREATED and SOURCE_URL (OCI labels; CI passes the real values).

ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot

# ---------------------------------------------------------------- toolchain + cargo-chef
FROM rust:${RUST_VERSION}-bookworm AS chef
ARG CARGO_CHEF_VERSION
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

# ---------------------------------------------------------------- dependency recipe
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---------------------------------------------------------------- build
FROM chef AS builder
# Smaller binaries; no effect on behaviour.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_TERM_COLOR=never
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is reused until a manifest or Cargo.lock changes.
RUN cargo chef cook --release --locked --recipe-path recipe.json \
        -p nsqd -p nsqlookupd -p nsq-operator -p nsq
COPY . .
RUN cargo build --release --locked \
        -p nsqd --bin nsqd \
        -p nsqlookupd --bin nsqlookupd \
        -p nsq-operator --bin nsq-operator \
        -p nsq --bin nsq \
    && mkdir -p /out/data \
    && cp target/release/nsqd target/release/nsqlookupd \
          target/release/nsq-operator target/release/nsq /out/

# ---------------------------------------------------------------- common runtime base
FROM ${RUNTIME_BASE} AS runtime
ARG RUNTIME_BASE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE_URL=""
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.vendor="rustnsq" \
      org.opencontainers.image.base.name="${RUNTIME_BASE}"
USER 65532:65532

# ---------------------------------------------------------------- nsq CLI
# `nsq pub|tail|stat|bench` are clients; `nsq up` runs nsqd + nsqlookupd in one process
# (pass --tcp-address=0.0.0.0:4150 etc. and --broadcast-address to reach it from outside).
FROM runtime AS nsq
LABEL org.opencontainers.image.title="nsq" \
      org.opencontainers.image.description="nsq: publish, tail, stat and benchmark NSQ, or run nsqd and nsqlookupd locally (nsq up)"
COPY --from=builder /out/nsq /usr/local/bin/nsq
COPY --from=builder --chown=65532:65532 /out/data /data
WORKDIR /data
EXPOSE 4150 4151 4160 4161
ENTRYPOINT ["/usr/local/bin/nsq"]
CMD ["--help"]

# ---------------------------------------------------------------- nsq-operator
# Serves /metrics and /healthz on 8080 (--metrics-address).
FROM runtime AS nsq-operator
LABEL org.opencontainers.image.title="nsq-operator" \
      org.opencontainers.image.description="Kubernetes operator running NSQ clusters, topics and channels from NsqCluster, NsqTopic and NsqChannel resources (nsq.rustnsq.dev/v1alpha1)"
COPY --from=builder /out/nsq-operator /usr/local/bin/nsq-operator
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/nsq-operator"]

# ---------------------------------------------------------------- nsqlookupd
# 4160: TCP (nsqd registrations), 4161: HTTP (lookups, /ping, /metrics).
FROM runtime AS nsqlookupd
LABEL org.opencontainers.image.title="nsqlookupd" \
      org.opencontainers.image.description="nsqlookupd: the NSQ discovery daemon (drop-in, in Rust)"
COPY --from=builder /out/nsqlookupd /usr/local/bin/nsqlookupd
EXPOSE 4160 4161
ENTRYPOINT ["/usr/local/bin/nsqlookupd"]

# ---------------------------------------------------------------- nsqd
# 4150: TCP (producers and consumers), 4151: HTTP (API, /ping, /metrics). /data is the
# default --data-path, owned by the runtime user; the operator mounts a volume there.
FROM runtime AS nsqd
LABEL org.opencontainers.image.title="nsqd" \
      org.opencontainers.image.description="nsqd: the NSQ message broker (drop-in, in Rust)"
COPY --from=builder /out/nsqd /usr/local/bin/nsqd
COPY --from=builder --chown=65532:65532 /out/data /data
WORKDIR /data
VOLUME ["/data"]
EXPOSE 4150 4151
ENTRYPOINT ["/usr/local/bin/nsqd"]
CMD ["--data-path=/data"]

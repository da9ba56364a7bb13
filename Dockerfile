# syntax=docker/dockerfile:1.7
#
# One image, four services: group-registry, merge-engine, integration-control and
# refresh-coordinator (plus the `ferry` CLI) in /usr/local/bin. A Deployment's `command`
# chooses the service. One build, one scan, one tag to roll: the binaries share most of
# their code (ferry-kit, ferry-proto, tonic, sea-orm), so four images would be four copies
# of the same dependencies. See ARCHITECTURE.md, "Deployment".
#
#   docker build -t ferry:0.1.0 .

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# protoc is vendored (protoc-bin-vendored) and the TLS stack is rustls: nothing to apt-get.
# Cache mounts keep the cargo registry and target folder between builds; the binaries are
# copied out of the cached target folder, which does not persist into the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        -p group-registry -p merge-engine -p integration-control -p refresh-coordinator -p ferry-cli \
    && mkdir -p /out \
    && cp target/release/group-registry target/release/merge-engine \
          target/release/integration-control target/release/refresh-coordinator \
          target/release/ferry /out/

# glibc and libgcc from Debian 12, like the builder; CA certificates; no shell, no package
# manager. The `nonroot` variant runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="ferry" \
      org.opencontainers.image.description="Ferry's four gRPC services and the ferry CLI" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/ /usr/local/bin/
USER 65532:65532
# gRPC (one per service), plaintext gRPC health (FERRY_HEALTH_LISTEN), Prometheus metrics
# (FERRY_METRICS_LISTEN).
EXPOSE 50051 50052 50053 50054 8081 9090
# No ENTRYPOINT: the command is the service, e.g. `docker run ferry:0.1.0 group-registry`.
CMD ["ferry", "--help"]

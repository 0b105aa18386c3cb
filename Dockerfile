# syntax=docker/dockerfile:1
# Veil's images, one target per binary:
#   docker build --target signalling -t veil-signalling .
#   docker build --target sfu        -t veil-sfu .
#   docker build --target loadtest   -t veil-loadtest .
# Each is a static-enough Rust binary on distroless "cc" (glibc, CA
# certificates, no shell, no package manager), running as a non-root user.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# One build for all three: the workspace shares most of its dependencies.
# The `production` profile (Cargo.toml) is `release` with whole-program
# optimisation: slower to build, faster per packet.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile production --locked -p signalling -p sfu -p loadtest \
    && mkdir -p /out \
    && cp target/production/signalling target/production/sfu target/production/loadtest /out/

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
USER 65532:65532
HEALTHCHECK NONE

FROM runtime AS signalling
COPY --from=build /out/signalling /usr/local/bin/signalling
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/signalling"]
CMD ["serve", "--listen", "0.0.0.0:8080"]

FROM runtime AS sfu
COPY --from=build /out/sfu /usr/local/bin/sfu
EXPOSE 7880/tcp 7881/tcp 7882/udp 9464/tcp
ENTRYPOINT ["/usr/local/bin/sfu"]

FROM runtime AS loadtest
COPY --from=build /out/loadtest /usr/local/bin/loadtest
ENTRYPOINT ["/usr/local/bin/loadtest"]

#!/bin/sh
# Only for a machine that cannot pull from Docker Hub but reaches a Debian mirror, static.rust-lang.org and
# crates.io: builds local stand-ins for the Dockerfile's two base images (debootstrap + rustup), then
#     podman build -f docker/Dockerfile \
#         --build-arg RUST_IMAGE=localhost/iai-rust:1.95-bookworm \
#         --build-arg RUNTIME_IMAGE=localhost/iai-debian:bookworm-slim -t iai-server .
# Run as root with debootstrap installed. EXTRA_CA="/path/a.crt /path/b.crt" adds the CAs of a TLS-intercepting
# proxy to both images (ca-certificates picks them up, NODE_EXTRA_CA_CERTS points npm at the bundle);
# DEBIAN_MIRROR picks the mirror. On this project's development machine:
#     EXTRA_CA="$(echo /usr/local/share/ca-certificates/*.crt)" sh docker/local-bases.sh
set -eu
ENGINE=${ENGINE:-podman}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
RUST_VERSION=${RUST_VERSION:-1.95.0}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

debootstrap --variant=minbase bookworm "$root/fs" "$MIRROR"
cat > "$root/fs/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
EOF
ca_env=
n=0
for ca in ${EXTRA_CA:-}; do
    n=$((n + 1))
    install -D -m 644 "$ca" "$root/fs/usr/local/share/ca-certificates/extra-ca-$n.crt"
    # ca-certificates (installed by both images' first apt step) adds them to the system bundle.
    ca_env=NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
done
rm -rf "$root"/fs/var/cache/apt/archives/*.deb "$root"/fs/var/lib/apt/lists/* "$root"/fs/usr/share/doc/* \
    "$root"/fs/usr/share/man/*
tar -C "$root/fs" -c . | $ENGINE import --change 'CMD ["bash"]' ${ca_env:+--change "ENV $ca_env"} - \
    localhost/iai-debian:bookworm-slim

# Like the official rust:*-bookworm image (rustup, minimal profile, in /usr/local), with a C toolchain.
mkdir "$root/ctx"
cat > "$root/ctx/Containerfile" <<'EOF'
FROM localhost/iai-debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl gcc g++ libc6-dev make \
        pkg-config git python3 && rm -rf /var/lib/apt/lists/*
ARG RUST_VERSION
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH \
    RUST_VERSION=$RUST_VERSION
RUN curl --proto '=https' -sSf -o /tmp/rustup-init \
        https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init \
    && chmod +x /tmp/rustup-init \
    && /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain "$RUST_VERSION" \
    && rm /tmp/rustup-init && chmod -R a+w "$RUSTUP_HOME" "$CARGO_HOME" && rustc --version
EOF
$ENGINE build --build-arg RUST_VERSION="$RUST_VERSION" -t "localhost/iai-rust:${RUST_VERSION%.*}-bookworm" \
    "$root/ctx"

#!/usr/bin/env bash
# Build and run iai-server with the embedded SQLite store under ./data.
# Keys: IAI_SECRET_ID / IAI_SECRET_KEY from the environment (see README for the rest of the configuration).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
exec ./target/release/iai-server "$@"

#!/usr/bin/env bash
# Fetch the pinned models (tools/fetch_models.py), then build and run iai-server with the embedded SQLite
# store under ./data.
# Keys: IAI_SECRET_ID / IAI_SECRET_KEY from the environment (see README for the rest of the configuration).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 tools/fetch_models.py
cargo build --release --locked
# Where cargo put it: ./target unless CARGO_TARGET_DIR (or a cargo config's target-dir) says otherwise.
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/release/iai-server" "$@"

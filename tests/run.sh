#!/usr/bin/env bash
# The project's one test command: unit tests, then the wire suite that drives a live server with the
# official Python SDK, tccli and the Node SDK. Needs ../shared beside the checkout (or IAI_SHARED_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

tests/setup_clients.sh
python3 tools/fetch_models.py
if [ -d "${IAI_SHARED_DIR:-../shared}/spec" ]; then
  python3 tools/gen_api.py --check --spec "${IAI_SHARED_DIR:-../shared}/spec"
fi
cargo build --locked --quiet
cargo test --locked --quiet
IAI_BIN="$PWD/target/debug/iai-server" .venv-tests/bin/python -m pytest tests/py -q "$@"

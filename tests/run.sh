#!/usr/bin/env bash
# The project's one test command: unit tests, then the wire suite that drives a live server with the
# official Python SDK, tccli and the Node SDK, once on each store backend: SQLite (the default), then
# PostgreSQL (a throwaway cluster the suite starts itself; the several-replica tests run in this pass).
# Needs ../shared beside the checkout (or IAI_SHARED_DIR). IAI_TEST_BACKENDS="sqlite" runs one pass.
set -euo pipefail
cd "$(dirname "$0")/.."

tests/setup_clients.sh
python3 tools/fetch_models.py
if [ -d "${IAI_SHARED_DIR:-../shared}/spec" ]; then
  python3 tools/gen_api.py --check --spec "${IAI_SHARED_DIR:-../shared}/spec"
fi
cargo build --locked --quiet
cargo test --locked --quiet
for backend in ${IAI_TEST_BACKENDS:-sqlite postgres}; do
  echo "== the wire suite on $backend"
  # The servers' data directories on tmpfs where there is one: every acknowledged write is fsynced
  # (synchronous=FULL), which on a disk is most of the suite's time and none of what it tests.
  basetemp=()
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    basetemp=(--basetemp "/dev/shm/iai-tests-$backend-$$")
  fi
  status=0
  IAI_TEST_BACKEND=$backend IAI_BIN="$PWD/target/debug/iai-server" \
    .venv-tests/bin/python -m pytest tests/py -q "${basetemp[@]}" "$@" || status=$?
  rm -rf "/dev/shm/iai-tests-$backend-$$"
  [ "$status" -eq 0 ] || exit "$status"
done

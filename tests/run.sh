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
# One pass of the wire suite on backend $1, its output to $2.
wire_suite() {
  local backend=$1 basetemp=()
  # The servers' data directories on tmpfs where there is one: every acknowledged write is fsynced
  # (synchronous=FULL), which on a disk is most of the suite's time and none of what it tests.
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    basetemp=(--basetemp "/dev/shm/iai-tests-$backend-$$")
  fi
  local status=0
  IAI_TEST_BACKEND=$backend IAI_BIN="$PWD/target/debug/iai-server" \
    .venv-tests/bin/python -m pytest tests/py -q "${basetemp[@]}" "${pytest_args[@]}" || status=$?
  rm -rf "/dev/shm/iai-tests-$backend-$$"
  return "$status"
}

pytest_args=("$@")
backends=(${IAI_TEST_BACKENDS:-sqlite postgres})
# The passes run side by side (IAI_TEST_SERIAL=1: one after the other): much of a pass is waiting (servers
# starting, leases running out, outages held, paced jobs), which the other pass fills.
if [ "${IAI_TEST_SERIAL:-0}" = 1 ] || [ "${#backends[@]}" -eq 1 ]; then
  for backend in "${backends[@]}"; do
    echo "== the wire suite on $backend"
    wire_suite "$backend"
  done
  exit 0
fi
logs=$(mktemp -d)
pids=()
for backend in "${backends[@]}"; do
  wire_suite "$backend" > "$logs/$backend" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!backends[@]}"; do
  status=0
  wait "${pids[$i]}" || status=$?
  echo "== the wire suite on ${backends[$i]} (exit $status)"
  cat "$logs/${backends[$i]}"
  [ "$status" -eq 0 ] || failed=$status
done
rm -rf "$logs"
exit "$failed"

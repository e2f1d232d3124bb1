#!/usr/bin/env bash
# The project's one test command: unit tests, then the wire suite that drives a live server with the
# official Python SDK, tccli and the Node SDK, once on each store backend: SQLite (the default), then
# PostgreSQL (a throwaway cluster the suite starts itself; the several-replica tests run in this pass).
# Needs ../shared beside the checkout (or IAI_SHARED_DIR). IAI_TEST_BACKENDS="sqlite" runs one pass.
# IAI_CLIPPY=1 (CI) also runs `cargo clippy --workspace --all-targets -- -D warnings` while the clients
# install.
set -euo pipefail
cd "$(dirname "$0")/.."

# The clients install (downloads, mostly waiting) while the crate builds (CPU).
setup_log=$(mktemp)
tests/setup_clients.sh > "$setup_log" 2>&1 &
setup_pid=$!
# However the run ends, the install is let finish (pip or apt stopped half-way would leave the next run a
# broken venv or a held dpkg lock) and its log shown.
finish_background() {
  local status=$?
  if [ -n "$setup_pid" ]; then
    wait "$setup_pid" 2>/dev/null || true
    cat "$setup_log" || true
  fi
  rm -f "$setup_log" || true
  exit "$status"
}
trap finish_background EXIT
python3 tools/fetch_models.py
# The generated API models against the project's spec copy (and that copy against ../shared/spec where it
# is), and the layers (README, "Layout").
python3 tools/gen_api.py --check
python3 tools/check_layers.py
# Clippy before the build, not beside the wire suites: on a small machine it would change the timing that
# the race tests need (their requests must overlap). The build then reuses its proc-macros and build scripts.
if [ "${IAI_CLIPPY:-0}" = 1 ]; then
  cargo clippy --locked --quiet --workspace --all-targets -- -D warnings
fi
cargo build --locked --quiet
# Examples are checked by clippy (CI), not built here: each would link the whole crate again.
cargo test --locked --quiet --workspace --lib --bins --tests
setup_status=0
wait "$setup_pid" || setup_status=$?
setup_pid=
cat "$setup_log"
[ "$setup_status" -eq 0 ] || exit "$setup_status"
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

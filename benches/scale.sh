#!/usr/bin/env bash
# A group of a million faces: enrolment through the store, index rebuild, search and memory
# (examples/scale.rs), then the time the real server takes from launch to listening on that database.
#
#     bash benches/scale.sh [faces=1000000] [data-dir=/tmp/iai-scale]
set -euo pipefail
cd "$(dirname "$0")/.."
faces="${1:-1000000}"
dir="${2:-/tmp/iai-scale}"
cargo build --release --quiet
cargo build --release --quiet --example scale
python3 tools/fetch_models.py > /dev/null
rm -rf "$dir"
target/release/examples/scale "$dir" "$faces"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start=$(date +%s.%N)
IAI_LOG=warn target/release/iai-server --disable-signature-check --listen "127.0.0.1:$port" \
    --data-dir "$dir" --models-dir models &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 $pid 2>/dev/null || { echo "the server exited"; exit 1; }
    sleep 0.05
done
echo "server start with $faces faces in SQLite: $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s to listening"
echo "server resident memory: $(awk '/VmRSS/ {printf "%.0f MB", $2 / 1024}' /proc/$pid/status)"

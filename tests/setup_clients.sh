#!/usr/bin/env bash
# Install the official clients the wire tests drive, into ignored folders of the checkout:
#   .venv-tests/          Python SDK, tccli, pytest (tests/requirements.txt)
#   tests/node/node_modules/  Node SDK (tests/node/package-lock.json)
# Idempotent: a folder that already matches its pin list is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-tests
stamp="$venv/.requirements.sha256"
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python SDK, tccli and pytest into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
  echo "$want" > "$stamp"
fi

lock_stamp=tests/node/node_modules/.lock.sha256
want=$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$lock_stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing the Node SDK into tests/node/node_modules"
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$lock_stamp"
fi

#!/usr/bin/env bash
# Install the official clients the wire tests drive, into ignored folders of the checkout:
#   .venv-tests/          Python SDK, tccli, pytest, selenium (tests/requirements.txt)
#   tests/node/node_modules/  Node SDK (tests/node/package-lock.json)
# and, from Debian packages, the headless browser of the console tests (tests/py/test_console.py) and the
# PostgreSQL 15 that the PostgreSQL runs start for themselves (tests/py/postgres.py).
# Idempotent: a folder that already matches its pin list is left alone, installed packages are not touched.
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

# Headless Chromium and its WebDriver (/usr/bin/chromium, /usr/bin/chromedriver) for the console's browser tests,
# and a CJK font so that the Chinese screenshots are legible. Selenium uses this chromedriver; it never downloads one.
debs=(chromium chromium-driver fonts-wqy-microhei postgresql-15)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} (apt)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  log=$(mktemp)
  export DEBIAN_FRONTEND=noninteractive
  # Package lists may be missing or stale (fresh containers): update and try again once.
  if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    if ! { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      echo "setup: could not install ${missing[*]}" >&2
      exit 1
    fi
  fi
  rm -f "$log"
fi

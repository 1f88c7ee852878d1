#!/usr/bin/env bash
# Ralph (xAPI learning record store) for the tests, in its own virtualenv: it pins its own
# dependencies (fastapi, httpx, uvicorn ...), which must not meet Cairn's. Idempotent: a second
# run with Ralph already installed at a satisfying version changes nothing.
#
#   bash deploy/ralph/install.sh [VENV]        # default: .venv-ralph at the repository root
#
# Extras: `lrs` is the API server (fastapi, uvicorn, bcrypt), `cli` the `ralph` command; the
# file-system backend needs none. `requests` is imported by Ralph's API (its OIDC module) but
# declared by no extra we install.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=${1:-.venv-ralph}
spec='ralph-malph[cli,lrs]>=5.1.0,<6'

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if "$venv/bin/python" - <<'PY' 2>/dev/null; then
import importlib.metadata as m, sys
v = tuple(int(p) for p in m.version("ralph-malph").split(".")[:2])
import bcrypt, fastapi, requests, uvicorn, ralph.cli  # noqa: F401  (what the server imports)
sys.exit(0 if (5, 1) <= v < (6, 0) else 1)
PY
  echo "ralph: already installed in $venv ($("$venv/bin/ralph" --version 2>/dev/null || echo '?'))"
  exit 0
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$spec" 'requests>=2.32'
echo "ralph: installed in $venv ($("$venv/bin/ralph" --version))"

#!/usr/bin/env bash
# Set up (or refresh) .venv and run the whole test suite: lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
source scripts/_services.sh
echo "== ruff" && .venv/bin/ruff check . && .venv/bin/ruff format --check . >/dev/null
echo "== mypy" && .venv/bin/mypy
echo "== pytest" && .venv/bin/python -m pytest "$@"

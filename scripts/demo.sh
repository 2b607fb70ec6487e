#!/usr/bin/env bash
# Set up .venv, then start a local control plane and agent host and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
exec .venv/bin/maosctl up --demo "$@"

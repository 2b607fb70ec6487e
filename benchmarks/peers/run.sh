#!/usr/bin/env bash
# MAOS against Ray, Celery and Dask on the same machine, one table (see README.md beside this file).
#
#   benchmarks/peers/run.sh [--quick] [--only maos,ray,celery,dask] [--json-out FILE] [--redis-url URL]
#
# The peers live only in benchmarks/peers/.venv (never project dependencies).
# Each peer is installed on its own, so one that cannot install here leaves the
# others running; its column then says why (the pip log is .venv/install-NAME.log).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi

# Install again only when the project's metadata or this script changed, or the last install was incomplete.
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ "$repo/pyproject.toml" -nt "$stamp" ] || [ "$here/run.sh" -nt "$stamp" ]; then
  echo "installing MAOS and the peers into $venv ..." >&2
  if ! "$venv/bin/python" -m pip install -e "$repo" >"$venv/install-maos.log" 2>&1; then
    echo "error: could not install MAOS into $venv (see $venv/install-maos.log)" >&2
    exit 1
  fi
  complete=1
  for spec in "ray" "celery[redis]" "dask[distributed]"; do
    name="${spec%%[*}"
    if ! "$venv/bin/python" -m pip install "$spec" >"$venv/install-$name.log" 2>&1; then
      echo "could not install $spec (see $venv/install-$name.log); its column will say so" >&2
      complete=0
    fi
  done
  if [ "$complete" = 1 ]; then touch "$stamp"; fi
fi

cd "$repo"
exec "$venv/bin/python" -m benchmarks.peers.harness "$@"

#!/usr/bin/env bash
# MAOS against Ray, Celery and Dask on the same machine, one table.
#
#   benchmarks/peers/run.sh [--quick] [--only maos,ray,...] [--json-out FILE]
#
# The peers live only in benchmarks/peers/.venv (never project dependencies).
# Each peer is installed on its own, so one that cannot install here leaves the
# others running; its column then says why (the log is in .venv/install-NAME.log).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
fi

# Reinstall only when the project's metadata or this script changed since the last install.
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ "$repo/pyproject.toml" -nt "$stamp" ] || [ "${BASH_SOURCE[0]}" -nt "$stamp" ]; then
  echo "installing MAOS and the peers into $venv ..." >&2
  "$venv/bin/python" -m pip install -q -e "$repo"
  for spec in "ray" "celery[redis]" "dask[distributed]"; do
    name="${spec%%[*}"
    if ! "$venv/bin/python" -m pip install -q "$spec" >"$venv/install-$name.log" 2>&1; then
      echo "could not install $spec (see $venv/install-$name.log); its column will say so" >&2
    fi
  done
  touch "$stamp"
fi

cd "$repo"
exec "$venv/bin/python" -m benchmarks.peers.harness "$@"

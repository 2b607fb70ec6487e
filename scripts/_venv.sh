# Sourced by the scripts: create .venv with Python 3.11+ and install the project (idempotent, quiet).
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY="$candidate"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "error: MAOS needs Python 3.11 or newer on PATH (or set PYTHON=...)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.maos-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "== installing MAOS and its dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v -i '^warning' || true
  .venv/bin/python -c 'import grpc, maos.controlplane, maos.agenthost, maos.client' \
    || { echo "error: installing into .venv failed; see the pip output above" >&2; exit 1; }
  touch "$stamp"
fi

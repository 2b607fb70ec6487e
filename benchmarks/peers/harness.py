"""MAOS against Ray, Celery and Dask on the same workloads and machine: one table, one JSON file.

    benchmarks/peers/run.sh [--quick] [--only maos,ray,celery,dask] [--json-out FILE]

(run.sh makes benchmarks/peers/.venv with the peers and runs this in it.)
Each system runs in its own subprocess (python -m benchmarks.peers.run_NAME),
one after the other so they never compete for the cores, with 2 worker
processes each. A system that is not installed, does not start or exceeds
--timeout gets a column that says why; the others still run. Each runner's
output goes to a log file beside the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

from benchmarks.peers import common

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
STOP_GRACE_S = 30.0


def _systems(text: str) -> list[str]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in common.SYSTEMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown system {', '.join(unknown) or '(none)'}; choose from {','.join(common.SYSTEMS)}"
        )
    return names


def _stop_runner(process: subprocess.Popen[bytes]) -> None:
    """Stop a runner that overran: SIGTERM lets it stop its system; whatever it started and left is then killed."""
    try:
        tree = psutil.Process(process.pid).children(recursive=True)  # daemons in sessions of their own too
    except psutil.NoSuchProcess:
        tree = []
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for leftover in tree + [p for p in psutil.process_iter() if _session(p.pid) == process.pid]:
        with contextlib.suppress(psutil.Error):
            leftover.kill()


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "(no output)"


def run_system(system: str, *, quick: bool, timeout: float, env: dict[str, str], out_dir: Path) -> dict[str, Any]:
    """One runner in a subprocess; its result, or a result whose `error` says why there is none."""
    out, log = out_dir / f"{system}.json", out_dir / f"{system}.log"
    out.unlink(missing_ok=True)
    argv = [sys.executable, "-m", f"benchmarks.peers.run_{system}", "--out", str(out)] + (["--quick"] if quick else [])
    failed: dict[str, Any] = {"system": system, "version": None, "workers": common.WORKERS}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop_runner(process)
            return failed | {"error": f"timed out: no result after {timeout:.0f} s (log: {log})"}
    if not out.exists():
        return failed | {"error": f"runner exited with {process.returncode}: {_last_line(log)} (log: {log})"}
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer and smaller rounds (a smoke run)")
    parser.add_argument("--only", type=_systems, default=list(common.SYSTEMS), help="comma-separated systems to run")
    parser.add_argument("--json-out", type=Path, default=HERE / "results" / "peers.json", help="where the JSON goes")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="Celery's broker and backend (flushed)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per system (default 600 quick, 1800)")
    args = parser.parse_args()
    sizes = common.QUICK if args.quick else common.FULL
    timeout = args.timeout or (600.0 if args.quick else 1800.0)
    out_dir = args.json_out.resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # The workers of every system import benchmarks.peers.workloads by name.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["MAOS_PEERS_REDIS_URL"] = args.redis_url

    machine = common.machine()  # the load average before the run
    results = []
    for system in args.only:
        print(f"{common.TITLES[system]}: running ...", file=sys.stderr, flush=True)
        began = time.monotonic()
        result = run_system(system, quick=args.quick, timeout=timeout, env=env, out_dir=out_dir)
        status = f"failed: {result['error']}" if result.get("error") else "done"
        print(f"{common.TITLES[system]}: {status} ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
        results.append(result)

    machine["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    when, run = dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "quick" if args.quick else "full"
    document = {
        "when": when,
        "run": run,
        "machine": machine,
        "workers": common.WORKERS,
        "sizes": asdict(sizes),
        "systems": {r["system"]: r for r in results},
    }
    args.json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(
        f"MAOS vs peers — {common.WORKERS} worker processes each, {machine['cores']} cores, "
        f"Python {machine['python']}, {run} run ({sizes.rounds} rounds), {when}; "
        f"load average {machine['load_average'][0]:.2f} before, {machine['load_average_after'][0]:.2f} after"
    )
    print(common.render(results, sizes))
    print(f"JSON: {args.json_out}")


if __name__ == "__main__":
    main()

"""What every system's runner shares: the workloads' sizes and timing, the statistics, and the one table.

Each runner (run_maos.py, run_ray.py, ...) only knows how to start its system
with N worker processes and how to express four operations in it (the
`Cluster` protocol); `measure` times them all the same way, so the figures
differ only by the system under them.

Workloads (all with 2 worker processes, except the 1-worker half of the speedup):

- no-op throughput: N no-op tasks submitted (each system's batch API) and
  awaited with their results; tasks per second, median over rounds.
- round trip: one no-op task submitted and its result awaited, one at a time;
  p50 and p99 over every sample of every round.
- fan-out/fan-in: 1,000 no-op tasks, then one reducer over their results;
  wall time from the first submit to the reducer's result, median over rounds.
- CPU-bound speedup: the same CPU-bound function K times on 1 worker and on
  2 workers (a fresh cluster for each, alternating round by round); speedup =
  median 1-worker time / median 2-worker time.

The rounds interleave the 2-worker workloads (throughput, round trips,
fan-in) so that other load on the shared machine falls on all alike.
Every result is checked, so a system that drops or garbles work fails its
line instead of looking fast.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from maos.client.cli._output import render_table

from benchmarks.peers import workloads

WORKERS = 2
TIMEOUT_S = 300.0  # any single wait; a hung system fails its line instead of the whole run
SYSTEMS = ("maos", "ray", "celery", "dask")
TITLES = {"maos": "MAOS", "ray": "Ray", "celery": "Celery", "dask": "Dask"}

T = TypeVar("T")


class Cluster(Protocol):
    """One running system with its workers, as the workloads see it. Every call blocks until the results are in."""

    def noop_many(self, n: int) -> list[int]:
        """Run noop(i) for i in range(n), submitted as the system submits many tasks; the results in order."""
        ...

    def noop_one(self, x: int) -> int:
        """Submit noop(x) alone and wait for its result."""
        ...

    def fan_in(self, width: int) -> int:
        """noop(i) for i in range(width), then one reducer task over their results; the reducer's result."""
        ...

    def cpu_many(self, tasks: int, iterations: int) -> list[int]:
        """burn(iterations), `tasks` times in parallel; the results."""
        ...


Start = Callable[[int], AbstractContextManager[Cluster]]
"""Starts a system with the given number of worker processes, yields it, and stops it on exit."""


@dataclass(frozen=True)
class Sizes:
    """How much of each workload one run does."""

    rounds: int
    noop_tasks: int
    trips: int  # round-trip samples in all, spread over the rounds
    fan_width: int
    cpu_tasks: int
    cpu_iterations: int  # about 0.25 s of pure Python per task on the development machine


FULL = Sizes(rounds=5, noop_tasks=5_000, trips=500, fan_width=1_000, cpu_tasks=8, cpu_iterations=4_000_000)
QUICK = Sizes(rounds=2, noop_tasks=1_000, trips=100, fan_width=1_000, cpu_tasks=4, cpu_iterations=2_000_000)


class WrongResult(Exception):
    """A system returned something other than what the workload computes."""


# ---------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    if not values:
        raise ValueError("percentile of an empty sample")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sample."""
    if not values:
        raise ValueError("median of an empty sample")
    return statistics.median(values)


def advantage(maos: float | None, peer: float | None, *, higher_is_better: bool) -> float | None:
    """How many times better MAOS is than the peer on one measure (> 1: MAOS ahead); None if either is missing."""
    if maos is None or peer is None or maos <= 0 or peer <= 0:
        return None
    return maos / peer if higher_is_better else peer / maos


def reason(exc: BaseException) -> str:
    """One line that says what went wrong."""
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:300]


# ------------------------------------------------------------------- timing


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _expect(what: str, got: object, want: object) -> None:
    if got != want:
        shown = repr(got)
        raise WrongResult(f"{what}: wrong result {shown[:80]}{'...' if len(shown) > 80 else ''}")


def _noop_throughput(cluster: Cluster, sizes: Sizes, _round: int) -> list[float]:
    n = sizes.noop_tasks
    elapsed, got = timed(lambda: cluster.noop_many(n))
    _expect("no-op tasks", got, list(range(n)))
    return [n / elapsed]


def _round_trips(cluster: Cluster, sizes: Sizes, round_: int) -> list[float]:
    per_round = math.ceil(sizes.trips / sizes.rounds)
    count = min(per_round, sizes.trips - round_ * per_round)
    samples = []
    for i in range(count):
        elapsed, got = timed(functools.partial(cluster.noop_one, i))
        _expect("round trip", got, i)
        samples.append(elapsed * 1e3)
    return samples


def _fan_in(cluster: Cluster, sizes: Sizes, _round: int) -> list[float]:
    elapsed, got = timed(lambda: cluster.fan_in(sizes.fan_width))
    _expect("fan-in reducer", got, sum(range(sizes.fan_width)))
    return [elapsed]


def _cpu(cluster: Cluster, sizes: Sizes, _round: int) -> list[float]:
    elapsed, got = timed(lambda: cluster.cpu_many(sizes.cpu_tasks, sizes.cpu_iterations))
    _expect("CPU-bound tasks", got, [workloads.burn(sizes.cpu_iterations)] * sizes.cpu_tasks)
    return [elapsed]


Step = Callable[[Cluster, Sizes, int], list[float]]
TWO_WORKER_STEPS: tuple[tuple[str, Step], ...] = (
    ("noop_throughput", _noop_throughput),
    ("round_trip", _round_trips),
    ("fan_out_fan_in", _fan_in),
)


class CouldNotStart(Exception):
    """The system did not come up (the runner reports it in place of figures)."""


@dataclass
class _Run:
    samples: dict[str, list[float]]
    errors: dict[str, str]


def _warm_up(cluster: Cluster, sizes: Sizes, workers: int, steps: Sequence[tuple[str, Step]]) -> None:
    # First calls pay for imports, worker start and connection set-up; none of that is what we compare.
    names = {name for name, _ in steps}
    if names & {"noop_throughput", "round_trip", "fan_out_fan_in"}:
        cluster.noop_many(min(sizes.noop_tasks, 500))
        for i in range(10):
            cluster.noop_one(i)
    if "fan_out_fan_in" in names:
        cluster.fan_in(sizes.fan_width)
    cluster.cpu_many(workers, sizes.cpu_iterations // 20)


def _session(
    start: Start, workers: int, steps: Sequence[tuple[str, Step]], sizes: Sizes, rounds: Sequence[int], run: _Run
) -> None:
    """Start the system with `workers` workers, warm it up, run `steps` for each of `rounds`, stop it."""
    steps = [(name, step) for name, step in steps if name not in run.errors]
    if not steps:
        return
    started = False
    try:
        with start(workers) as cluster:
            started = True
            try:
                _warm_up(cluster, sizes, workers, steps)
            except Exception as exc:  # a system that cannot run the warm-up cannot run the workloads either
                for name, _ in steps:
                    run.errors.setdefault(name, f"warm-up failed: {reason(exc)}")
                return
            for round_ in rounds:
                for name, step in steps:
                    if name in run.errors:
                        continue
                    try:
                        run.samples.setdefault(name, []).extend(step(cluster, sizes, round_))
                    except Exception as exc:  # one failing workload must not hide the others' figures
                        run.errors[name] = reason(exc)
                    _log(f"round {round_ + 1}/{sizes.rounds}: {name} ({workers} workers) done")
    except Exception as exc:
        if not started:
            raise CouldNotStart(f"could not start with {workers} worker(s): {reason(exc)}") from exc
        run.errors.setdefault("shutdown", reason(exc))


def measure(start: Start, sizes: Sizes) -> dict[str, Any]:
    """Every workload on `start`'s system; figures per workload and an `errors` map for the ones that failed.

    The 2-worker workloads share one cluster. The CPU-bound job then runs on a
    fresh 1-worker and a fresh 2-worker cluster in turn, once per round, so the
    two halves of the speedup are measured side by side in time rather than
    minutes apart. Raises CouldNotStart when the first 2-worker cluster does not come up.
    """
    run = _Run(samples={}, errors={})
    _session(start, WORKERS, TWO_WORKER_STEPS, sizes, range(sizes.rounds), run)
    for round_ in range(sizes.rounds):
        for workers, name in ((1, "cpu_one_worker"), (WORKERS, "cpu_two_workers")):
            try:
                _session(start, workers, ((name, _cpu),), sizes, [round_], run)
            except CouldNotStart as exc:
                run.errors[name] = str(exc)
    return summarise(run.samples, run.errors, sizes)


def summarise(samples: dict[str, list[float]], errors: dict[str, str], sizes: Sizes) -> dict[str, Any]:
    """The per-workload figures from the raw samples (a workload without samples is left out)."""
    out: dict[str, Any] = {"sizes": asdict(sizes), "errors": dict(errors)}
    if rates := samples.get("noop_throughput"):
        out["noop_throughput"] = {
            "tasks": sizes.noop_tasks,
            "runs_per_s": [round(r) for r in rates],
            "median_per_s": median(rates),
        }
    if trips := samples.get("round_trip"):
        out["round_trip"] = {"samples": len(trips), "p50_ms": percentile(trips, 50), "p99_ms": percentile(trips, 99)}
    if fans := samples.get("fan_out_fan_in"):
        out["fan_out_fan_in"] = {
            "width": sizes.fan_width,
            "runs_s": [round(t, 4) for t in fans],
            "median_s": median(fans),
        }
    one, two = samples.get("cpu_one_worker"), samples.get("cpu_two_workers")
    if one or two:
        cpu: dict[str, Any] = {"tasks": sizes.cpu_tasks, "iterations": sizes.cpu_iterations}
        if one:
            cpu |= {"one_worker_runs_s": [round(t, 3) for t in one], "one_worker_s": median(one)}
        if two:
            cpu |= {"two_workers_runs_s": [round(t, 3) for t in two], "two_workers_s": median(two)}
        if one and two:
            cpu["speedup"] = median(one) / median(two)
        out["cpu_speedup"] = cpu
    return out


# ------------------------------------------------------------------ runners


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def runner_main(system: str, open_system: Callable[[], tuple[str, Start]]) -> None:
    """The command line of one runner: measure `system` and write its result as JSON to --out.

    `open_system` imports the system (ImportError: not installed here) and returns its version and starter.
    """
    parser = argparse.ArgumentParser(description=f"Run the peer workloads on {TITLES[system]}.")
    parser.add_argument("--quick", action="store_true", help="fewer and smaller rounds (a smoke run)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    args = parser.parse_args()
    # The harness's timeout sends SIGTERM: exit through the finally blocks, which stop the system's daemons.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(128 + signal.SIGTERM))
    sizes = QUICK if args.quick else FULL
    result: dict[str, Any] = {"system": system, "version": None, "workers": WORKERS, "error": None}
    try:
        version, start = open_system()
    except ImportError as exc:
        result["error"] = f"not installed: {reason(exc)} (benchmarks/peers/run.sh installs the peers)"
    else:
        result["version"] = version
        _log(f"{system} {version}: measuring ({'quick' if args.quick else 'full'} run)")
        try:
            result |= measure(start, sizes)
        except CouldNotStart as exc:
            result["error"] = str(exc)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def machine() -> dict[str, Any]:
    """What the figures were measured on, with the load average now (other work on a shared box skews them)."""
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


# -------------------------------------------------------------------- table

# (label, workload, figure, higher is better, format)
MEASURES: tuple[tuple[str, str, str, bool, str], ...] = (
    ("no-op throughput, {noop_tasks:,} tasks (tasks/s, median)", "noop_throughput", "median_per_s", True, "{:,.0f}"),
    ("round trip p50 (ms)", "round_trip", "p50_ms", False, "{:.2f}"),
    ("round trip p99 (ms)", "round_trip", "p99_ms", False, "{:.2f}"),
    ("fan-out/fan-in, {fan_width:,} + reducer (s, median)", "fan_out_fan_in", "median_s", False, "{:.3f}"),
    ("CPU-bound x{cpu_tasks}, 1 worker (s, median)", "cpu_speedup", "one_worker_s", False, "{:.2f}"),
    ("CPU-bound x{cpu_tasks}, 2 workers (s, median)", "cpu_speedup", "two_workers_s", False, "{:.2f}"),
    ("CPU-bound speedup, 2 workers vs 1 (x)", "cpu_speedup", "speedup", True, "{:.2f}"),
)


def _figure(result: dict[str, Any], workload: str, figure: str) -> float | None:
    value = result.get(workload, {}).get(figure)
    return float(value) if isinstance(value, int | float) else None


def _status(result: dict[str, Any]) -> str:
    if error := result.get("error"):
        return f"{str(error).split(':')[0]}, see below"  # "not installed", "could not start ...", "timed out ..."
    return "ok" if not result.get("errors") else "partial, see below"


def render(results: Sequence[dict[str, Any]], sizes: Sizes) -> str:
    """One table: a row per measure, MAOS first, then each peer's figure with MAOS's advantage over it."""
    by_name = {r["system"]: r for r in results}
    maos = by_name.get("maos", {"system": "maos", "error": "not run"})
    order = [by_name[s] for s in SYSTEMS if s in by_name] + [r for r in results if r["system"] not in SYSTEMS]
    headers = ["measure"] + [f"{TITLES.get(r['system'], r['system'])} {r.get('version') or ''}".strip() for r in order]
    rows: list[list[object]] = [["status", *(_status(r) for r in order)]]
    labels = asdict(sizes)
    for label, workload, figure, higher, fmt in MEASURES:
        base = _figure(maos, workload, figure)
        row: list[object] = [label.format(**labels)]
        for r in order:
            value = _figure(r, workload, figure)
            if value is None:
                row.append("-")
                continue
            cell = fmt.format(value)
            ratio = advantage(base, value, higher_is_better=higher) if r["system"] != "maos" else None
            row.append(f"{cell} ({ratio:.2f}x)" if ratio is not None else cell)
        rows.append(row)
    lines = [render_table(headers, rows, right=range(1, len(headers)))]
    lines.append(
        "(Nx) after a peer's figure: how many times better MAOS is on that line "
        "(throughput and speedup: MAOS / peer; times: peer / MAOS); below 1.00x the peer is ahead."
    )
    for r in order:
        title = TITLES.get(r["system"], r["system"])
        if r.get("error"):
            lines.append(f"{title}: {r['error']}")
        for workload, why in (r.get("errors") or {}).items():
            lines.append(f"{title}, {workload}: {why}")
    return "\n".join(lines)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size`."""
    for i in range(0, len(items), size):
        yield items[i : i + size]

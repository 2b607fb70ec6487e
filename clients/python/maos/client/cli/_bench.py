"""`maosctl bench [--quick]`: the performance guide's six benchmarks against the connected cluster.

The benchmarks live in maos.client.bench; this command wires options, shows
progress on stderr (redrawn in place on a terminal) and prints the report.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..bench import FULL, QUICK, TITLES, run_bench
from ._bench_report import bench_text
from ._common import CliState, format_option, pass_state
from ._terminal import is_tty


class _Progress:
    """Progress lines on stderr: one per step, or one line redrawn in place on a terminal."""

    def __init__(self) -> None:
        self._live = is_tty(sys.stderr)
        self._open = False

    def __call__(self, message: str) -> None:
        if self._live:
            click.echo(f"\r\x1b[2K{message}", err=True, nl=False)
            self._open = True
        else:
            click.echo(message, err=True)

    def close(self) -> None:
        if self._open:
            click.echo("\r\x1b[2K", err=True, nl=False)
            self._open = False


@click.command("bench")
@click.option("--quick", is_flag=True, help="Small sizes: every benchmark in a few seconds (for CI).")
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(tuple(TITLES)),
    help="Run only this benchmark (repeatable); default: all six.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the analyst's CSV shards; must be readable by the agent hosts (default: a temp dir).",
)
@format_option
@pass_state
def bench(state: CliState, quick: bool, only: tuple[str, ...], data_dir: Path | None) -> None:
    """Benchmark the connected cluster: task submission, agent spawning, parallel efficiency,
    communication, database and storage I/O, with recommendations.

    Run it on an idle cluster: other work shares the slots and skews the
    figures. Everything it creates (tasks, state keys, messages) is removed.
    """
    progress = _Progress()
    try:
        doc = run_bench(state.client(), QUICK if quick else FULL, progress=progress, data_dir=data_dir, only=only)
    finally:
        progress.close()
    state.emit(doc, lambda: bench_text(doc, TITLES))

"""The root `maosctl` group and the one place errors become exit codes."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from maos.errors import MaosError

from ._common import FORMATS, CliState, endpoint_option

EXIT_ERROR = 1


def fail(message: str) -> None:
    """Print one `error: ...` line on stderr (the CLI's only error format)."""
    click.echo(f"error: {' '.join(message.split())}", err=True)


class MaosGroup(click.Group):
    """A click group that turns MaosError into `error: <message>` and exit 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MaosError as exc:
            fail(str(exc))
            ctx.exit(EXIT_ERROR)
        finally:
            state = ctx.find_object(CliState)
            if state is not None and ctx.parent is None:
                state.close()


@click.group(cls=MaosGroup, context_settings={"help_option_names": ["-h", "--help"]})
@endpoint_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS, case_sensitive=False),
    default="table",
    show_default=True,
    help="Output format for every command that prints something.",
)
@click.version_option(package_name="maos", prog_name="maosctl")
@click.pass_context
def cli(ctx: click.Context, endpoint: str, output_format: str) -> None:
    """Control MAOS, the multi-agent orchestration system.

    Start a local control plane and agent host with `maosctl up`, then submit
    work with `maosctl task submit`.
    """
    state = ctx.ensure_object(CliState)
    state.endpoint = endpoint
    state.format = output_format.lower()


def main() -> None:
    """Console-script entry point (`maosctl`, `maos`)."""
    try:
        # `maos` is an alias (the user guide's spelling); help and usage name whichever was typed.
        cli.main(prog_name=os.path.basename(sys.argv[0]) or "maosctl")
    except BrokenPipeError:
        # `maosctl task list | head`: the reader left; that is not an error worth a traceback.
        sys.stderr.close()
        sys.exit(0)

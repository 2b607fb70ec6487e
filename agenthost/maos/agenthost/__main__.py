"""`python -m maos.agenthost` (also the `maos-agenthost` script): run an agent host daemon."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Sequence

from maos import tracing
from maos.errors import MaosError

from ._config import config_from_args
from ._logging import configure_logging


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, configure JSON logging, run until SIGTERM/SIGINT; the exit code."""
    # Collect the young generation less often: per-task objects are short-lived, and
    # frequent collections show up as latency spikes on the result path.
    gc.set_threshold(50_000, 20, 100)
    try:
        config = config_from_args(argv)
    except MaosError as exc:
        print(f"maos agenthost: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, host_id=config.host_id)
    import uvloop

    from ._daemon import run_agent_host

    try:
        uvloop.run(run_agent_host(config))
    except MaosError as exc:
        logging.getLogger("maos.agenthost").error("cannot run the agent host: %s", exc)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130
    except Exception:
        logging.getLogger("maos.agenthost").exception("the agent host failed")
        return 1
    finally:
        tracing.shutdown()  # export the last spans (bounded: an unreachable collector cannot hang exit)
    return 0


if __name__ == "__main__":
    sys.exit(main())

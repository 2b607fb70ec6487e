"""`python -m maos.agenthost.worker`: an agent worker process (started by the host, not by hand)."""

from __future__ import annotations

import sys

from ._worker_main import main

if __name__ == "__main__":
    sys.exit(main())

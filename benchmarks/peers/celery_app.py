"""The Celery app of the peer benchmark: the workloads as Celery tasks, Redis as broker and result backend.

Imported by run_celery.py (the client) and by the worker it starts
(`celery -A benchmarks.peers.celery_app worker`). The Redis URL comes from
MAOS_PEERS_REDIS_URL (a database of its own, flushed before and after a run).
"""

from __future__ import annotations

import os

from celery import Celery

from benchmarks.peers import workloads

REDIS_URL = os.environ.get("MAOS_PEERS_REDIS_URL", "redis://127.0.0.1:6379/7")

app = Celery("maos_peers", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

noop = app.task(name="peers.noop")(workloads.noop)
total = app.task(name="peers.total")(workloads.total)
burn = app.task(name="peers.burn")(workloads.burn)

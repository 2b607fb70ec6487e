"""Benchmark 4, communication latency: messages between two tasks' mailboxes, and state put/get.

A message can only be sent to an unfinished task, and no built-in agent waits
around, so the bench makes two tasks that stay unfinished until it cancels
them: a workflow whose `sender` and `receiver` (echo) depend on a `gate` that
cannot succeed (an analyst task without a data path, retried once after an
hour). The sender task sends to the receiver's mailbox; a thread reads that
mailbox with a long poll, as an agent blocked in `receive` does, and
acknowledges every message. Latency is the send call's start to the moment
the receive returns it, on one clock (this process's). State latencies are
Put and Get of a small JSON value in the run's namespace.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
from maos.errors import DeadlineExceeded

from .._config import CHANNEL_OPTIONS
from .._messages_client import MessagesClient, message_value
from ._context import BenchContext, timed
from ._stats import summarize

GATE_AGENT_TYPE = "analyst"
_PARK_SECONDS = 3600.0
_RECEIVE_WAIT_SECONDS = 0.5
_DELIVERY_TIMEOUT_SECONDS = 10.0


def mailbox_workflow(ctx: BenchContext) -> tuple[str, str, str]:
    """(root id, sender task id, receiver task id): two echo tasks that stay PENDING until cancelled."""
    parked = {
        "description": "bench: gate (fails, then waits an hour to retry; cancelled by the bench)",
        "agent_type": GATE_AGENT_TYPE,
        "input": {"bench": "no path on purpose"},
        "max_retries": 1,
        "retry_initial_seconds": _PARK_SECONDS,
        "retry_max_seconds": _PARK_SECONDS,
    }
    waiting = {"agent_type": "echo", "depends_on": ["gate"], "on_dependency_failure": "skip"}
    root, ids = ctx.submit_workflow(
        {
            "gate": parked,
            "sender": {"description": "bench: message sender", **waiting},
            "receiver": {"description": "bench: message receiver", **waiting},
        },
        "bench: communication latency",
    )
    return root.id, ids["sender"], ids["receiver"]


class _Receiver(threading.Thread):
    """Long-polls one mailbox, stamps each message's arrival and acknowledges it."""

    def __init__(self, client: MessagesClient, mailbox: str) -> None:
        super().__init__(name="maos-bench-receiver", daemon=True)
        self._client = client
        self._mailbox = mailbox
        self.arrived: dict[int, float] = {}
        self.acked = 0
        self.error: BaseException | None = None
        self.changed = threading.Condition()
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                messages = self._client.receive(self._mailbox, max=100, wait=_RECEIVE_WAIT_SECONDS)
                now = time.perf_counter()
                if not messages:
                    continue
                self.acked += self._client.ack(self._mailbox, [m.id for m in messages])
                with self.changed:
                    for m in messages:
                        self.arrived[int(message_value(m)["n"])] = now
                    self.changed.notify_all()
        except BaseException as exc:  # handed to the sender, which raises it
            self.error = exc
            with self.changed:
                self.changed.notify_all()

    def wait_for(self, n: int) -> float:
        with self.changed:
            self.changed.wait_for(lambda: n in self.arrived or self.error is not None, _DELIVERY_TIMEOUT_SECONDS)
        if self.error is not None:
            raise self.error
        if n not in self.arrived:
            raise DeadlineExceeded(f"communication: message {n} was not received within {_DELIVERY_TIMEOUT_SECONDS}s")
        return self.arrived[n]


def _message_latencies(ctx: BenchContext, sender: str, receiver: str) -> tuple[list[float], list[float]]:
    """(delivery ms, send-call ms) of `messages` one-way messages, one at a time."""
    endpoint = ctx.client.endpoint
    with grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS) as channel:
        tx = MessagesClient(channel, endpoint, caller=(sender, 1))
        rx = MessagesClient(channel, endpoint, caller=(receiver, 1))
        thread = _Receiver(rx, f"task:{receiver}")
        thread.start()
        delivery: list[float] = []
        sends: list[float] = []
        try:
            for n in range(ctx.config.messages):
                start = time.perf_counter()
                _, send_ms = timed(tx.send, receiver, {"n": n, "bench": ctx.run_id})
                delivery.append((thread.wait_for(n) - start) * 1000)
                sends.append(send_ms)
        finally:
            thread.stopping.set()
            thread.join(_RECEIVE_WAIT_SECONDS + ctx.client.timeout)
            ctx.created.messages_acked += thread.acked
    return delivery, sends


def communication(ctx: BenchContext) -> dict[str, Any]:
    """Message delivery latency between two tasks, and state put/get latency."""
    if GATE_AGENT_TYPE not in ctx.agent_types:
        return {"skipped": f"no connected host offers the {GATE_AGENT_TYPE} agent type (used to hold mailboxes open)"}
    _, sender, receiver = mailbox_workflow(ctx)
    ctx.progress(f"{ctx.config.messages} messages task→task")
    delivery, sends = _message_latencies(ctx, sender, receiver)
    namespace = ctx.namespace
    key = f"bench/{ctx.run_id}/latency"
    ctx.created.add_key(namespace, key)
    state = ctx.client.state
    ctx.progress(f"{ctx.config.state_ops} state puts and gets")
    puts = [timed(state.put, key, {"n": i}, namespace=namespace)[1] for i in range(ctx.config.state_ops)]
    gets = [timed(state.get, key, namespace=namespace)[1] for _ in range(ctx.config.state_ops)]
    return {
        "messages": {
            "basis": "send call start -> the receiver's long poll returns it (acknowledged after)",
            "latency_ms": summarize(delivery),
            "send_call_ms": summarize(sends),
        },
        "state_put_ms": summarize(puts),
        "state_get_ms": summarize(gets),
    }

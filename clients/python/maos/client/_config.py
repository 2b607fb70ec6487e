"""Where the SDK connects and how its channels are tuned."""

from __future__ import annotations

import os

ENDPOINT_ENV = "MAOS_ENDPOINT"
# Set by an agent host for its agents: its message relay (MessageService on a local socket).
MESSAGES_ENDPOINT_ENV = "MAOS_MESSAGES_ENDPOINT"
DEFAULT_ENDPOINT = "127.0.0.1:7700"
DEFAULT_RPC_TIMEOUT_SECONDS = 10.0
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# Keepalive pings detect a dead connection under a long watch or wait. The
# control plane allows a ping every 5 s (grpc.http2.min_ping_interval_without_data_ms);
# pinging more often than a server allows earns a GOAWAY (too_many_pings) that
# cuts every stream, so stay well above that. Pings only while calls are open.
_KEEPALIVE_TIME_MS = 30_000
_KEEPALIVE_TIMEOUT_MS = 10_000

CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", _KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", _KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
)


def resolve_endpoint(endpoint: str | None = None) -> str:
    """The endpoint to use: the argument, else $MAOS_ENDPOINT, else 127.0.0.1:7700."""
    if endpoint:
        return endpoint
    return os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT


def messages_endpoint(endpoint: str) -> str:
    """Where a client of `endpoint` sends MessageService calls: the host's relay when running
    inside an agent of that control plane (MAOS_MESSAGES_ENDPOINT), else the control plane."""
    relay = os.environ.get(MESSAGES_ENDPOINT_ENV, "")
    if relay and endpoint == (os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT):
        return relay
    return endpoint


TASK_ID_ENV = "MAOS_TASK_ID"
ATTEMPT_ENV = "MAOS_ATTEMPT"


def caller_metadata() -> tuple[tuple[str, str], ...]:
    """Who is calling, when the caller is an agent running a task (its host sets these).

    Sent on WaitTasks, so the control plane lends the waiting agent's worker slot
    to its children for as long as it waits: a parent never deadlocks its pool.
    """
    task_id = os.environ.get(TASK_ID_ENV, "")
    attempt = os.environ.get(ATTEMPT_ENV, "")
    if not task_id or not attempt.isdigit():
        return ()
    return (("maos-task-id", task_id), ("maos-attempt", attempt))

"""What the SDK, the control plane, the agent host and the worker ask for: each returns nothing
(None, or the channel unchanged) when tracing is off, and imports OpenTelemetry only when on.
Nor does this module import grpc: worker processes import maos.tracing and must stay light."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ._setup import configure_from_env, tracer

if TYPE_CHECKING:
    import grpc
    import grpc.aio
    from opentelemetry.trace import Span

    from ._host import AssignmentSpans
    from ._messages import MessageSpans
    from ._tasks import TaskSpans

CLIENT_SERVICE_NAME = "maos-client"


def intercept_channel(channel: grpc.Channel, service_name: str = CLIENT_SERVICE_NAME) -> grpc.Channel:
    """`channel`, traced when tracing is on (configured from $MAOS_TRACING on first use)."""
    configure_from_env(service_name)
    t = tracer()
    if t is None:
        return channel
    import grpc

    from ._grpc_client import TracingClientInterceptor

    return grpc.intercept_channel(channel, TracingClientInterceptor(t))


def aio_client_interceptors(service_name: str = CLIENT_SERVICE_NAME) -> Sequence[grpc.aio.ClientInterceptor] | None:
    """Interceptors for a grpc.aio channel; None when tracing is off (from $MAOS_TRACING on first use)."""
    configure_from_env(service_name)
    t = tracer()
    if t is None:
        return None
    from ._grpc_client import aio_interceptors

    return aio_interceptors(t)


def task_spans() -> TaskSpans | None:
    """The control plane's per-task spans; None when tracing is off."""
    t = tracer()
    if t is None:
        return None
    from ._tasks import TaskSpans

    return TaskSpans(t)


def message_spans() -> MessageSpans | None:
    """The control plane's message send/receive spans; None when tracing is off."""
    t = tracer()
    if t is None:
        return None
    from ._messages import MessageSpans

    return MessageSpans(t)


def assignment_spans(host_id: str) -> AssignmentSpans | None:
    """The agent host's per-assignment spans; None when tracing is off."""
    t = tracer()
    if t is None:
        return None
    from ._host import AssignmentSpans

    return AssignmentSpans(t, host_id)


@contextmanager
def agent_run_span(trace_context: Mapping[str, str], task_id: str, attempt: int, agent_type: str) -> Iterator[Span]:
    """In a worker: the span around one agent execution, child of the host's span named by
    `trace_context` and current while it runs. Only call it when tracing is on."""
    t = tracer()
    if t is None:
        raise RuntimeError("agent_run_span needs tracing on; check maos.tracing.enabled() first")
    from ._host import agent_run_span as run_span

    with run_span(t, trace_context, task_id, attempt, agent_type) as span:
        yield span


def record_run_outcome(span: Span, status: str, error_kind: str = "", error_message: str = "") -> None:
    """Set a worker span's outcome from the worker's status: "ok", "err" or "cancel"."""
    from ._host import record_run_outcome as record

    record(span, status, error_kind, error_message)

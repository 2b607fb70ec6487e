"""OpenTelemetry tracing for every MAOS process, from one setting.

    maos-controlplane --tracing jsonl:/tmp/spans.jsonl
    maos-agenthost    --tracing otlp-grpc=collector:4317
    MAOS_TRACING=otlp-http maosctl task submit ...        # the SDK and the CLI read $MAOS_TRACING

Settings (see _spec): off (default), otlp-grpc[=ENDPOINT], otlp-http[=ENDPOINT],
jsonl:PATH. Off installs and imports nothing; every hook is skipped.

One trace follows a task: the client's RPC span (W3C traceparent in the gRPC
metadata) -> the control plane's server span -> the task's span (events: queued,
running, ...) -> its attempt span (carried in Assignment.trace_context) -> the
agent host's assignment span -> the agent's run span in the worker process
(passed in the task frame; $MAOS_TRACING tells the worker where to export)
-> the control plane's record-result span, linked to the attempt span.
Messages carry the sender's context (trace_context on the request and on every
copy): a send span on the control plane, and a receive span per message handed
to a reader, child of its send span.
"""

from ._hooks import CLIENT_SERVICE_NAME as CLIENT_SERVICE_NAME
from ._hooks import agent_run_span as agent_run_span
from ._hooks import aio_client_interceptors as aio_client_interceptors
from ._hooks import assignment_spans as assignment_spans
from ._hooks import intercept_channel as intercept_channel
from ._hooks import message_spans as message_spans
from ._hooks import record_run_outcome as record_run_outcome
from ._hooks import task_spans as task_spans
from ._setup import EXPORT_TIMEOUT_SECONDS as EXPORT_TIMEOUT_SECONDS
from ._setup import active_spec as active_spec
from ._setup import configure as configure
from ._setup import configure_from_env as configure_from_env
from ._setup import enabled as enabled
from ._setup import force_flush as force_flush
from ._setup import shutdown as shutdown
from ._setup import tracer as tracer
from ._spec import OFF as OFF
from ._spec import TRACING_ENV as TRACING_ENV
from ._spec import TracingSpec as TracingSpec
from ._spec import parse_spec as parse_spec
from ._spec import spec_from_env as spec_from_env

__all__ = [
    "CLIENT_SERVICE_NAME",
    "EXPORT_TIMEOUT_SECONDS",
    "OFF",
    "TRACING_ENV",
    "TracingSpec",
    "active_spec",
    "agent_run_span",
    "aio_client_interceptors",
    "assignment_spans",
    "configure",
    "configure_from_env",
    "enabled",
    "force_flush",
    "intercept_channel",
    "message_spans",
    "parse_spec",
    "record_run_outcome",
    "shutdown",
    "spec_from_env",
    "task_spans",
    "tracer",
]

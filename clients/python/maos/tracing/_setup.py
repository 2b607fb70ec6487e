"""Process-wide tracing: configured once from a TracingSpec, flushed on exit.

Off (the default) installs nothing and imports nothing from OpenTelemetry:
every hook in MAOS checks `enabled()` (or holds None) and skips its work, so
tracing off costs one boolean test where it is checked, not a no-op span.

On, spans go through one BatchSpanProcessor with a bounded queue (spans past
it are dropped and counted by the SDK, never waited for) to one exporter whose
export calls time out after EXPORT_TIMEOUT_SECONDS. Exports run on the
processor's thread, so an unreachable collector can delay nothing but that
thread; `shutdown()` is bounded too.

The provider is also installed as OpenTelemetry's global one (when none is
yet), so spans that agent code makes with the OTel API join MAOS's traces.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._spec import OFF, TracingSpec, parse_spec, spec_from_env

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

log = logging.getLogger(__name__)

EXPORT_TIMEOUT_SECONDS = 2.0
MAX_QUEUE_SIZE = 2048
MAX_EXPORT_BATCH_SIZE = 512
SCHEDULE_DELAY_MILLIS = 500
SHUTDOWN_TIMEOUT_SECONDS = 3.0
INSTRUMENTATION_NAME = "maos"

_lock = threading.RLock()  # re-entrant: configure_from_env -> configure -> shutdown
_spec: TracingSpec | None = None  # None: not configured in this process yet
_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_atexit_registered = False


def configure(spec: TracingSpec | str, service_name: str) -> TracingSpec:
    """Set this process's tracing (replacing any earlier setting); returns the spec in force.

    `service_name` is the span's service (maos-controlplane, maos-agenthost, maos-worker,
    maos-client). InvalidArgument for a malformed spec string; an exporter that cannot be
    set up (e.g. a JSON-lines path that cannot be opened) is InvalidArgument too.
    """
    global _spec, _provider, _tracer, _atexit_registered
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    with _lock:
        shutdown()
        if not parsed.enabled:
            _spec = OFF
            return OFF
        provider = _new_provider(parsed, service_name)
        _provider = provider
        _tracer = provider.get_tracer(INSTRUMENTATION_NAME)
        _spec = parsed
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True
    _install_global(provider)
    return parsed


def configure_from_env(service_name: str) -> TracingSpec:
    """Configure from $MAOS_TRACING unless this process is configured already; the spec in force."""
    with _lock:  # two threads opening their first channels must not both configure
        if _spec is not None:
            return _spec
        return configure(spec_from_env(), service_name)


def enabled() -> bool:
    """True when this process exports spans."""
    return _tracer is not None


def active_spec() -> TracingSpec:
    """The spec in force (off when never configured)."""
    return _spec if _spec is not None else OFF


def tracer() -> Tracer | None:
    """The tracer MAOS's own spans come from; None when tracing is off."""
    return _tracer


def force_flush(timeout_seconds: float = SHUTDOWN_TIMEOUT_SECONDS) -> bool:
    """Export what is queued now; False when it did not finish in time (or tracing is off)."""
    provider = _provider
    if provider is None:
        return False
    return _bounded(lambda: provider.force_flush(int(timeout_seconds * 1000)), timeout_seconds)


def shutdown(timeout_seconds: float = SHUTDOWN_TIMEOUT_SECONDS) -> None:
    """Flush and stop exporting (bounded by `timeout_seconds`); the process is then unconfigured,
    so the next `configure_from_env` reads $MAOS_TRACING again. Idempotent."""
    global _spec, _provider, _tracer
    with _lock:
        provider, _provider, _tracer, _spec = _provider, None, None, None
    if provider is not None:
        _bounded(provider.shutdown, timeout_seconds)


def _bounded(fn: Callable[[], object], timeout_seconds: float) -> bool:
    """Run fn on a daemon thread; give up waiting after the timeout (a stuck exporter must not hang exit)."""
    done = threading.Event()
    result: list[object] = []

    def run() -> None:
        try:
            result.append(fn())
        except Exception:
            log.exception("tracing: flushing spans failed")
        finally:
            done.set()

    try:
        threading.Thread(target=run, name="maos-tracing-flush", daemon=True).start()
    except RuntimeError:  # Python 3.12+ refuses new threads at interpreter exit: flush inline
        run()
    if not done.wait(timeout_seconds):
        log.warning("tracing: spans not exported within %.1fs; giving up on them", timeout_seconds)
        return False
    return bool(result and result[0] is not False)


def _new_provider(spec: TracingSpec, service_name: str) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = _exporter(spec)
    resource = Resource.create({"service.name": service_name, "process.pid": os.getpid()})
    # shutdown_on_exit=False: our own atexit hook flushes with a bound; the SDK's waits up to 30 s.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=MAX_QUEUE_SIZE,
            schedule_delay_millis=SCHEDULE_DELAY_MILLIS,
            max_export_batch_size=MAX_EXPORT_BATCH_SIZE,
            export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000,
        )
    )
    return provider


def _exporter(spec: TracingSpec) -> SpanExporter:
    if spec.kind == "jsonl":
        from maos.errors import InvalidArgument

        from ._jsonl import JsonLinesSpanExporter

        try:
            return JsonLinesSpanExporter(spec.target)
        except OSError as exc:
            raise InvalidArgument(f"tracing: cannot open {spec.target} for spans: {exc.strerror or exc}") from None
    if spec.kind == "otlp-grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        endpoint = spec.target or None
        insecure = not (endpoint or "").startswith("https://")
        return GrpcExporter(endpoint=endpoint, insecure=insecure, timeout=EXPORT_TIMEOUT_SECONDS)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=spec.target or None, timeout=EXPORT_TIMEOUT_SECONDS)


def _install_global(provider: TracerProvider) -> None:
    from opentelemetry import trace

    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)

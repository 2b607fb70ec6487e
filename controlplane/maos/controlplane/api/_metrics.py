"""Metrics on the API: the latency interceptor, and GetMetrics / ListAlerts answers from the monitor."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import psutil
from maos.controlplane._convert import timestamp
from maos.controlplane.core import Priority
from maos.controlplane.metrics import (
    LONG_POLLS,
    Alert,
    ApiLatency,
    Gauge,
    Histogram,
    Monitor,
    downsample,
    merge_samples,
    method_name,
)
from maos.errors import InvalidArgument
from maos.v1 import admin_pb2

Ctx = grpc.aio.ServicerContext[Any, Any]

DEFAULT_TIMEFRAME_SECONDS = 300.0
MAX_TIMEFRAME_SECONDS = 7 * 24 * 3600.0
DEFAULT_POINTS = 120
MAX_POINTS = 10_000


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Times every unary RPC by method (streams are left alone: their length is the caller's).

    Registered after ErrorMappingInterceptor, so the handler it wraps is the one the
    server registered (one per method): the wrapper is built once per method."""

    def __init__(self, latency: ApiLatency) -> None:
        self._latency = latency
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler: Any = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method_name(method))
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: Any, name: str) -> Any:
        inner = handler.unary_unary
        record = self._latency.record
        clock = time.perf_counter

        async def unary(request: Any, context: Ctx) -> Any:
            start = clock()
            ok = False
            try:
                response = await inner(request, context)
                ok = True
                return response
            finally:
                record(name, clock() - start, ok)

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _level(gauge: Gauge) -> admin_pb2.Level:
    mean = gauge.mean
    if mean is None:
        return admin_pb2.Level()
    return admin_pb2.Level(mean=mean, max=gauge.peak, last=gauge.last, known=True)


def _percentiles(hist: Histogram) -> admin_pb2.Percentiles:
    if not hist.count:
        return admin_pb2.Percentiles()
    return admin_pb2.Percentiles(
        count=hist.count,
        p50=hist.quantile(0.5) or 0.0,
        p95=hist.quantile(0.95) or 0.0,
        p99=hist.quantile(0.99) or 0.0,
        mean=hist.mean or 0.0,
        max=hist.peak,
    )


def alert_proto(alert: Alert) -> admin_pb2.Alert:
    return admin_pb2.Alert(
        id=alert.id,
        rule=alert.rule,
        severity=alert.severity,
        subject=alert.subject,
        message=alert.message,
        figures=alert.figures,
        raised_at=timestamp(alert.raised_at),
        updated_at=timestamp(alert.updated_at),
        cleared_at=timestamp(alert.cleared_at),
        active=alert.active,
    )


def _timeframe(request: admin_pb2.GetMetricsRequest) -> float:
    seconds = request.timeframe_seconds
    if math.isnan(seconds) or seconds < 0:
        raise InvalidArgument(f"timeframe_seconds must be a positive number of seconds, got {seconds}")
    if seconds > MAX_TIMEFRAME_SECONDS:
        raise InvalidArgument(
            f"timeframe_seconds {seconds:g} is beyond the {MAX_TIMEFRAME_SECONDS:g} seconds (7 days) the window keeps"
        )
    return seconds or DEFAULT_TIMEFRAME_SECONDS


def metrics_response(
    monitor: Monitor, request: admin_pb2.GetMetricsRequest, metrics_endpoint: str = ""
) -> admin_pb2.GetMetricsResponse:
    """The monitor's figures over the asked timeframe."""
    timeframe = _timeframe(request)
    max_points = min(request.max_points or DEFAULT_POINTS, MAX_POINTS)
    now = time.time()
    samples, step = monitor.window.span(timeframe, now)
    points = downsample(samples, max_points)
    total = merge_samples(points)  # the same sums as merging every sample, with fewer merges
    reply = admin_pb2.GetMetricsResponse(
        time=timestamp(now),
        timeframe_seconds=timeframe,
        sample_interval_seconds=monitor.interval_seconds,
        step_seconds=step,
        started_at=timestamp(monitor.started_at),
        metrics_endpoint=metrics_endpoint,
    )

    summary = reply.summary
    summary.seconds = total.seconds if samples else 0.0
    summary.completed, summary.failed, summary.cancelled = total.completed, total.failed, total.cancelled
    summary.throughput_per_second = total.throughput
    summary.peak_throughput_per_second = max((s.throughput for s in samples), default=0.0)
    summary.completion.CopyFrom(_percentiles(total.completion))
    summary.api_latency.CopyFrom(_percentiles(total.api_overall(LONG_POLLS)))
    if total.utilisation is not None:
        summary.utilisation = total.utilisation
    queue_total = Gauge()
    for s in samples:
        queue_total.add(sum(g.mean or 0.0 for g in s.queue.values()))
    summary.queue_depth.CopyFrom(_level(queue_total))
    summary.oldest_queued_seconds.CopyFrom(_level(total.oldest_queued_seconds))
    summary.running.CopyFrom(_level(total.running))
    summary.idle_agents.CopyFrom(_level(total.idle_agents))
    summary.waiting.CopyFrom(_level(total.waiting))
    if total.efficiency.mean is not None:
        summary.parallel_efficiency = total.efficiency.mean
    summary.trees = total.efficiency.n
    summary.messages_sent, summary.messages_delivered = total.messages_sent, total.messages_delivered
    summary.messages_per_second = total.messages_sent / total.seconds if total.seconds > 0 else 0.0

    for point in points:
        p = reply.points.add(
            time=timestamp(point.end),
            seconds=point.seconds,
            completed=point.completed,
            failed=point.failed,
            throughput_per_second=point.throughput,
            queue_depth=sum(g.mean or 0.0 for g in point.queue.values()),
            cpu_percent=point.cpu_percent.mean or 0.0,
            memory_percent=point.memory_percent.mean or 0.0,
            process_cpu_percent=point.process_cpu_percent.mean or 0.0,
            messages_per_second=point.messages_sent / point.seconds if point.seconds > 0 else 0.0,
        )
        api_p95 = point.api_overall(LONG_POLLS).quantile(0.95)
        if api_p95 is not None:
            p.api_p95_seconds = api_p95
        completion_p95 = point.completion.quantile(0.95)
        if completion_p95 is not None:
            p.completion_p95_seconds = completion_p95
        if point.utilisation is not None:
            p.utilisation = point.utilisation

    for method in sorted(total.api):
        reply.api.add(
            method=method,
            latency=_percentiles(total.api[method]),
            errors=total.api_errors.get(method, 0),
            long_poll=method in LONG_POLLS,
        )

    running = monitor.recorder.running_by_type()
    for agent_type in sorted(set(total.types) | set(running)):
        counts = total.types.get(agent_type)
        m = reply.agent_types.add(agent_type=agent_type, running=running.get(agent_type, 0))
        if counts is None:
            continue
        m.completed, m.failed, m.cancelled = counts.completed, counts.failed, counts.cancelled
        m.busy_seconds, m.available_seconds = counts.busy_seconds, counts.available_seconds
        if counts.completed + counts.failed:
            m.success_rate = counts.completed / (counts.completed + counts.failed)
        if counts.runs:
            m.mean_run_seconds = counts.run_seconds / counts.runs
        if counts.available_seconds > 0:
            m.utilisation = min(counts.busy_seconds / counts.available_seconds, 1.0)

    for host in monitor.hosts():
        h = reply.hosts.add(
            host_id=host.host_id,
            hostname=host.hostname,
            connected=host.connected,
            draining=host.draining,
            slots=host.slots,
            in_flight=host.in_flight,
            idle_agents=host.idle_agents,
            cpu_percent=host.cpu_percent,
            memory_used_bytes=host.memory_used_bytes,
            memory_bytes=host.memory_bytes,
            workers_rss_bytes=host.workers_rss_bytes,
        )
        if host.memory_percent is not None:
            h.memory_percent = host.memory_percent
        gauges = total.hosts.get(host.host_id)
        if gauges is not None:
            h.cpu.CopyFrom(_level(gauges.cpu_percent))
            h.memory.CopyFrom(_level(gauges.memory_percent))

    cp = reply.controlplane
    cp.pid = os.getpid()
    cp.process_cpu_percent.CopyFrom(_level(total.process_cpu_percent))
    cp.process_rss_bytes.CopyFrom(_level(total.process_rss_bytes))
    cp.cpu_percent.CopyFrom(_level(total.cpu_percent))
    cp.memory_percent.CopyFrom(_level(total.memory_percent))
    cp.cpu_count = psutil.cpu_count() or 1
    cp.memory_bytes = psutil.virtual_memory().total

    depth_now = monitor.depth_now()
    for priority in Priority:
        name = priority.name.lower()
        reply.queue.add(priority=name, depth=_level(total.queue.get(name, Gauge())), now=depth_now[priority])

    reply.alerts.extend(alert_proto(a) for a in monitor.alerts.active())
    limits = monitor.limits()
    reply.thresholds.update(
        {
            "monitor.cpu_threshold": limits.cpu_threshold,
            "monitor.memory_threshold": limits.memory_threshold,
            "monitor.sustained_samples": float(limits.sustained_samples),
            "monitor.throughput_drop": limits.throughput_drop,
            "monitor.idle_samples": float(limits.idle_samples),
            "scheduling.max_queue_time": monitor.runtime.orch.limits.max_queue_time_seconds,
        }
    )
    return reply


def alerts_response(monitor: Monitor, request: admin_pb2.ListAlertsRequest) -> admin_pb2.ListAlertsResponse:
    alerts = monitor.alerts.listing(active_only=request.active_only, limit=request.limit)
    return admin_pb2.ListAlertsResponse(alerts=[alert_proto(a) for a in alerts])

"""The standard gRPC health service, as load balancers and grpc-health-probe use it."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.conftest import Cluster

SERVING = health_pb2.HealthCheckResponse.SERVING


def test_check_and_watch_answer_serving(cluster: Cluster) -> None:
    with grpc.insecure_channel(cluster.endpoint) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "maos.v1.TaskService", "maos.v1.StateService"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == SERVING
        # Watch streams the status (and then changes); it used to fail INTERNAL behind the error interceptor.
        stream = health.Watch(health_pb2.HealthCheckRequest(service="maos.v1.TaskService"), timeout=5)
        assert next(stream).status == SERVING
        stream.cancel()

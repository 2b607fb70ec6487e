"""A thin blocking wrapper over the raw stubs, for tests that probe the API itself."""

from __future__ import annotations

from typing import Any

import grpc
import orjson
from maos.v1 import common_pb2, tasks_pb2, tasks_pb2_grpc


class RawApi:
    def __init__(self, endpoint: str) -> None:
        self.channel = grpc.insecure_channel(endpoint)
        self.tasks = tasks_pb2_grpc.TaskServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def submit(self, description: str, agent_type: str = "echo", data: Any = None, **spec: Any) -> common_pb2.Task:
        payload = common_pb2.Payload(data=orjson.dumps(data), content_type="application/json")
        request = tasks_pb2.SubmitTaskRequest(
            spec=common_pb2.TaskSpec(description=description, agent_type=agent_type, input=payload, **spec)
        )
        return self.tasks.SubmitTask(request, timeout=10).task

    def submit_many(self, specs: list[common_pb2.TaskSpec]) -> list[common_pb2.Task]:
        return list(self.tasks.SubmitTasks(tasks_pb2.SubmitTasksRequest(specs=specs), timeout=30).tasks)

    def wait(self, ids: list[str], timeout: float = 60.0) -> list[common_pb2.Task]:
        response = self.tasks.WaitTasks(
            tasks_pb2.WaitTasksRequest(ids=ids, timeout_seconds=timeout, include_result=True), timeout=timeout + 5
        )
        assert not response.timed_out, [t.status for t in response.tasks if t.status < 4]
        return list(response.tasks)

    def wait_one(self, task_id: str, timeout: float = 60.0) -> common_pb2.Task:
        return self.wait([task_id], timeout)[0]

    def get(self, task_id: str) -> common_pb2.Task:
        return self.tasks.GetTask(tasks_pb2.GetTaskRequest(id=task_id), timeout=10)


def result_of(task: common_pb2.Task) -> Any:
    return orjson.loads(task.result.data) if task.result.data else None

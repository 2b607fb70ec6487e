"""PlanTask's edge: a request in, the planner's workflow nodes out as maos.v1 messages."""

from __future__ import annotations

from typing import Any

import orjson
from maos.controlplane.core import plan_parallel_synthesis
from maos.errors import InvalidArgument
from maos.v1 import common_pb2, tasks_pb2

from ._runtime import Runtime

_STREAM_AGENT_BY_TYPE = {common_pb2.TASK_TYPE_ANALYSIS: "analyst", common_pb2.TASK_TYPE_COORDINATION: "coordinator"}


def build_plan(
    request: tasks_pb2.PlanTaskRequest, runtime: Runtime
) -> tuple[common_pb2.TaskSpec, list[tasks_pb2.WorkflowNode], common_pb2.Plan]:
    """The root spec, the nodes to submit and the plan summary for a PlanTask request."""
    spec = request.spec
    if not spec.description.strip():
        raise InvalidArgument("description is empty: say what the task should do")
    base_input: dict[str, Any] = {}
    if spec.input.data:
        try:
            value = orjson.loads(spec.input.data)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument(f"input is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise InvalidArgument("a planned task's input must be a JSON object (it is shared by every stream)")
        base_input = value
    plan = plan_parallel_synthesis(
        spec.description,
        aspects=list(request.aspects),
        shards=list(request.shards),
        base_input=base_input,
        max_agents=request.max_agents,
        template=request.template or "parallel-synthesis",
    )
    stream_agent = (
        request.stream_agent_type
        or spec.agent_type
        or _STREAM_AGENT_BY_TYPE.get(spec.type, runtime.settings.default_agent_type)
    )
    synthesis_agent = request.synthesis_agent_type or "coordinator"
    nodes = []
    for node in plan.nodes:
        node_spec = common_pb2.TaskSpec()
        node_spec.CopyFrom(spec)
        node_spec.ClearField("idempotency_key")
        node_spec.description = node.description
        node_spec.agent_type = synthesis_agent if node.synthesis else stream_agent
        node_spec.type = common_pb2.TASK_TYPE_COORDINATION if node.synthesis else spec.type
        node_spec.input.data = orjson.dumps(node.input)
        node_spec.input.content_type = "application/json"
        del node_spec.depends_on[:]
        node_spec.depends_on.extend(node.depends_on)
        nodes.append(tasks_pb2.WorkflowNode(key=node.key, spec=node_spec))
    root = common_pb2.TaskSpec(
        description=spec.description,
        type=spec.type,
        priority=spec.priority,
        labels=spec.labels,
        idempotency_key=spec.idempotency_key,
    )
    summary = common_pb2.Plan(
        template=plan.template,
        parallel_streams=plan.parallel_streams,
        estimated_speedup=plan.estimated_speedup,
        synthesis_key=plan.synthesis_key,
    )
    return root, nodes, summary

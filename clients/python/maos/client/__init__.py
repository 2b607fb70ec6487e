"""The MAOS Python SDK: submit, watch and wait on tasks; inspect hosts and agents.

    from maos.client import Client, task_result

    with Client() as maos:                      # $MAOS_ENDPOINT or 127.0.0.1:7700
        task = maos.submit_task("say hi", agent_type="echo", input={"x": 1})
        done = maos.wait_task(task.id, timeout=30)
        print(task_result(done))

`AsyncClient` has the same methods for asyncio. Replies are the maos.v1
protobuf messages; failures raise the maos.errors classes.

Agent worker processes import `maos.client._context` (TaskContext), which runs
this module first; so everything but TaskContext is imported on first use
(PEP 562), sparing each worker ~90 ms of grpc imports. Type checkers see the
plain re-exports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._context import TaskContext as TaskContext

if TYPE_CHECKING:
    from ._async_client import AsyncClient as AsyncClient
    from ._checkpoints_client import CheckpointClient as CheckpointClient
    from ._config import DEFAULT_ENDPOINT as DEFAULT_ENDPOINT
    from ._config import ENDPOINT_ENV as ENDPOINT_ENV
    from ._config import resolve_endpoint as resolve_endpoint
    from ._enums import agent_status_name as agent_status_name
    from ._enums import host_status_name as host_status_name
    from ._enums import is_final as is_final
    from ._enums import parse_priority as parse_priority
    from ._enums import parse_status as parse_status
    from ._enums import parse_task_type as parse_task_type
    from ._enums import priority_name as priority_name
    from ._enums import status_name as status_name
    from ._enums import task_type_name as task_type_name
    from ._errors import from_rpc_error as from_rpc_error
    from ._messages_client import AsyncMessagesClient as AsyncMessagesClient
    from ._messages_client import MessagesClient as MessagesClient
    from ._specs import SUBMIT_BATCH_LIMIT as SUBMIT_BATCH_LIMIT
    from ._specs import SpecLike as SpecLike
    from ._specs import SpecOptions as SpecOptions
    from ._specs import task_input as task_input
    from ._specs import task_result as task_result
    from ._specs import task_spec as task_spec
    from ._state_client import AsyncStateClient as AsyncStateClient
    from ._state_client import StateClient as StateClient
    from ._state_client import StateValue as StateValue
    from ._sync_client import Client as Client

_LAZY: dict[str, str] = {
    "AsyncClient": "._async_client",
    "CheckpointClient": "._checkpoints_client",
    "Client": "._sync_client",
    "DEFAULT_ENDPOINT": "._config",
    "ENDPOINT_ENV": "._config",
    "resolve_endpoint": "._config",
    "agent_status_name": "._enums",
    "host_status_name": "._enums",
    "is_final": "._enums",
    "parse_priority": "._enums",
    "parse_status": "._enums",
    "parse_task_type": "._enums",
    "priority_name": "._enums",
    "status_name": "._enums",
    "task_type_name": "._enums",
    "from_rpc_error": "._errors",
    "SUBMIT_BATCH_LIMIT": "._specs",
    "SpecLike": "._specs",
    "SpecOptions": "._specs",
    "task_input": "._specs",
    "task_result": "._specs",
    "task_spec": "._specs",
    "AsyncMessagesClient": "._messages_client",
    "MessagesClient": "._messages_client",
    "AsyncStateClient": "._state_client",
    "StateClient": "._state_client",
    "StateValue": "._state_client",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_ENV",
    "SUBMIT_BATCH_LIMIT",
    "AsyncClient",
    "AsyncMessagesClient",
    "AsyncStateClient",
    "CheckpointClient",
    "Client",
    "MessagesClient",
    "SpecLike",
    "SpecOptions",
    "StateClient",
    "StateValue",
    "TaskContext",
    "agent_status_name",
    "from_rpc_error",
    "host_status_name",
    "is_final",
    "parse_priority",
    "parse_status",
    "parse_task_type",
    "priority_name",
    "resolve_endpoint",
    "status_name",
    "task_input",
    "task_result",
    "task_spec",
    "task_type_name",
]

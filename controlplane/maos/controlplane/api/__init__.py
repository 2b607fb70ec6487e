"""gRPC servicers: thin adapters from maos.v1 requests to the runtime."""

from ._errors import ErrorMappingInterceptor as ErrorMappingInterceptor
from ._hosts import VERSION as VERSION
from ._hosts import AdminServicer as AdminServicer
from ._hosts import AgentServicer as AgentServicer
from ._hosts import HostServicer as HostServicer
from ._library import BatchServicer as BatchServicer
from ._library import TemplateServicer as TemplateServicer
from ._tasks import TaskServicer as TaskServicer

__all__ = [
    "VERSION",
    "AdminServicer",
    "AgentServicer",
    "ErrorMappingInterceptor",
    "HostServicer",
    "TaskServicer",
]

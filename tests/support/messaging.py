"""An in-process MessageService for tests and benchmarks: the real servicer, interceptor and
SQLite store on 127.0.0.1:0, with a small table of tasks standing in for the runtime's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import grpc.aio
from maos.agenthost._relay import MessageRelay, RelayConfig
from maos.agenthost._relay_server import RelayServer
from maos.client._messages_client import AsyncMessagesClient
from maos.controlplane.api._errors import ErrorMappingInterceptor
from maos.controlplane.api._messages import add_message_service
from maos.controlplane.messaging import Messaging, MessagingConfig, TaskInfo, open_messaging
from maos.controlplane.messaging._mailbox import StoredMessage


@dataclass
class TaskTable:
    """The task lookup messaging needs: which tasks exist, their tree, whether they finished."""

    tasks: dict[str, TaskInfo] = field(default_factory=dict)

    def add(self, task_id: str, root_id: str = "", *, final: bool = False, group: bool = False) -> None:
        status = "completed" if final else "running"
        self.tasks[task_id] = TaskInfo(task_id, root_id or task_id, final, status, group)

    async def task(self, task_id: str) -> TaskInfo | None:
        return self.tasks.get(task_id)

    def unfinished_in_tree(self, root_id: str) -> list[str]:
        return sorted(t.task_id for t in self.tasks.values() if t.root_id == root_id and not t.final and not t.group)


class MessageServer:
    """`await start()`, then `client(task_id)`; `restart()` closes and reopens on the same file."""

    def __init__(self, path: Path, config: MessagingConfig | None = None, tasks: TaskTable | None = None) -> None:
        self.path = path
        self.config = config or MessagingConfig()
        self.tasks = tasks or TaskTable()
        self.messaging: Messaging | None = None
        self.endpoint = ""
        self._server: grpc.aio.Server | None = None
        self._channels: list[grpc.aio.Channel] = []

    async def start(self) -> None:
        self.messaging = await open_messaging(self.path, self.tasks, self.config)
        server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()])
        add_message_service(server, self.messaging)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        self.endpoint = f"127.0.0.1:{port}"

    async def stop(self) -> None:
        for channel in self._channels:
            await channel.close(None)
        self._channels.clear()
        if self._server is not None:
            await self._server.stop(0)
            self._server = None
        if self.messaging is not None:
            await self.messaging.close()
            self.messaging = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def channel(self) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(self.endpoint)
        self._channels.append(channel)
        return channel

    def client(self, task_id: str | None = None, *, timeout: float = 10.0) -> AsyncMessagesClient:
        """A client calling as the agent of `task_id` (None: an operator)."""
        caller = (task_id, 1) if task_id else None
        return AsyncMessagesClient(self.channel(), self.endpoint, timeout=timeout, caller=caller)


async def _serve(path: Path, tasks: list[str]) -> None:
    """Run a message service until stdin closes (or the process is killed); print its endpoint.
    `tasks` form one tree rooted at the first."""
    import sys

    table = TaskTable()
    for task in tasks:
        table.add(task, tasks[0])  # one tree, rooted at the first
    server = MessageServer(path, tasks=table)
    await server.start()
    print(server.endpoint, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()


if __name__ == "__main__":
    import sys

    asyncio.run(_serve(Path(sys.argv[1]), sys.argv[2:]))


def stored_message(seq: int, **fields: object) -> StoredMessage:
    """A copy in task:B's mailbox, from A, of JSON {"n": seq}, sent at `sent_at` (default
    1_700_000_000.0) and expiring an hour later; `fields` override any of that."""
    sent_at = float(fields.get("sent_at", 1_700_000_000.0))  # type: ignore[arg-type]
    base: dict[str, object] = {
        "seq": seq,
        "mailbox": "task:B",
        "id": f"id-{seq}",
        "sender": "A",
        "recipient": "task:B",
        "topic": "",
        "priority": 2,
        "data": b'{"n": %d}' % seq,
        "content_type": "application/json",
        "sent_at": sent_at,
        "expires_at": sent_at + 3600,
    }
    base.update(fields)
    return StoredMessage(**base)  # type: ignore[arg-type]


@asynccontextmanager
async def host_relay(max_queued: int) -> AsyncIterator[RelayServer]:
    """A host's message relay with no control plane behind it (every call is settled on the
    host), serving tasks A and B of tree R on its Unix sockets."""
    relay = MessageRelay(
        RelayConfig(limits=MessagingConfig(max_queued=max_queued)), lambda item, size: True, lambda: False
    )
    relay.task_assigned("A", "R")
    relay.task_assigned("B", "R")
    server = RelayServer(relay, "host-1")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()

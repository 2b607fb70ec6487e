"""Messages between agents: task mailboxes, topic subscriptions, tree broadcasts.

The pure parts (`_mailbox`, `_index`, `_names`, `_checks`) know nothing of
gRPC or SQLite; `_store` persists to the task store's SQLite file (`_pg_store`
to its PostgreSQL schema, so messages follow a failover); `_service`
(`Messaging`) ties them together for the gRPC servicer in api/_messages.py.
"""

from ._backend import MessageBackend as MessageBackend
from ._checks import Outgoing as Outgoing
from ._checks import ReadParams as ReadParams
from ._checks import check_batch_item as check_batch_item
from ._checks import check_outgoing as check_outgoing
from ._checks import outgoing as outgoing
from ._checks import read_params as read_params
from ._cli import add_messaging_arguments as add_messaging_arguments
from ._cli import messaging_config as messaging_config
from ._config import MessagingConfig as MessagingConfig
from ._directory import RuntimeTaskDirectory as RuntimeTaskDirectory
from ._directory import TaskDirectory as TaskDirectory
from ._directory import TaskInfo as TaskInfo
from ._index import StatsRow as StatsRow
from ._mailbox import StoredMessage as StoredMessage
from ._pg_store import PostgresMessageStore as PostgresMessageStore
from ._service import MAX_SEND_BATCH as MAX_SEND_BATCH
from ._service import Messaging as Messaging
from ._service import Publication as Publication
from ._service import SendResult as SendResult
from ._service import open_messaging as open_messaging
from ._store import Loaded as Loaded
from ._store import MessageStore as MessageStore
from ._wire import message_to_proto as message_to_proto

__all__ = [
    "MAX_SEND_BATCH",
    "Loaded",
    "MessageBackend",
    "MessageStore",
    "Messaging",
    "MessagingConfig",
    "Outgoing",
    "PostgresMessageStore",
    "Publication",
    "ReadParams",
    "RuntimeTaskDirectory",
    "SendResult",
    "StatsRow",
    "StoredMessage",
    "TaskDirectory",
    "TaskInfo",
    "add_messaging_arguments",
    "check_batch_item",
    "check_outgoing",
    "message_to_proto",
    "messaging_config",
    "open_messaging",
    "outgoing",
    "read_params",
]

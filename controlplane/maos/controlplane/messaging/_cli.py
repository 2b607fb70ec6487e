"""The messaging bounds as daemon flags: maos-controlplane's mailboxes, and an agent host's
relay, which delivers between its own agents with the same bounds (give both the same values)."""

from __future__ import annotations

import argparse
import os

from maos.controlplane.checkpoints._config import parse_size
from maos.errors import InvalidArgument

from ._config import MessagingConfig

_DEFAULTS = MessagingConfig()


def add_messaging_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("messages between agents")
    group.add_argument(
        "--mailbox-size",
        type=int,
        default=os.environ.get("MAOS_MAILBOX_SIZE", str(_DEFAULTS.max_queued)),
        metavar="N",
        help=f"messages one mailbox holds, queued and in flight; a sender to a full one gets "
        f"RESOURCE_EXHAUSTED (default {_DEFAULTS.max_queued:,}; $MAOS_MAILBOX_SIZE)",
    )
    group.add_argument(
        "--message-ttl",
        type=float,
        default=os.environ.get("MAOS_MESSAGE_TTL", str(_DEFAULTS.default_ttl_seconds)),
        metavar="SECONDS",
        help=f"how long an unread message lives when its sender sets no TTL (default "
        f"{_DEFAULTS.default_ttl_seconds:.0f}, 24 h; at most {_DEFAULTS.max_ttl_seconds:.0f}, 30 days; "
        "$MAOS_MESSAGE_TTL)",
    )
    group.add_argument(
        "--message-max-bytes",
        default=os.environ.get("MAOS_MESSAGE_MAX_BYTES", "1MiB"),
        metavar="SIZE",
        help="largest payload of one message (default 1MiB; $MAOS_MESSAGE_MAX_BYTES)",
    )
    group.add_argument(
        "--messages-memory",
        default=os.environ.get("MAOS_MESSAGES_MEMORY", "512MiB"),
        metavar="SIZE",
        help="payload bytes held across all mailboxes; past it sends get RESOURCE_EXHAUSTED "
        "(default 512MiB; $MAOS_MESSAGES_MEMORY)",
    )


_FLAGS = {
    "max_queued": "--mailbox-size",
    "default_ttl_seconds": "--message-ttl",
    "max_payload_bytes": "--message-max-bytes",
    "max_total_bytes": "--messages-memory",
    "max_ttl_seconds": f"{_DEFAULTS.max_ttl_seconds:.0f} s (30 days)",
}


def messaging_config(ns: argparse.Namespace) -> MessagingConfig:
    """The flags as a MessagingConfig; InvalidArgument naming the flag for a value out of range."""
    try:
        return MessagingConfig(
            max_queued=ns.mailbox_size,
            default_ttl_seconds=ns.message_ttl,
            max_payload_bytes=parse_size(ns.message_max_bytes, "--message-max-bytes"),
            max_total_bytes=parse_size(ns.messages_memory, "--messages-memory"),
        )
    except InvalidArgument as exc:
        text = exc.message.removeprefix("messaging ")
        for name, flag in _FLAGS.items():
            text = text.replace(name, flag)
        raise InvalidArgument(text) from None

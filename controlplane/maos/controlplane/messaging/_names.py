"""Mailbox names and the identifiers inside them; every rejection says what is allowed.

    task:<task id>                  a task's inbox (Send, broadcast)
    topic:<topic>/<subscriber>      one subscription of a topic (Publish copies into each)

Message recipients also read "topic:<topic>" and "tree:<root id>" (how a copy
got there), but those name no mailbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from maos.errors import InvalidArgument

TASK_PREFIX = "task:"
TOPIC_PREFIX = "topic:"
TREE_PREFIX = "tree:"
MAX_NAME_CHARS = 200
MAX_MESSAGE_ID_CHARS = 128

# Topic and subscriber names: printable, no "/" (it separates them) and no spaces.
_NAME = re.compile(r"[A-Za-z0-9._:@+=-]+")
_TOKEN_HELP = "letters, digits and . _ - : @ + = (no spaces or /)"
_PRINTABLE_ID = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True)
class MailboxName:
    """A parsed mailbox name: a task's inbox, or a topic subscription."""

    task_id: str = ""
    topic: str = ""
    subscriber: str = ""

    @property
    def is_task(self) -> bool:
        """True for "task:<id>"."""
        return bool(self.task_id)

    def __str__(self) -> str:
        if self.task_id:
            return TASK_PREFIX + self.task_id
        return f"{TOPIC_PREFIX}{self.topic}/{self.subscriber}"


def task_mailbox(task_id: str) -> str:
    """The inbox name of a task."""
    return TASK_PREFIX + task_id


def subscription_mailbox(topic: str, subscriber: str) -> str:
    """The mailbox name of one subscription of a topic."""
    return f"{TOPIC_PREFIX}{topic}/{subscriber}"


def check_token(value: str, what: str) -> str:
    """A topic or subscriber name, or InvalidArgument."""
    if not value:
        raise InvalidArgument(f"{what} is empty: name it with {_TOKEN_HELP}")
    if len(value) > MAX_NAME_CHARS:
        raise InvalidArgument(f"{what} is {len(value)} characters long; the limit is {MAX_NAME_CHARS}")
    if not _NAME.fullmatch(value):
        raise InvalidArgument(f"{what} {value!r} may contain only {_TOKEN_HELP}")
    return value


def check_task_id(value: str, what: str) -> str:
    """A task id in a request (its existence is checked elsewhere)."""
    if not value:
        raise InvalidArgument(f"{what} is empty: pass a task id")
    if len(value) > MAX_NAME_CHARS or not _PRINTABLE_ID.fullmatch(value):
        raise InvalidArgument(f"{what} {value[:40]!r} is not a task id")
    return value


def check_message_id(value: str) -> str:
    """A client-chosen message id: printable ASCII without spaces, at most 128 characters."""
    if len(value) > MAX_MESSAGE_ID_CHARS:
        raise InvalidArgument(f"message_id is {len(value)} characters long; the limit is {MAX_MESSAGE_ID_CHARS}")
    if not _PRINTABLE_ID.fullmatch(value):
        raise InvalidArgument(f"message_id {value[:40]!r} must be printable ASCII without spaces")
    return value


def parse_mailbox(text: str) -> MailboxName:
    """Parse "task:<id>" or "topic:<topic>/<subscriber>"; InvalidArgument otherwise."""
    if text.startswith(TASK_PREFIX):
        return MailboxName(task_id=check_task_id(text[len(TASK_PREFIX) :], "the mailbox's task id"))
    if text.startswith(TOPIC_PREFIX):
        topic, sep, subscriber = text[len(TOPIC_PREFIX) :].partition("/")
        if not sep:
            raise InvalidArgument(
                f"mailbox {text!r} names a topic but no subscriber: use topic:<topic>/<subscriber>, "
                "one subscriber name per reader"
            )
        return MailboxName(topic=check_token(topic, "topic"), subscriber=check_token(subscriber, "subscriber"))
    raise InvalidArgument(f"mailbox {text[:60]!r} must be task:<task id> or topic:<topic>/<subscriber>")

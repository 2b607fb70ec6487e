"""Checks on namespaces, keys and values; every rejection says what is allowed."""

from __future__ import annotations

import re

import orjson
from maos.errors import InvalidArgument

from ._model import StateLimits

GLOBAL_NAMESPACE = "global"
TREE_PREFIX = "tree:"
# Root task ids are ULIDs; allowing only id-like characters keeps namespaces safe to embed
# in Redis key names (no "{" or "}", which would break hash tags).
_TREE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def tree_namespace(root_id: str) -> str:
    """The namespace of the task tree whose root is `root_id`."""
    return TREE_PREFIX + root_id


def tree_of(namespace: str) -> str | None:
    """The root task id of a tree namespace; None for `global`."""
    return namespace[len(TREE_PREFIX) :] if namespace.startswith(TREE_PREFIX) else None


def check_namespace(namespace: str) -> str:
    """`namespace` if it is `global` or `tree:<root task id>`; InvalidArgument otherwise."""
    if namespace == GLOBAL_NAMESPACE:
        return namespace
    root = tree_of(namespace)
    if root is None or not _TREE_ID.fullmatch(root):
        raise InvalidArgument(
            f"namespace {namespace!r} is not valid: use tree:<root task id> (letters, digits, '.', '_', '-') or global"
        )
    return namespace


def check_key(key: str, limits: StateLimits, what: str = "key") -> bytes:
    """The key's UTF-8 bytes; InvalidArgument when empty or too long."""
    if not key:
        raise InvalidArgument(f"{what} is empty: name the key")
    raw = _utf8(key, what)
    if len(raw) > limits.max_key_bytes:
        raise InvalidArgument(
            f"{what} {key[:40]!r}... is {len(raw)} bytes; the limit is {limits.max_key_bytes} bytes (UTF-8)"
        )
    if "\x00" in key:
        raise InvalidArgument(f"{what} {key!r} contains a NUL character")
    return raw


def check_prefix(prefix: str, limits: StateLimits) -> bytes:
    """A list/watch prefix's UTF-8 bytes (may be empty); InvalidArgument when too long."""
    raw = _utf8(prefix, "prefix")
    if len(raw) > limits.max_key_bytes:
        raise InvalidArgument(f"prefix is {len(raw)} bytes; the limit is {limits.max_key_bytes} bytes (UTF-8)")
    return raw


def check_value(key: str, value: bytes, limits: StateLimits) -> None:
    """InvalidArgument when `value` is over the size limit or not one JSON document (UTF-8)."""
    if len(value) > limits.max_value_bytes:
        raise InvalidArgument(
            f"the value of key {key!r} is {len(value):,} bytes; the limit is {limits.max_value_bytes:,} bytes"
            f" ({_human(limits.max_value_bytes)})"
        )
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"the value of key {key!r} is not valid JSON: {exc}") from None


def prefix_end(prefix: bytes) -> bytes:
    """An exclusive upper bound for keys starting with `prefix` (by bytes): 0xFF never
    occurs in UTF-8, so every such key sorts below prefix + b"\\xff"."""
    return prefix + b"\xff"


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{what} {text!r} is not valid Unicode text (it has a lone surrogate)") from None


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"

"""The writes both SQL state backends share: validate, queue one write to the backend's own
writer (`_submit`), and turn its result into the answer or the StaleVersion it carries."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

from ._model import DeleteOutcome, StaleVersion, StateChange, StateLimits
from ._validation import check_key, check_value

WriteKind = Literal["put", "cas", "delete"]
WriteResult = StateChange | DeleteOutcome | StaleVersion


class QueuedWrites(ABC):
    """put, cas and delete over `_submit`; a subclass sets `_limits` and queues the write."""

    _limits: StateLimits

    @abstractmethod
    async def _submit(
        self, kind: WriteKind, namespace: str, key: str, raw: bytes, value: bytes, expected: int
    ) -> WriteResult:
        """Queue one write (expected: -1 any version, else the version a cas or delete expects)."""

    async def put(self, namespace: str, key: str, value: bytes) -> StateChange:
        raw = check_key(key, self._limits)
        check_value(key, value, self._limits)
        return _change(await self._submit("put", namespace, key, raw, value, -1))

    async def cas(self, namespace: str, key: str, value: bytes, expected_version: int) -> StateChange:
        raw = check_key(key, self._limits)
        check_value(key, value, self._limits)
        return _change(await self._submit("cas", namespace, key, raw, value, max(expected_version, 0)))

    async def delete(self, namespace: str, key: str, expected_version: int = 0) -> DeleteOutcome:
        raw = check_key(key, self._limits)
        result = await self._submit("delete", namespace, key, raw, b"", max(expected_version, 0))
        if isinstance(result, StaleVersion):
            raise result
        assert isinstance(result, DeleteOutcome)
        return result


def _change(result: WriteResult) -> StateChange:
    if isinstance(result, StaleVersion):
        raise result
    assert isinstance(result, StateChange)
    return result

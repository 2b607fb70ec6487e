"""What checkpoints need from every shared-state backend (embedded SQLite and a real Redis):
every namespace that holds keys, and an import that keeps versions and revisions exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from maos.controlplane.state import StateEntry

from tests.integration.state.conftest import BACKENDS, open_backend


@pytest.mark.parametrize("kind", BACKENDS)
async def test_namespaces_and_an_exact_import_into_another_backend(kind: str, tmp_path: Path) -> None:
    async with open_backend(kind, tmp_path) as source, open_backend(kind, tmp_path) as target:
        assert await source.namespaces() == []
        await source.put("tree:R1", "a", b'{"n": 1}')
        await source.put("tree:R1", "a", b'{"n": 2}')
        await source.put("tree:R1", "b/c", b'"text"')
        await source.put("global", "cfg", b"[1, 2]")
        await source.put("tree:R2", "gone", b"0")
        await source.delete("tree:R2", "gone")
        assert await source.namespaces() == ["global", "tree:R1"]  # R2 holds no key any more
        entries = [e for ns in await source.namespaces() for e in await source.list(ns)]

        await target.import_entries(entries)
        assert await target.namespaces() == ["global", "tree:R1"]
        for e in entries:
            assert await target.get(e.namespace, e.key) == e
        # Writes after the import go on from the imported versions and revisions.
        change = await target.cas("tree:R1", "a", b'{"n": 3}', expected_version=2)
        assert (change.entry.version, change.entry.revision) == (3, 4)
        assert await target.changes("tree:R1", 0, 10) == [change]  # the log starts empty

        await target.import_entries([StateEntry("tree:R9", "k", b"1", 5, 40, 1.0)])
        assert (await target.put("tree:R9", "other", b"2")).entry.revision == 41

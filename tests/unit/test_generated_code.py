"""The committed stubs are what scripts/gen_protos.py makes from proto/ today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "clients" / "python" / "maos" / "v1"


def test_generated_stubs_are_fresh(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "gen_protos.py"), "--out", str(tmp_path)], check=True)
    fresh = tmp_path / "maos" / "v1"
    fresh_files = {p.name: p.read_text() for p in fresh.iterdir() if p.is_file()}
    committed_files = {p.name: p.read_text() for p in COMMITTED.iterdir() if p.is_file()}
    assert sorted(fresh_files) == sorted(committed_files), "run: python scripts/gen_protos.py"
    stale = [name for name in fresh_files if fresh_files[name] != committed_files[name]]
    assert not stale, f"stale generated files {stale}: run `python scripts/gen_protos.py` and commit"


def test_proto_enums_start_with_unspecified_zero() -> None:
    from maos.v1 import admin_pb2, agents_pb2, common_pb2, hosts_pb2, tasks_pb2

    for module in (common_pb2, hosts_pb2, tasks_pb2, agents_pb2, admin_pb2):
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            zero = enum.values_by_number[0].name
            assert zero.endswith("_UNSPECIFIED"), f"{enum.name} starts with {zero}"

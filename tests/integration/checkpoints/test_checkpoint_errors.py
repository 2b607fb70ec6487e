"""Bad checkpoints and bad targets: one clear error each, and nothing existing is overwritten."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from maos.client.cli._local import StartupError
from maos.errors import FailedPrecondition

from .conftest import Plane


def damage(checkpoints: Path, checkpoint_id: str, how: str) -> None:
    folder = checkpoints / checkpoint_id
    tasks = folder / "tasks.json.lz4"
    data = tasks.read_bytes()
    if how == "corrupt":
        middle = len(data) // 2
        tasks.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    elif how == "truncated":
        tasks.write_bytes(data[: len(data) // 2])
    elif how == "newer format":
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
        manifest["format_version"] = 99
        manifest["maos_version"] = "9.0.0"
        (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    elif how == "manifest not json":
        (folder / "manifest.json").write_bytes(b'{"format": "maos-checkpoint", "format_ver')
    elif how == "missing section":
        tasks.unlink()


@pytest.mark.slow
def test_damaged_checkpoints_are_refused_with_one_clear_error_and_change_nothing(planes: Any) -> None:
    source: Plane = planes("source")
    client = source.client()
    ids = [client.submit_task(f"task {i}", agent_type="echo", input={"i": i}).id for i in range(300)]
    client.state.put("k", {"v": 1}, namespace="global")
    made = {how: source.checkpoints().create(label=how).id for how in ("corrupt", "truncated", "newer format")}
    made["manifest not json"] = source.checkpoints().create().id
    made["missing section"] = source.checkpoints().create().id
    good = source.checkpoints().create(label="intact").id
    source.stop()
    checkpoints = source.data_dir / "checkpoints"
    for how, checkpoint_id in made.items():
        damage(checkpoints, checkpoint_id, how)

    target: Plane = planes("target", "--checkpoints", str(checkpoints))
    restorer = target.checkpoints()
    expected = {
        "corrupt": "SHA-256 checksum does not match; the checkpoint is corrupt",
        "truncated": "the checkpoint is truncated or damaged",
        "newer format": "has format version 99 (written by MAOS 9.0.0); this control plane",
        "manifest not json": "has a corrupt manifest (not JSON",
        "missing section": "lacks its file tasks.json.lz4",
    }
    for how, checkpoint_id in made.items():
        with pytest.raises(Exception, match=re.escape(expected[how])) as info:
            restorer.restore(checkpoint_id)
        assert checkpoint_id in str(info.value)
        assert "\n" not in str(info.value)
        assert type(info.value).__name__ in ("FailedPrecondition", "NotFound"), how
        assert list(target.client().list_tasks()) == [], f"{how}: something was written"
        assert target.client().state.get("k", namespace="global") is None

    listed = {c.id: c for c in restorer.list()}
    assert "corrupt manifest" in listed[made["manifest not json"]].problem
    assert listed[good].problem == "" and listed[good].counts["tasks"] == 300
    shown = target.maosctl("checkpoint", "restore", made["corrupt"])
    errors = [line for line in shown.stderr.splitlines() if line.startswith("error:")]
    assert shown.returncode == 1 and shown.stdout == ""
    assert errors == [shown.stderr.splitlines()[-1]] and errors[0].startswith("error: checkpoint ")

    # A damaged checkpoint left nothing behind: the intact one still restores in full.
    summary = restorer.restore(good)
    assert summary.counts["tasks"] == 300
    assert sorted(t.id for t in target.client().list_tasks(page_size=500)) == sorted(ids)
    deleted = restorer.delete(made["manifest not json"])  # a damaged checkpoint can still be deleted
    assert deleted.id == made["manifest not json"] and deleted.problem
    with pytest.raises(FailedPrecondition, match="already holds 300 tasks"):
        restorer.restore(good)


def test_a_checkpoint_bucket_that_does_not_exist_stops_the_start_with_one_line(
    planes: Any, s3: Any, s3_endpoint: str
) -> None:
    with pytest.raises(StartupError) as info:
        planes("cp", "--checkpoints", "s3://no-such-bucket/maos", "--checkpoints-endpoint-url", s3_endpoint)
    assert "error: the checkpoint bucket 'no-such-bucket' does not exist" in str(info.value)


def test_an_unwritable_checkpoint_directory_is_one_clear_error(planes: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StartupError, match="cannot use checkpoint directory"):
        planes("cp", "--checkpoints", str(blocker / "checkpoints"))
    shutil.rmtree(tmp_path / "cp", ignore_errors=True)

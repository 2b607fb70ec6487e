"""Checkpoints in S3 (a local moto server): multipart upload in parallel parts, then a wiped
store (a fresh data directory) restored from the bucket to the same tasks and state."""

from __future__ import annotations

import math
from typing import Any

import pytest
from maos.client import task_result

from .conftest import Plane

KIB = 1024


@pytest.mark.slow
def test_checkpoint_to_s3_with_multipart_then_restore_onto_a_wiped_store(
    planes: Any, s3: Any, s3_endpoint: str
) -> None:
    s3.create_bucket(Bucket="maos-checkpoints")
    flags = (
        "--checkpoints",
        "s3://maos-checkpoints/cluster-a",
        "--checkpoints-endpoint-url",
        s3_endpoint,
        "--checkpoints-multipart-threshold",
        "16KiB",
        "--checkpoints-part-size",
        "4KiB",
    )
    old: Plane = planes("old", *flags)
    client = old.client()
    specs = [{"description": f"shard {i}", "agent_type": "echo", "input": {"shard": i}} for i in range(1500)]
    ids = [t.id for t in client.submit_tasks(specs)]
    for i in range(50):
        client.state.put(f"shards/{i:03d}", {"rows": i * 10}, namespace="global")
    made = old.checkpoints().create(label="to s3")
    assert made.location == f"s3://maos-checkpoints/cluster-a/{made.id}/"

    objects = s3.list_objects_v2(Bucket="maos-checkpoints", Prefix=f"cluster-a/{made.id}/")["Contents"]
    stored = {o["Key"].rpartition("/")[2]: o for o in objects}
    assert "manifest.json" in stored
    tasks_section = next(s for s in made.sections if s.name == "tasks")
    assert tasks_section.compressed_bytes >= 16 * KIB, "the tasks section must be big enough to go multipart"
    parts = math.ceil(tasks_section.compressed_bytes / (4 * KIB))
    etag = s3.head_object(Bucket="maos-checkpoints", Key=f"cluster-a/{made.id}/tasks.json.lz4")["ETag"]
    assert etag.strip('"').endswith(f"-{parts}"), f"not a {parts}-part multipart upload: {etag}"
    small = s3.head_object(Bucket="maos-checkpoints", Key=f"cluster-a/{made.id}/library.json.lz4")["ETag"]
    assert "-" not in small.strip('"')
    old.stop()

    new: Plane = planes("new", *flags)  # a fresh data directory: the store is wiped
    assert [c.id for c in new.checkpoints().list()] == [made.id]
    summary = new.checkpoints().restore(made.id)
    assert summary.counts["tasks"] == 1500 and summary.counts["state_entries"] == 50
    restored = new.client()
    assert sorted(t.id for t in restored.list_tasks(page_size=500)) == sorted(ids)
    entry = restored.state.get("shards/042", namespace="global")
    assert entry is not None and entry.value == {"rows": 420}

    new.add_host(workers=2)
    done = restored.wait_tasks(ids, timeout=60)
    assert all(task_result(t) == {"shard": i} for i, t in enumerate(done)), new.logs()

    new.checkpoints().delete(made.id)
    assert s3.list_objects_v2(Bucket="maos-checkpoints", Prefix=f"cluster-a/{made.id}/").get("KeyCount") == 0

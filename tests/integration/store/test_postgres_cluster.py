"""A real control plane on PostgreSQL, a real host: tasks complete, survive a restart, and
the store holds them."""

from __future__ import annotations

from pathlib import Path

import pytest
from maos.v1 import common_pb2

from tests.integration.conftest import Cluster
from tests.integration.store.pg import fresh_schema_sync, schema_url
from tests.support.api import result_of

COMPLETED = common_pb2.TASK_STATUS_COMPLETED


@pytest.mark.slow
def test_a_cluster_on_postgresql_completes_tasks_and_keeps_them(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    with fresh_schema_sync() as schema:
        store = ["--store", schema_url(schema), "--store-pool-size", "2", "--store-max-overflow", "2"]
        try:
            cluster.start_controlplane(extra=store)
            cluster.add_host(workers=2)
            specs = [
                common_pb2.TaskSpec(
                    description=f"echo {i}",
                    agent_type="echo",
                    input=common_pb2.Payload(data=f'{{"i": {i}}}'.encode(), content_type="application/json"),
                )
                for i in range(50)
            ]
            ids = [t.id for t in cluster.api.submit_many(specs)]
            done = cluster.api.wait(ids)
            assert [t.status for t in done] == [COMPLETED] * 50, cluster.logs()
            assert sorted(result_of(t)["i"] for t in done) == list(range(50))
            # A restarted control plane reads them back from PostgreSQL.
            assert cluster.cp is not None
            cluster.cp.stop()
            cluster.start_controlplane(extra=store)
            again = cluster.api.get(ids[7])
            assert again.status == COMPLETED and result_of(again) == {"i": 7}
        finally:
            cluster.stop()

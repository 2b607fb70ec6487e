"""The messaging bounds as daemon flags, on a real control plane: a mailbox as small as
`--mailbox-size` says, and payloads no larger than `--message-max-bytes`."""

from __future__ import annotations

import pytest
from maos.client import Client
from maos.errors import ResourceExhausted

from tests.integration.conftest import Cluster


def test_mailbox_size_and_message_max_bytes_bound_a_real_control_plane(fresh_cluster: Cluster) -> None:
    cluster = fresh_cluster
    cluster.start_controlplane(extra=["--mailbox-size", "3", "--message-max-bytes", "1KiB"])
    task = cluster.api.submit("waits in the queue: no host runs it", agent_type="echo")
    with Client(cluster.endpoint) as client:
        for i in range(3):
            client.messages.send(task.id, {"n": i})
        with pytest.raises(ResourceExhausted, match="full"):
            client.messages.send(task.id, {"n": 3})
        with pytest.raises(ResourceExhausted, match="the limit is 1024"):
            client.messages.send(task.id, "x" * 2000)

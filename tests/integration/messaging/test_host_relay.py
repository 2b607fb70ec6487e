"""Messages through the hosts' relays: across two hosts via the control plane, and host-locally."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from click.testing import CliRunner
from maos.client import Client
from maos.client.cli import cli
from maos.testing import start_agenthost, wait_for_hosts
from maos.v1 import common_pb2, messages_pb2, tasks_pb2

from tests.integration.conftest import TEST_AGENTS, Cluster
from tests.support.api import result_of

COUNT = 10_000


def _agents_file(tmp: Path, name: str, only: str) -> Path:
    """An agents file offering just one of the test profiles, so a host runs only that type."""
    profiles = yaml.safe_load(TEST_AGENTS.read_text())
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"agent_types": {only: profiles["agent_types"][only]}}))
    return path


def _chat(c: Cluster, count: int) -> tuple[dict[str, object], dict[str, object], tasks_pb2.SubmitWorkflowResponse]:
    def node(key: str, agent_type: str) -> tasks_pb2.WorkflowNode:
        data = f'{{"count": {count}}}'.encode()
        spec = common_pb2.TaskSpec(
            description=key, agent_type=agent_type, input=common_pb2.Payload(data=data, content_type="application/json")
        )
        return tasks_pb2.WorkflowNode(key=key, spec=spec)

    reply = c.api.tasks.SubmitWorkflow(
        tasks_pb2.SubmitWorkflowRequest(
            root=common_pb2.TaskSpec(description="chat"),
            nodes=[node("receiver", "chat-receiver"), node("sender", "chat-sender")],
        ),
        timeout=10,
    )
    root = c.api.wait_one(reply.root.id, timeout=110)
    assert root.status == common_pb2.TASK_STATUS_COMPLETED, (root.error, c.logs())
    receiver = result_of(c.api.get(reply.task_ids["receiver"]))
    sender = result_of(c.api.get(reply.task_ids["sender"]))
    return receiver, sender, reply


def _host_stats(endpoint: str) -> dict[str, messages_pb2.HostMessageStats]:
    with Client(endpoint) as client:
        return {row.host_id: row.stats for row in client.messages.host_stats()}


def test_two_hosts_exchange_10000_messages_each_once_in_order(fresh_cluster: Cluster, tmp_path: Path) -> None:
    c = fresh_cluster
    c.start_controlplane(extra=["--heartbeat-interval", "0.5"])
    for name, only in (("receiving", "chat-receiver"), ("sending", "chat-sender")):
        host = start_agenthost(
            c.endpoint, c.root / "hosts", workers=1, agents=_agents_file(tmp_path, name, only), host_id=name
        )
        c.hosts.append(host)
    wait_for_hosts(c.endpoint, 2)
    receiver, sender, reply = _chat(c, COUNT)
    assert sender == {"sent": COUNT, "to": reply.task_ids["receiver"]}
    assert receiver["distinct"] == COUNT and receiver["fifo_within_priority"] is True, receiver
    # The receiver ran on one host and the sender on the other: every message crossed the control plane.
    assert c.api.get(reply.task_ids["receiver"]).attempts[-1].host_id == "receiving"
    assert c.api.get(reply.task_ids["sender"]).attempts[-1].host_id == "sending"
    rows: dict[str, messages_pb2.HostMessageStats] = {}
    for _ in range(50):  # relay statistics ride on heartbeats
        rows = _host_stats(c.endpoint)
        if {"sending", "receiving"} <= rows.keys():
            if rows["receiving"].acknowledged >= COUNT and rows["sending"].sent_upstream >= COUNT:
                break
        time.sleep(0.2)
    sending, receiving = rows["sending"], rows["receiving"]
    assert sending.sent_upstream == COUNT and sending.sent_local == 0
    assert receiving.received >= COUNT and receiving.acknowledged >= COUNT
    assert sending.bytes_raw > 0 and receiving.batches_down > 0


def test_agents_on_one_host_exchange_messages_without_the_control_plane(fresh_cluster: Cluster) -> None:
    c = fresh_cluster
    c.start_controlplane(extra=["--heartbeat-interval", "0.5"])
    c.add_host(workers=2, host_id="both")
    receiver, sender, _ = _chat(c, 2000)
    assert sender["sent"] == 2000
    assert receiver["distinct"] == 2000 and receiver["fifo_within_priority"] is True, receiver
    with Client(c.endpoint) as client:
        mailboxes = {row.mailbox: row for row in client.messages.stats()}
    # Nothing was sent to the receiver's mailbox on the control plane: the host delivered it all.
    assert all(row.sent == 0 for name, row in mailboxes.items() if name.startswith("task:")), mailboxes
    for _ in range(50):
        stats = _host_stats(c.endpoint).get("both")
        if stats is not None and stats.acknowledged >= 2000:
            break
        time.sleep(0.2)
    assert stats is not None and stats.sent_local == 2000 and stats.sent_upstream == 0, stats
    shown = CliRunner().invoke(cli, ["--endpoint", c.endpoint, "msg", "stats", "--hosts", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    (row,) = json.loads(shown.output)
    assert row["host_id"] == "both" and row["sent_local"] == 2000
    table = CliRunner().invoke(cli, ["--endpoint", c.endpoint, "msg", "stats", "--hosts"])
    assert table.exit_code == 0 and "both" in table.output and "LOCAL" in table.output, table.output


def test_a_message_to_an_agent_reaches_the_task_it_runs(fresh_cluster: Cluster) -> None:
    c = fresh_cluster
    c.start_controlplane()
    c.add_host(workers=1)
    task = c.api.submit("hold a worker", "sleeper", {"seconds": 30})
    agent_id = ""
    for _ in range(100):
        attempts = c.api.get(task.id).attempts
        if attempts and attempts[-1].agent_id:
            agent_id = attempts[-1].agent_id
            break
        time.sleep(0.05)
    assert agent_id, c.logs()
    runner = CliRunner()
    sent = runner.invoke(cli, ["--endpoint", c.endpoint, "msg", "send", "--agent", agent_id, '{"hi": 1}'])
    assert sent.exit_code == 0, sent.output
    with Client(c.endpoint) as client:
        (msg,) = client.messages.receive(f"task:{task.id}", max=10, wait=5)
        assert msg.recipient == f"task:{task.id}" and json.loads(msg.payload.data) == {"hi": 1}
        client.cancel_task(task.id)
    missing = runner.invoke(cli, ["--endpoint", c.endpoint, "msg", "send", "--agent", "no-such-agent", "1"])
    assert missing.exit_code == 1 and "not running a task" in missing.output, missing.output


def test_a_topic_subscriber_on_one_host_gets_every_message_published_on_another(
    fresh_cluster: Cluster, tmp_path: Path
) -> None:
    c = fresh_cluster
    c.start_controlplane()
    for name, only in (("reading", "news-reader"), ("writing", "news-writer")):
        agents = _agents_file(tmp_path, name, only)
        c.hosts.append(start_agenthost(c.endpoint, c.root / "hosts", workers=1, agents=agents, host_id=name))
    wait_for_hosts(c.endpoint, 2)

    def node(key: str, agent_type: str) -> tasks_pb2.WorkflowNode:
        payload = common_pb2.Payload(data=b'{"count": 200}', content_type="application/json")
        return tasks_pb2.WorkflowNode(
            key=key, spec=common_pb2.TaskSpec(description=key, agent_type=agent_type, input=payload)
        )

    reply = c.api.tasks.SubmitWorkflow(
        tasks_pb2.SubmitWorkflowRequest(
            root=common_pb2.TaskSpec(description="news"),
            nodes=[node("reader", "news-reader"), node("writer", "news-writer")],
        ),
        timeout=10,
    )
    root = c.api.wait_one(reply.root.id, timeout=90)
    assert root.status == common_pb2.TASK_STATUS_COMPLETED, (root.error, c.logs())
    values = result_of(c.api.get(reply.task_ids["reader"]))
    assert values == list(range(values[0], values[0] + 200))  # from its first message on: all, in order
    assert c.api.get(reply.task_ids["reader"]).attempts[-1].host_id == "reading"

"""The public surface of maos.client is what __all__ says, no more, no less."""

from __future__ import annotations

import maos.client


def test_all_names_exist_and_are_public() -> None:
    for name in maos.client.__all__:
        assert hasattr(maos.client, name), name
        assert not name.startswith("_")


def test_exported_members() -> None:
    assert sorted(maos.client.__all__) == sorted(
        [
            "DEFAULT_ENDPOINT",
            "ENDPOINT_ENV",
            "SUBMIT_BATCH_LIMIT",
            "AsyncClient",
            "AsyncMessagesClient",
            "AsyncStateClient",
            "CheckpointClient",
            "Client",
            "MessagesClient",
            "SpecLike",
            "SpecOptions",
            "StateClient",
            "StateValue",
            "TaskContext",
            "agent_status_name",
            "from_rpc_error",
            "host_status_name",
            "is_final",
            "parse_priority",
            "parse_status",
            "parse_task_type",
            "priority_name",
            "resolve_endpoint",
            "status_name",
            "task_input",
            "task_result",
            "task_spec",
            "task_type_name",
        ]
    )


def test_endpoint_resolution(monkeypatch) -> None:
    monkeypatch.delenv("MAOS_ENDPOINT", raising=False)
    assert maos.client.resolve_endpoint() == "127.0.0.1:7700"
    monkeypatch.setenv("MAOS_ENDPOINT", "10.1.2.3:9000")
    assert maos.client.resolve_endpoint() == "10.1.2.3:9000"
    assert maos.client.resolve_endpoint("h:1") == "h:1"
    assert maos.client.Client().endpoint == "10.1.2.3:9000"


def test_agent_workers_do_not_pay_for_grpc() -> None:
    # Workers import maos.client._context, which runs maos.client/__init__ first.
    import subprocess
    import sys

    code = "import sys, maos.client._context; print('grpc' in sys.modules, 'maos.v1.tasks_pb2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]

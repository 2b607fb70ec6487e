"""The public surface of maos.tracing is what __all__ says, no more, no less."""

from __future__ import annotations

import maos.tracing


def test_all_names_exist_and_are_public() -> None:
    for name in maos.tracing.__all__:
        assert hasattr(maos.tracing, name), name
        assert not name.startswith("_")


def test_exported_members() -> None:
    assert sorted(maos.tracing.__all__) == sorted(
        [
            "CLIENT_SERVICE_NAME",
            "EXPORT_TIMEOUT_SECONDS",
            "OFF",
            "TRACING_ENV",
            "TracingSpec",
            "active_spec",
            "agent_run_span",
            "aio_client_interceptors",
            "assignment_spans",
            "configure",
            "configure_from_env",
            "enabled",
            "force_flush",
            "intercept_channel",
            "message_spans",
            "parse_spec",
            "record_run_outcome",
            "shutdown",
            "spec_from_env",
            "task_spans",
            "tracer",
        ]
    )

"""The text exposition: HELP/TYPE per family, escaped labels, values Prometheus parses."""

from __future__ import annotations

import math
import re

from maos.controlplane.metrics import method_name
from maos.controlplane.metrics._prometheus import Exposition, format_value

# A sample line of the 0.0.4 text format: name, optional {labels}, value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')


def test_families_and_samples_render_in_the_text_format() -> None:
    out = Exposition()
    out.family("maos_tasks_completed_total", "counter", "Tasks that completed.\nBy type.")
    out.sample("maos_tasks_completed_total", 3, {"agent_type": "echo"})
    out.sample("maos_tasks_completed_total", 1, {"agent_type": 'we"ird\\type\n'})
    out.family("maos_queue_oldest_seconds", "gauge", "Oldest.")
    out.sample("maos_queue_oldest_seconds", 1.5)
    lines = out.text().splitlines()
    assert lines[0] == "# HELP maos_tasks_completed_total Tasks that completed.\\nBy type."
    assert lines[1] == "# TYPE maos_tasks_completed_total counter"
    assert lines[2] == 'maos_tasks_completed_total{agent_type="echo"} 3'
    assert lines[3] == 'maos_tasks_completed_total{agent_type="we\\"ird\\\\type\\n"} 1'
    assert lines[-1] == "maos_queue_oldest_seconds 1.5"
    assert out.text().endswith("\n")
    for line in lines:
        assert line.startswith("# ") or SAMPLE.match(line), line


def test_values() -> None:
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert float(format_value(1e-7)) == 1e-7


def test_method_names_are_short() -> None:
    assert method_name("/maos.v1.TaskService/SubmitTask") == "TaskService/SubmitTask"
    assert method_name("/grpc.health.v1.Health/Check") == "Health/Check"
    assert method_name("Odd") == "Odd"

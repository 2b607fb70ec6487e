"""The analyst agent's statistics, checked against the statistics module on generated data."""

from __future__ import annotations

import csv
import json
import random
import statistics
from pathlib import Path
from typing import Any

import pytest
from maos.agenthost.builtin import analyst
from maos.client._context import TaskContext


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []

    def send_progress(self, ctx: TaskContext, fraction: float, message: str) -> None:
        self.events.append((fraction, message))

    def schedule_progress_flush(self, ctx: TaskContext, at: float) -> None:
        pass


def rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"day": i * 2, "price": round(100 + 0.5 * i + rng.gauss(0, 3), 3), "qty": rng.randint(1, 50), "name": f"n{i}"}
        for i in range(n)
    ]


def write_csv(path: Path, data: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows(data)
    return path


def ctx(recorder: Recorder | None = None) -> TaskContext:
    return TaskContext(task_id="t", runtime=recorder)


def check_column(stats: dict[str, Any], values: list[float]) -> None:
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    assert stats["count"] == len(values)
    assert stats["mean"] == pytest.approx(statistics.fmean(values))
    assert stats["std"] == pytest.approx(statistics.stdev(values))
    assert stats["min"] == min(values)
    assert stats["max"] == max(values)
    assert stats["p25"] == pytest.approx(q1)
    assert stats["p50"] == pytest.approx(statistics.median(values))
    assert stats["p50"] == pytest.approx(q2)
    assert stats["p75"] == pytest.approx(q3)


def test_csv_statistics_match_the_statistics_module(tmp_path: Path) -> None:
    data = rows(503)
    path = write_csv(tmp_path / "shard.csv", data)
    result = analyst.run(ctx(), {"path": str(path)})
    assert result["path"] == str(path)
    assert result["rows"] == 503
    assert set(result["columns"]) == {"day", "price", "qty"}  # "name" is not numeric
    for column in ("day", "price", "qty"):
        check_column(result["columns"][column], [float(r[column]) for r in data])


def test_trend_is_least_squares_against_the_row_index(tmp_path: Path) -> None:
    data = rows(200)
    path = write_csv(tmp_path / "shard.csv", data)
    trend = analyst.run(ctx(), {"path": str(path), "columns": ["price"]})["columns"]["price"]["trend"]
    xs = list(range(200))
    ys = [r["price"] for r in data]
    fit = statistics.linear_regression(xs, ys)
    assert trend["slope"] == pytest.approx(fit.slope)
    assert trend["intercept"] == pytest.approx(fit.intercept)
    assert trend["r2"] == pytest.approx(statistics.correlation(xs, ys) ** 2)
    assert 0.4 < trend["slope"] < 0.6


def test_trend_against_an_x_column(tmp_path: Path) -> None:
    data = rows(100)
    path = tmp_path / "shard.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in data) + "\n")
    result = analyst.run(ctx(), {"path": str(path), "x": "day"})
    assert "day" not in result["columns"]  # the x column is not analysed against itself
    fit = statistics.linear_regression([r["day"] for r in data], [r["price"] for r in data])
    assert result["columns"]["price"]["trend"]["slope"] == pytest.approx(fit.slope)


def test_json_list_and_rows_object(tmp_path: Path) -> None:
    data = rows(50)
    (tmp_path / "a.json").write_text(json.dumps(data))
    (tmp_path / "b.json").write_text(json.dumps({"rows": data}))
    a = analyst.run(ctx(), {"path": str(tmp_path / "a.json")})
    b = analyst.run(ctx(), {"path": str(tmp_path / "b.json")})
    assert a["columns"] == b["columns"]
    check_column(a["columns"]["qty"], [float(r["qty"]) for r in data])


def test_missing_values_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("a,b\n1,x\n,y\n3,z\n5,\nnan,w\n")
    result = analyst.run(ctx(), {"path": str(path)})
    assert result["rows"] == 5
    assert result["columns"]["a"]["count"] == 3
    assert result["columns"]["a"]["mean"] == pytest.approx(3.0)
    assert "b" not in result["columns"]


def test_sums_pool_exactly(tmp_path: Path) -> None:
    data = rows(40)
    sums = analyst.run(ctx(), {"path": str(write_csv(tmp_path / "s.csv", data))})["sums"]["qty"]
    values = [float(r["qty"]) for r in data]
    assert sums["n"] == 40
    assert sums["sum"] == pytest.approx(sum(values))
    assert sums["sumsq"] == pytest.approx(sum(v * v for v in values))
    assert sums["m2"] == pytest.approx(statistics.pvariance(values) * 40)
    assert len(sums["sketch"]) == 21
    assert sums["sketch"][0] == min(values)
    assert sums["sketch"][-1] == max(values)


def test_progress_every_tenth_of_the_rows(tmp_path: Path) -> None:
    recorder = Recorder()
    analyst.analyse(ctx(recorder), "mem", rows(1000))
    # The context rate-limits; the first event always goes out, then at most 10/s.
    assert recorder.events
    assert recorder.events[0] == (0.1, "100/1000 rows")


def test_single_row_has_no_std_or_trend() -> None:
    result = analyst.analyse(None, "mem", [{"v": 4}])
    column = result["columns"]["v"]
    assert column["std"] is None
    assert column["trend"] == {"slope": None, "intercept": None, "r2": None}
    assert column["p25"] == column["p75"] == 4.0


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda p: {"path": str(p / "missing.csv")}, "input file not found: {p}/missing.csv"),
        (lambda p: {"path": str(p / "text.csv")}, "{p}/text.csv: no numeric columns (columns: word)"),
        (lambda p: {"path": str(p / "data.txt")}, "unsupported file type '.txt'"),
        (lambda p: {"path": str(p / "text.csv"), "columns": ["nope"]}, "no column 'nope'"),
        (lambda p: {"path": str(p / "text.csv"), "columns": ["word"]}, "column 'word' is not numeric"),
        (lambda p: {"file": "x"}, 'input must be an object like {"path": "/abs/file.csv"}'),
        (lambda p: "just a string", "input must be an object"),
    ],
)
def test_clear_errors(tmp_path: Path, make_input: Any, message: str) -> None:
    (tmp_path / "text.csv").write_text("word\nhello\nworld\n")
    (tmp_path / "data.txt").write_text("1\n")
    with pytest.raises(ValueError, match="analyst: ") as info:
        analyst.run(ctx(), make_input(tmp_path))
    assert message.replace("{p}", str(tmp_path)) in str(info.value)

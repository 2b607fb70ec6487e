"""The worker pool with real worker processes: built-in agents, commands, crashes, timeouts, cancels, logs."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import statistics
import time
from pathlib import Path

import orjson
import pytest
from maos.agenthost import Outcome, WorkerStatus

from tests.integration.agenthost.agenthost_support import Collector, PoolFactory, task


async def test_echo_tasks_return_their_input_in_batches(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=2)
    inputs = {f"e{i}": orjson.dumps({"i": i, "s": "x" * (i % 7)}).decode() for i in range(500)}
    pool.submit(task(tid, "echo", text) for tid, text in inputs.items())
    assert await pool.wait_idle(30)
    assert len(collector.outcomes) == 500
    for tid, text in inputs.items():
        out = collector.outcomes[tid]
        assert out.outcome is Outcome.SUCCEEDED, (out.error_kind, out.error_message)
        assert orjson.loads(out.result_json or "") == orjson.loads(text)
    agents = {out.agent_id for out in collector.outcomes.values()}
    assert agents == {"test-w0", "test-w1"}
    assert sum(w.tasks_completed for w in pool.workers()) == 500


async def test_async_agents_run_on_the_worker_loop(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task(f"a{i}", "async_double", str(i)) for i in range(5)])
    for i in range(5):
        out = await collector.wait(f"a{i}")
        assert out.outcome is Outcome.SUCCEEDED
        assert orjson.loads(out.result_json or "") == {"double": 2 * i}


async def test_context_carries_the_assignment(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    deps = [{"task_id": "d1", "key": "left", "status": "COMPLETED", "result": '{"v": 1}', "description": "dep"}]
    pool.submit(
        [
            task(
                "c1",
                "context_view",
                '{"q": [1, 2]}',
                description="look around",
                root_id="r1",
                parent_id="p1",
                dependencies=deps,
                labels={"team": "a"},
            )
        ]
    )
    out = await collector.wait("c1")
    assert out.outcome is Outcome.SUCCEEDED, out.error_message
    view = orjson.loads(out.result_json or "")
    assert view == {
        "task_id": "c1",
        "attempt": 1,
        "root_id": "r1",
        "parent_id": "p1",
        "description": "look around",
        "agent_type": "context_view",
        "input": {"q": [1, 2]},
        "dependencies": [
            {"task_id": "d1", "key": "left", "status": "COMPLETED", "result": {"v": 1}, "description": "dep"}
        ],
        "labels": {"team": "a"},
        "endpoint": "127.0.0.1:7700",
    }


async def test_analyst_then_coordinator(make_pool: PoolFactory, collector: Collector, tmp_path: Path) -> None:
    pool = await make_pool(size=2)
    shards = []
    for s in range(2):
        path = tmp_path / f"shard{s}.csv"
        prices = [10 + s * 5 + (i * 7919 % 13) / 3 for i in range(200)]
        rows = [{"t": i, "price": p, "label": f"r{i}"} for i, p in enumerate(prices)]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["t", "price", "label"])
            writer.writeheader()
            writer.writerows(rows)
        shards.append((path, prices))
    pool.submit(
        task(f"shard{s}", "analyst", orjson.dumps({"path": str(p)}).decode()) for s, (p, _) in enumerate(shards)
    )
    results = []
    for s, (_, prices) in enumerate(shards):
        out = await collector.wait(f"shard{s}")
        assert out.outcome is Outcome.SUCCEEDED, (out.error_kind, out.error_message, out.log)
        result = orjson.loads(out.result_json or "")
        assert result["rows"] == 200
        assert result["columns"]["price"]["mean"] == pytest.approx(statistics.fmean(prices))
        results.append(out.result_json)
    # Progress came every ~10% of rows.
    assert len([p for p in collector.progress if p[0] == "shard0"]) >= 1

    deps = [
        {"task_id": f"shard{s}", "key": f"k{s}", "status": "COMPLETED", "result": r, "description": ""}
        for s, r in enumerate(results)
    ]
    pool.submit([task("coord", "coordinator", "{}", dependencies=deps)])
    out = await collector.wait("coord")
    assert out.outcome is Outcome.SUCCEEDED, (out.error_kind, out.error_message, out.log)
    report = orjson.loads(out.result_json or "")
    every_price = shards[0][1] + shards[1][1]
    assert report["total_rows"] == 400
    assert report["columns"]["price"]["count"] == 400
    assert report["columns"]["price"]["mean"] == pytest.approx(statistics.fmean(every_price))
    assert report["columns"]["price"]["std"] == pytest.approx(statistics.stdev(every_price))
    assert [c["key"] for c in report["contributions"]] == ["k0", "k1"]


async def test_analyst_missing_file_fails_with_the_path(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task("a", "analyst", '{"path": "/nonexistent/data.csv"}')])
    out = await collector.wait("a")
    assert out.outcome is Outcome.FAILED
    assert out.error_kind == "exception"
    assert out.error_message == "ValueError: analyst: input file not found: /nonexistent/data.csv"
    assert "Traceback" in out.log


async def test_command_argv_is_never_a_shell(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    evil = "x; rm -rf / && echo $HOME `id` {input}"
    pool.submit([task("cmd", "argv", '{"a": "b c"}', description=evil)])
    out = await collector.wait("cmd")
    assert out.outcome is Outcome.SUCCEEDED, (out.error_message, out.log)
    assert orjson.loads(out.result_json or "") == [evil, '{"a": "b c"}', "cmd", "1"]


async def test_command_input_file_and_env(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task("cmd", "input_file", '{"n": [1, 2, 3]}', root_id="root-1")])
    out = await collector.wait("cmd")
    assert out.outcome is Outcome.SUCCEEDED, (out.error_message, out.log)
    result = orjson.loads(out.result_json or "")
    assert result["input"] == {"n": [1, 2, 3]}
    env = result["env"]
    assert env["MAOS_TASK_ID"] == "cmd"
    assert env["MAOS_ATTEMPT"] == "1"
    assert env["MAOS_ROOT_ID"] == "root-1"
    assert env["MAOS_ENDPOINT"] == "127.0.0.1:7700"


async def test_command_text_output_becomes_a_json_string(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task("t", "text_out", description="world")])
    out = await collector.wait("t")
    assert out.outcome is Outcome.SUCCEEDED
    assert orjson.loads(out.result_json or "") == "hello world"


async def test_command_exit_code_names_the_last_stderr_line(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task("f", "failing")])
    out = await collector.wait("f")
    assert out.outcome is Outcome.FAILED
    assert out.error_kind == "exit_code"
    assert "exited with code 4: the real problem" in out.error_message
    assert "warming up" in out.log


async def test_missing_program_fails_clearly(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task("m", "missing")])
    out = await collector.wait("m")
    assert out.outcome is Outcome.FAILED
    assert out.error_kind == "command_not_found"
    assert "maos-no-such-program-xyz" in out.error_message


async def test_unimportable_python_target(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task("n", "no_module")])
    out = await collector.wait("n")
    assert out.outcome is Outcome.FAILED
    assert out.error_kind == "import_error"
    assert "no_such_module_anywhere" in out.error_message


@pytest.mark.parametrize(
    ("agent_type", "how"),
    [("segfault", "died with signal SIGSEGV while running the task"), ("exit3", "exited with code 3 while running")],
)
async def test_worker_death_fails_the_task_and_the_pool_recovers(
    make_pool: PoolFactory, collector: Collector, agent_type: str, how: str
) -> None:
    pool = await make_pool(size=1)
    first_pid = pool.workers()[0].pid
    pool.submit([task("bad", agent_type), task("next", "echo", '"still alive"')])
    out = await collector.wait("bad")
    assert out.outcome is Outcome.FAILED
    assert out.error_kind == "worker_died"
    assert out.error_message == f"worker {first_pid} {how}" or how in out.error_message
    assert str(first_pid) in out.error_message
    if agent_type == "segfault":
        assert "Segmentation fault" in out.log  # the faulthandler dump
    nxt = await collector.wait("next")
    assert nxt.outcome is Outcome.SUCCEEDED
    assert orjson.loads(nxt.result_json or "") == "still alive"
    (worker,) = pool.workers()
    assert worker.pid != first_pid
    assert worker.status is WorkerStatus.IDLE


async def test_crash_inside_a_batch_blames_one_task_and_requeues_the_rest(
    make_pool: PoolFactory, collector: Collector
) -> None:
    pool = await make_pool(size=1)
    inputs = [orjson.dumps({"i": i, "crash": i == 5}).decode() for i in range(12)]
    pool.submit(task(f"b{i}", "crash_if", text) for i, text in enumerate(inputs))
    assert await pool.wait_idle(30)
    for i in range(12):
        out = collector.outcomes[f"b{i}"]
        if i == 5:
            assert out.outcome is Outcome.FAILED
            assert out.error_kind == "worker_died"
        else:
            assert out.outcome is Outcome.SUCCEEDED, (i, out.error_kind, out.error_message)


async def test_timeout_kills_a_stuck_sync_function(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1, kill_grace=0.5)
    first_pid = pool.workers()[0].pid
    started = time.monotonic()
    pool.submit([task("slow", "sleeper", "60"), task("after", "echo", "1")])
    out = await collector.wait("slow")
    elapsed = time.monotonic() - started
    assert out.outcome is Outcome.TIMED_OUT
    assert out.error_kind == "timeout"
    assert out.error_message == "exceeded timeout of 1s"
    assert 1.0 <= elapsed < 1.0 + 0.5 + 1.0  # timeout + grace + slack
    assert (await collector.wait("after")).outcome is Outcome.SUCCEEDED
    assert pool.workers()[0].pid != first_pid


async def test_task_timeout_overrides_the_profile(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1, kill_grace=0.3)
    pool.submit([task("slow", "sleeper", "60", timeout_seconds=0.3)])
    out = await collector.wait("slow")
    assert out.outcome is Outcome.TIMED_OUT
    assert out.error_message == "exceeded timeout of 0.3s"


async def test_timeout_of_a_command_kills_the_child(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1, kill_grace=1.0)
    pid = pool.workers()[0].pid
    pool.submit([task("s", "sleep_cmd")])
    out = await collector.wait("s", within=10)
    assert out.outcome is Outcome.TIMED_OUT
    # The worker stopped its child within its half of the grace, so it survived.
    assert pool.workers()[0].pid == pid


async def test_cancel_running_async_agent_is_cooperative(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1, kill_grace=5.0)
    pid = pool.workers()[0].pid
    pool.submit([task("w", "waiter")])
    await collector.wait_started("w")
    await asyncio.sleep(0.2)
    started = time.monotonic()
    assert pool.cancel("w", 1, message="cancelled by the user")
    out = await collector.wait("w")
    assert time.monotonic() - started < 2.0  # well inside the 5 s kill grace: nothing was killed
    assert out.outcome is Outcome.CANCELLED
    assert out.error_message == "cancelled by the user"
    assert "async agent cancelled" in out.log
    assert pool.workers()[0].pid == pid


async def test_cancel_sync_agent_that_checks_the_flag(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1, kill_grace=5.0)
    pid = pool.workers()[0].pid
    pool.submit([task("c", "cooperative")])
    await asyncio.sleep(0.3)
    assert pool.cancel("c", 1)
    out = await collector.wait("c", within=3)
    assert out.outcome is Outcome.CANCELLED
    assert "noticed the cancel" in out.log
    assert pool.workers()[0].pid == pid


async def test_cancel_of_queued_and_unknown_tasks(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1)
    pool.submit([task("busy", "sleeper", "0.5"), task("queued", "echo", "1")])
    assert pool.cancel("queued", 1)
    out = await collector.wait("queued")
    assert out.outcome is Outcome.CANCELLED
    assert out.agent_id == ""
    assert not pool.cancel("queued", 1)
    assert not pool.cancel("never-seen", 1)
    assert (await collector.wait("busy")).outcome is Outcome.SUCCEEDED


async def test_stderr_of_a_task_lands_in_its_log(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1)
    pool.submit([task("chat", "chatty"), task("quiet", "echo", "2")])
    out = await collector.wait("chat")
    assert out.outcome is Outcome.SUCCEEDED, out.error_message
    for line in ("via print", "via sys.stderr", "via fd 2", "via a child process", "via ctx.log for chat"):
        assert line in out.log
    # The next task's log holds only its own output.
    assert (await collector.wait("quiet")).log == ""


async def test_exception_fails_with_type_message_and_traceback(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task("r", "raiser", '"x"')])
    out = await collector.wait("r")
    assert out.outcome is Outcome.FAILED
    assert out.error_kind == "exception"
    assert out.error_message == "ValueError: boom on x"
    assert "Traceback (most recent call last)" in out.log
    assert "agents_for_tests.py" in out.log


async def test_result_that_is_not_json(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task("nj", "not_json")])
    out = await collector.wait("nj")
    assert out.outcome is Outcome.FAILED
    assert out.error_kind == "result_not_json"
    assert "not JSON-serialisable" in out.error_message


async def test_progress_is_rate_limited_and_the_last_is_delivered(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task("p", "progress", "300")])  # ~0.3 s of 300 progress calls
    out = await collector.wait("p")
    assert out.outcome is Outcome.SUCCEEDED
    events = [(f, m) for tid, f, m in collector.progress if tid == "p"]
    assert 2 <= len(events) <= 12
    assert events[-1] == (1.0, "step 300")
    assert [f for f, _ in events] == sorted(f for f, _ in events)


async def test_unknown_agent_type_fails_at_once(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task("u", "no-such-type")])
    out = await collector.wait("u")
    assert out.outcome is Outcome.FAILED
    assert out.error_kind == "unknown_agent_type"


async def test_duplicate_lease_is_ignored(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool()
    pool.submit([task("d", "sleeper", "0.2"), task("d", "sleeper", "0.2")])
    assert pool.leases() == [("d", 1)]
    assert await pool.wait_idle(5)
    assert collector.order == ["d"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc for rss")
async def test_memory_limit_kills_the_worker(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1)
    pool.submit([task("hog", "memory_hog", str(300 * 1024 * 1024))])
    out = await collector.wait("hog", within=15)
    assert out.outcome is Outcome.FAILED
    assert out.error_kind == "memory_limit"
    assert "memory_hog" in out.error_message


async def test_shutdown_cancels_what_does_not_finish(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1, kill_grace=0.3)
    pool.submit([task("long", "sleeper", "30", timeout_seconds=60), task("waiting", "echo", "1")])
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await pool.shutdown(grace=0.3)
    assert time.monotonic() - started < 3.0
    for tid in ("long", "waiting"):
        out = collector.outcomes[tid]
        assert out.outcome is Outcome.CANCELLED
        assert out.error_kind == "host_shutdown"
    assert all(w.pid == 0 or w.status in (WorkerStatus.DRAINING, WorkerStatus.DEAD) for w in pool.workers())


def test_test_profiles_are_json_serialisable() -> None:
    # Guards the YAML in agenthost_support from quoting mistakes that would silently change argv.
    from tests.integration.agenthost.agenthost_support import all_profiles

    json.dumps({name: str(p) for name, p in all_profiles().items()})

"""Property tests of the task graph: random DAGs through the real Orchestrator, simulated hosts, no I/O.

A scenario is a random workflow (a group root and up to 60 nodes of two agent
types, random priorities, dependency policies, planned failures and retries)
and 1-3 simulated hosts. A driver makes random moves (start, finish or give
back a lease, disconnect a host or freeze it until its heartbeats are missed,
reconnect it with or without the work it held, cancel a node or the root, let
time pass, SIGKILL the control plane and restore a new core from what was
durable) and checks the core after every move; a settle phase then lets
everything finish, and the end state is checked against what the graph and
the plan say must have happened.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import MISSING, dataclass, field, fields, replace

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from maos.controlplane.core import (
    AttemptResult,
    CoreLimits,
    Decisions,
    DependencyPolicy,
    Orchestrator,
    Outcome,
    Priority,
    TaskRecord,
    TaskStatus,
    topological_order,
)
from maos.errors import InvalidArgument

T0 = 1_000.0
TYPES = ("alpha", "beta")
ALWAYS = 1_000  # fail_times meaning "every attempt fails"
ROOT = "root"

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run: the suite stays deterministic
    database=None,  # and writes nothing into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Shrinking a whole simulated run takes minutes: report the first failing example as found
# (it replays exactly, being derandomized). To shrink one, drop `phases` locally.
SIMULATION_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=300, phases=[Phase.explicit, Phase.generate])


# ------------------------------------------------------------------ scenarios


@dataclass(frozen=True)
class Node:
    key: str
    agent_type: str
    priority: Priority
    policy: DependencyPolicy
    deps: tuple[str, ...]
    fail_times: int  # attempts that fail before one succeeds (ALWAYS: all of them)
    max_retries: int
    retry_initial: float


@dataclass(frozen=True)
class Scenario:
    nodes: tuple[Node, ...]
    hosts: tuple[tuple[int, frozenset[str]], ...]  # (slots, agent types) per host
    prefetch: int


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(1, 60))
    nodes: list[Node] = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=min(i, 4), unique=True)) if i else []
        nodes.append(
            Node(
                key=f"n{i}",
                agent_type=draw(st.sampled_from(TYPES)),
                priority=draw(st.sampled_from(list(Priority))),
                policy=draw(st.sampled_from(list(DependencyPolicy))),
                deps=tuple(f"n{d}" for d in deps),
                fail_times=draw(st.sampled_from([0, 0, 0, 0, 0, 1, 2, ALWAYS])),
                max_retries=draw(st.integers(0, 2)),
                retry_initial=draw(st.sampled_from([0.0, 0.5, 2.0])),
            )
        )
    host_count = draw(st.integers(1, 3))
    hosts = [
        (
            draw(st.integers(1, 4)),
            frozenset(draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True))),
        )
        for _ in range(host_count)
    ]
    if frozenset().union(*(types for _, types in hosts)) != frozenset(TYPES):
        hosts[0] = (hosts[0][0], frozenset(TYPES))  # every agent type is served by some host
    return Scenario(tuple(nodes), tuple(hosts), draw(st.integers(0, 3)))


# ----------------------------------------------------------------- simulation


@dataclass
class SimHost:
    id: str
    slots: int
    types: frozenset[str]
    connected: bool = True
    frozen: bool = False  # alive but silent: no heartbeats, no reports, until the core gives up on it
    running: dict[tuple[str, int], bool] = field(default_factory=dict)  # lease -> started
    cancel_asked: set[tuple[str, int]] = field(default_factory=set)
    unacked: dict[tuple[str, int], AttemptResult] = field(default_factory=dict)  # resent on reconnect


@dataclass
class Batch:
    """One take() on its way to the store: rows as they were then, events, acks."""

    rows: dict[str, TaskRecord]
    decisions: Decisions
    cancelled: list[str]  # tasks a cancel request in this batch cancelled: acknowledged once durable


# Fields of TaskRecord the store does not keep (rebuilt by restore): from deps_remaining on.
_NAMES = [f.name for f in fields(TaskRecord)]
_BOOKKEEPING = [f for f in fields(TaskRecord)][_NAMES.index("deps_remaining") :]


def stored_copy(rec: TaskRecord) -> TaskRecord:
    """The record as a store row holds it."""
    reset = {f.name: f.default_factory() if f.default_factory is not MISSING else f.default for f in _BOOKKEEPING}
    return replace(rec, **reset)


class Sim:
    """Drives one Orchestrator the way the runtime does and checks it after every move.

    Like the runtime, a batch of decisions goes to hosts at once (assignments, cancels) but
    counts as durable, with its events published and results acknowledged, only when the
    next one is taken; a control-plane crash loses the last batch and restores from the rest.
    """

    def __init__(self, scenario: Scenario, rng: random.Random) -> None:
        self.sc = scenario
        self.rng = rng
        self.now = T0
        self.limits = CoreLimits(prefetch_min=scenario.prefetch, prefetch_max=scenario.prefetch)
        self.o = Orchestrator(self.limits, rng=random.Random(7))
        self.plan = {node.key: node for node in scenario.nodes}
        self.hosts = {f"h{i}": SimHost(f"h{i}", slots, types) for i, (slots, types) in enumerate(scenario.hosts)}
        self.pending: Batch | None = None
        self.stored: dict[str, TaskRecord] = {}
        self.events: dict[str, list[int]] = defaultdict(list)  # durable events' seqs per task
        self.final_events: dict[str, list[TaskStatus]] = defaultdict(list)
        self.cancelled_directly: set[str] = set()
        self.cancelling: list[str] = []
        self.restarts = 0

    # ----- the core's inputs

    def start(self) -> None:
        root = _record(ROOT, group=True, agent_type="")
        nodes = [
            _record(
                node.key,
                parent_id=ROOT,
                root_id=ROOT,
                workflow_key=node.key,
                agent_type=node.agent_type,
                priority=node.priority,
                dependency_policy=node.policy,
                depends_on=node.deps,
                max_retries=node.max_retries,
                retry_initial_seconds=node.retry_initial,
            )
            for node in self.sc.nodes
        ]
        self.o.submit([root, *nodes], self.now)
        self.settle_step()
        for host in self.hosts.values():
            self.o.host_connected(host.id, host.slots, host.types, [], self.now)
            self.settle_step()

    def settle_step(self) -> None:
        """What the runtime does after every input: dispatch, then carry out the decisions."""
        self.o.dispatch(self.now)
        d = self.o.take()
        self.commit()
        self.send(d)
        rows = {rec.id: stored_copy(rec) for rec in [*d.inserted, *d.changed.values()]}
        self.pending = Batch(rows, d, self.cancelling)
        self.cancelling = []
        self.check_hosts()

    def random_move(self) -> None:
        rng = self.rng
        move = rng.choices(
            ["start", "finish", "time", "disconnect", "freeze", "reconnect", "cancel", "give_back", "restart"],
            weights=[3, 12, 2, 0.4, 0.2, 1, 0.8, 0.2, 0.1],
        )[0]
        connected = [h for h in self.hosts.values() if h.connected and not h.frozen]
        if move == "start":
            pending = [(h, lease) for h in connected for lease, started in h.running.items() if not started]
            if pending:
                host, lease = rng.choice(pending)
                host.running[lease] = True
                self.o.on_started(host.id, lease[0], lease[1], f"{host.id}-w", self.now)
        elif move in ("finish", "give_back"):
            held = [(h, lease) for h in connected for lease in h.running]
            if held:
                host, lease = rng.choice(held)
                self.finish(host, lease, give_back=move == "give_back")
        elif move == "time":
            self.advance(rng.choice([0.01, 0.3, 1.5]))
        elif move == "freeze" and connected:
            rng.choice(connected).frozen = True
        elif move == "disconnect" and connected:
            host = rng.choice(connected)
            host.connected = False
            if rng.random() < 0.5:
                host.running.clear()  # it crashed; otherwise a network blip and it keeps working
                host.cancel_asked.clear()
                host.unacked.clear()
            self.o.host_disconnected(host.id, self.now, "simulated")
        elif move == "reconnect":
            gone = [h for h in self.hosts.values() if not h.connected]
            if gone:
                self.reconnect(rng.choice(gone))
        elif move == "cancel":
            target = ROOT if rng.random() < 0.05 else rng.choice(self.sc.nodes).key
            self.cancel(target)
        elif move == "restart":
            self.restart()
        self.settle_step()

    def finish(self, host: SimHost, lease: tuple[str, int], give_back: bool = False) -> None:
        task_id, attempt = lease
        del host.running[lease]
        asked = lease in host.cancel_asked
        host.cancel_asked.discard(lease)
        if asked or give_back:
            result = AttemptResult(task_id, attempt, Outcome.CANCELLED, error_kind="cancelled", error_message="stop")
        else:
            rec = self.o.tasks[task_id]
            if rec.failures < self.plan[task_id].fail_times:
                outcome = self.rng.choice([Outcome.FAILED, Outcome.FAILED, Outcome.TIMED_OUT])
                result = AttemptResult(task_id, attempt, outcome, error_kind="exception", error_message="planned")
            else:
                result = AttemptResult(
                    task_id, attempt, Outcome.SUCCEEDED, result=f'"{task_id}"'.encode(), result_type="application/json"
                )
        host.unacked[lease] = result
        self.o.on_result(host.id, result, self.now)

    def reconnect(self, host: SimHost) -> None:
        """Register with the leases still running, then resend unacknowledged results (as the host's link does)."""
        host.connected = True
        self.o.host_connected(host.id, host.slots, host.types, list(host.running), self.now)
        for result in list(host.unacked.values()):
            self.o.on_result(host.id, result, self.now)

    def cancel(self, target: str) -> None:
        subtree = [ROOT, *self.plan] if target == ROOT else [target]
        live = [t for t in subtree if not self.o.tasks[t].final]
        self.o.cancel(target, "by the test", self.now)
        for task_id in live:
            # Cancelling a subtree cancels every unfinished task in it, whatever their dependencies.
            rec = self.o.tasks[task_id]
            assert rec.status == TaskStatus.CANCELLED, (task_id, rec.status.name, rec.error_message)
        self.cancelling = live

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for host in self.hosts.values():
            if host.connected and not host.frozen:
                self.o.host_heartbeat(host.id, self.now)
        self.o.tick(self.now)

    def restart(self) -> None:
        """SIGKILL the control plane: the last batch never became durable (though hosts got
        what it sent them); a new core restores from the store; hosts keep working and must
        reconnect."""
        self.restarts += 1
        self.pending = None
        self.o = Orchestrator(self.limits, rng=random.Random(self.restarts))
        order = [ROOT, *self.plan]
        self.o.restore([stored_copy(self.stored[t]) for t in order], self.now)
        for host in self.hosts.values():
            host.connected = False
            host.frozen = False

    # ----- the core's outputs, checked as they come

    def send(self, d: Decisions) -> None:
        """Assignments and cancels go to hosts before the batch is durable."""
        for host_id, rec in d.assignments:
            self.check_assignment(host_id, rec)
            self.hosts[host_id].running[(rec.id, rec.attempt)] = False
        for host_id, task_id, attempt, _why in d.cancels:
            host = self.hosts[host_id]
            if (task_id, attempt) in host.running:
                host.cancel_asked.add((task_id, attempt))
        for host_id in d.lost_hosts:
            self.hosts[host_id].connected = False  # missed heartbeats; a frozen host keeps its work
            self.hosts[host_id].frozen = False

    def commit(self) -> None:
        """The pending batch is durable: store its rows, publish its events, acknowledge its results."""
        batch, self.pending = self.pending, None
        if batch is None:
            return
        self.stored.update(batch.rows)
        self.cancelled_directly.update(batch.cancelled)
        d = batch.decisions
        for ev in d.events:
            seqs = self.events[ev.task_id]
            assert ev.seq == len(seqs) + 1, (ev.task_id, seqs, ev.seq)
            seqs.append(ev.seq)
            if ev.status.final:
                self.final_events[ev.task_id].append(ev.status)
        for host_id, task_id, attempt in d.acks:
            host = self.hosts[host_id]
            if host.connected:
                host.unacked.pop((task_id, attempt), None)

    def check_assignment(self, host_id: str, rec: TaskRecord) -> None:
        host = self.hosts[host_id]
        assert host.connected, f"{rec.id} assigned to disconnected host {host_id}"
        assert not rec.group, "a workflow root is never dispatched"
        assert rec.agent_type in host.types, (rec.id, rec.agent_type, host_id)
        assert rec.status == TaskStatus.QUEUED, (rec.id, rec.status)
        node = self.plan[rec.id]
        for dep in node.deps:
            status = self.o.tasks[dep].status
            if node.policy == DependencyPolicy.CONTINUE:
                assert status.final, f"{rec.id} dispatched while {dep} is {status.name}"
            else:
                assert status == TaskStatus.COMPLETED, (
                    f"{rec.id} ({node.policy.name}) dispatched; {dep} is {status.name}"
                )

    def check_hosts(self) -> None:
        for host in self.o.hosts.values():
            if host.awaiting_reconnect:
                continue  # a placeholder rebuilt from the store: its leases are whatever was stored
            # Credit: free slots plus the prefetch allowance, which stays within its configured bounds.
            limit = host.slots + len(host.lent) + self.limits.prefetch_max
            assert len(host.in_flight) <= limit, (host.id, dict(host.in_flight), limit)
            if not host.connected:
                assert not host.in_flight, (host.id, dict(host.in_flight))
            else:
                prefetch = host.prefetch
                lo, hi = self.limits.prefetch_min, self.limits.prefetch_max
                assert lo <= prefetch <= hi, f"host {host.id}: prefetch {prefetch} outside [{lo}, {hi}]"
                held = set(self.hosts[host.id].running)
                assert set(host.in_flight.items()) <= held, (host.id, dict(host.in_flight), held)

    # ----- the end

    def settle(self) -> None:
        """Reconnect every host and let all work finish; bounded, so a stuck graph fails the test."""
        for host in self.hosts.values():
            host.frozen = False
            if not host.connected:
                self.reconnect(host)
                self.settle_step()
        for _ in range(20 * (len(self.sc.nodes) + 5)):
            if all(r.final for r in self.o.tasks.values()) and not any(h.running for h in self.hosts.values()):
                break
            for host in self.hosts.values():
                for lease in list(host.running):
                    self.o.on_started(host.id, lease[0], lease[1], f"{host.id}-w", self.now)
                    self.finish(host, lease)
                    self.settle_step()
            self.advance(5.0)
            self.settle_step()
        self.commit()


def _record(task_id: str, **kw: object) -> TaskRecord:
    fields: dict[str, object] = {
        "root_id": task_id,
        "parent_id": "",
        "spec": None,
        "agent_type": "alpha",
        "priority": Priority.MEDIUM,
        "created_at": T0,
    }
    fields.update(kw)
    return TaskRecord(id=task_id, **fields)  # type: ignore[arg-type]


@SIMULATION_SETTINGS
@given(scenario=scenarios(), seed=st.integers(0, 2**32 - 1), moves=st.integers(0, 400))
def test_random_workflows_settle_by_the_rules(scenario: Scenario, seed: int, moves: int) -> None:
    sim = Sim(scenario, random.Random(seed))
    sim.start()
    for _ in range(moves):
        sim.random_move()
    sim.settle()
    o = sim.o

    # Every task is final; nothing is leased or held anywhere.
    stuck = {t: r.status.name for t, r in o.tasks.items() if not r.final}
    assert not stuck, stuck
    assert not any(o.lease_of(t) for t in o.tasks)
    assert all(not h.in_flight for h in o.hosts.values())

    # Events: gapless 1..n per task, exactly one final event (the last), at most one COMPLETED.
    for task_id, rec in o.tasks.items():
        assert sim.events[task_id] == list(range(1, rec.seq + 1)), task_id
        assert sim.final_events[task_id] == [rec.status], (task_id, sim.final_events[task_id])

    # Each node ended as its dependencies, its policy and its plan say.
    for node in scenario.nodes:
        rec = o.tasks[node.key]
        if node.key in sim.cancelled_directly:
            assert rec.status == TaskStatus.CANCELLED
            continue
        bad = [d for d in node.deps if o.tasks[d].status != TaskStatus.COMPLETED]
        if bad and node.policy != DependencyPolicy.CONTINUE:
            expected = TaskStatus.FAILED if node.policy == DependencyPolicy.FAIL else TaskStatus.CANCELLED
            assert rec.status == expected, (node, rec.status, rec.error_message)
            assert rec.error_kind == ("dependency_failed" if expected == TaskStatus.FAILED else "skipped")
            assert any(f"dependency {d!r}" in rec.error_message for d in bad), (rec.error_message, bad)
            assert rec.attempt == 0, "never dispatched"
        else:
            assert rec.attempt >= 1, node
            if node.fail_times <= node.max_retries:
                assert rec.status == TaskStatus.COMPLETED, (node, rec.status, rec.error_message)
                assert rec.result == f'"{node.key}"'.encode()
            else:
                assert rec.status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT), (node, rec.status)
                assert rec.failures == node.max_retries + 1

    # The root completes exactly when every node did.
    root = o.tasks[ROOT]
    if ROOT in sim.cancelled_directly:
        assert root.status == TaskStatus.CANCELLED
    elif all(o.tasks[n.key].status == TaskStatus.COMPLETED for n in scenario.nodes):
        assert root.status == TaskStatus.COMPLETED
    else:
        assert root.status == TaskStatus.FAILED, root.status


# ---------------------------------------------------------- topological_order


@st.composite
def graphs(draw: st.DrawFn, acyclic: bool) -> dict[str, list[str]]:
    """Keys in a random declaration order; with `acyclic`, edges only point to earlier nodes of a
    hidden ranking (so the declaration order is not already topological). Duplicate edges allowed."""
    n = draw(st.integers(1, 25))
    names = draw(
        st.lists(st.text("abcdefghijkmnpqrstuvwxyz", min_size=1, max_size=3), min_size=n, max_size=n, unique=True)
    )
    edges: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        pool = names[:i] if acyclic else [m for m in names if m != name]
        edges[name] = draw(st.lists(st.sampled_from(pool), max_size=4)) if pool else []
    declared = draw(st.permutations(names))
    return {name: edges[name] for name in declared}


def on_cycle(edges: dict[str, list[str]]) -> set[str]:
    """Nodes from which a path of at least one edge leads back to themselves."""
    out: set[str] = set()
    for start in edges:
        seen: set[str] = set()
        stack = list(edges[start])
        while stack:
            node = stack.pop()
            if node == start:
                out.add(start)
                break
            if node not in seen:
                seen.add(node)
                stack.extend(edges[node])
    return out


def longest_chain(edges: dict[str, list[str]]) -> int:
    depth: dict[str, int] = {}

    def visit(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((visit(d) for d in edges[node]), default=0)
        return depth[node]

    return max(visit(node) for node in edges)


def quoted(message: str) -> set[str]:
    return set(re.findall(r"'([^']*)'", message))


@PROPERTY_SETTINGS
@given(edges=st.one_of(graphs(acyclic=True), graphs(acyclic=False)))
def test_topological_order_exists_iff_there_is_no_cycle(edges: dict[str, list[str]]) -> None:
    cyclic = on_cycle(edges)
    if not cyclic:
        order = topological_order(edges, max_nodes=1000, max_depth=1000)
        assert sorted(order) == sorted(edges)
        position = {key: i for i, key in enumerate(order)}
        for key, deps in edges.items():
            for dep in deps:
                assert position[dep] < position[key], (dep, key, order)
        return
    with pytest.raises(InvalidArgument, match="cycle") as err:
        topological_order(edges, max_nodes=1000, max_depth=1000)
    named = quoted(err.value.message)
    assert named, err.value.message
    # A person must be able to find the cycle from the message: every node it names is on one.
    assert named <= cyclic, (err.value.message, sorted(cyclic))


@PROPERTY_SETTINGS
@given(edges=graphs(acyclic=True), max_depth=st.integers(1, 12))
def test_depth_limit_rejects_exactly_the_too_deep_graphs(edges: dict[str, list[str]], max_depth: int) -> None:
    if longest_chain(edges) <= max_depth:
        assert len(topological_order(edges, max_nodes=1000, max_depth=max_depth)) == len(edges)
    else:
        with pytest.raises(InvalidArgument, match="depth"):
            topological_order(edges, max_nodes=1000, max_depth=max_depth)


@PROPERTY_SETTINGS
@given(edges=graphs(acyclic=True), data=st.data())
def test_unknown_and_self_dependencies_are_rejected_naming_the_node(
    edges: dict[str, list[str]], data: st.DataObject
) -> None:
    node = data.draw(st.sampled_from(sorted(edges)))
    unknown = {node: [*edges[node], "zz-missing"]}
    with pytest.raises(InvalidArgument, match="unknown") as err:
        topological_order({**edges, **unknown}, max_nodes=1000, max_depth=1000)
    assert {node, "zz-missing"} <= quoted(err.value.message)
    selfish = {node: [*edges[node], node]}
    with pytest.raises(InvalidArgument, match="itself") as err:
        topological_order({**edges, **selfish}, max_nodes=1000, max_depth=1000)
    assert quoted(err.value.message) == {node}


@PROPERTY_SETTINGS
@given(edges=graphs(acyclic=True), max_nodes=st.integers(1, 30))
def test_node_limit(edges: dict[str, list[str]], max_nodes: int) -> None:
    if len(edges) <= max_nodes:
        topological_order(edges, max_nodes=max_nodes, max_depth=1000)
    else:
        with pytest.raises(InvalidArgument, match="limit"):
            topological_order(edges, max_nodes=max_nodes, max_depth=1000)

"""Durations of unary RPCs by method, recorded by the server interceptor (api/_metrics.py)."""

from __future__ import annotations

from ._histogram import Histogram

# Long polls last as long as the caller asked to wait: they are listed per method but
# left out of the overall API latency (and so of the report's score).
LONG_POLLS = frozenset({"TaskService/WaitTasks", "MessageService/Receive"})


def method_name(full: str) -> str:
    """The short name of a full gRPC method: "/maos.v1.TaskService/SubmitTask" -> "TaskService/SubmitTask"."""
    service, _, method = full.lstrip("/").rpartition("/")
    return f"{service.rpartition('.')[2]}/{method}" if service else method


class ApiLatency:
    """This interval's histograms by method, and counters since start-up."""

    def __init__(self) -> None:
        self._current: dict[str, Histogram] = {}
        self._errors: dict[str, int] = {}
        self.count_total: dict[str, int] = {}
        self.seconds_total: dict[str, float] = {}
        self.errors_total: dict[str, int] = {}

    def record(self, method: str, seconds: float, ok: bool) -> None:
        hist = self._current.get(method)
        if hist is None:
            hist = self._current[method] = Histogram()
        hist.add(seconds)
        self.count_total[method] = self.count_total.get(method, 0) + 1
        self.seconds_total[method] = self.seconds_total.get(method, 0.0) + seconds
        if not ok:
            self._errors[method] = self._errors.get(method, 0) + 1
            self.errors_total[method] = self.errors_total.get(method, 0) + 1

    def take(self) -> tuple[dict[str, Histogram], dict[str, int]]:
        """The interval's histograms and error counts; the next interval starts empty."""
        out = self._current, self._errors
        self._current, self._errors = {}, {}
        return out

"""Templates (named, parameterised specs) and batches (named drafts submitted together).

Both are small, kept in memory and written through the store in the same group
commits as tasks, so submitting a batch stores its tasks and its new state
atomically.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from maos.controlplane.core import TaskStatus
from maos.controlplane.store import NamedBlob
from maos.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from maos.v1 import common_pb2, templates_pb2

from ._runtime import Runtime
from ._validation import validate_spec

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_BATCH_TASKS = 10_000


def _check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise InvalidArgument(
            f"{kind} name {name[:40]!r} is invalid: use 1-100 letters, digits, '.', '_' or '-', starting alphanumeric"
        )
    return name


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def template_parameters(spec: common_pb2.TaskSpec) -> list[str]:
    """The {placeholders} in a spec's description and in the string values of its input."""
    texts = [spec.description]
    if spec.input.data:
        texts += list(_strings(orjson.loads(spec.input.data)))
    return sorted({m for text in texts for m in _PLACEHOLDER.findall(text)})


def _fill_text(text: str, params: dict[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        value = params[match.group(1)]
        return value if isinstance(value, str) else orjson.dumps(value).decode()

    return _PLACEHOLDER.sub(one, text)


def _fill(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        return params[whole.group(1)] if whole else _fill_text(value, params)
    if isinstance(value, dict):
        return {k: _fill(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, params) for v in value]
    return value


def fill_template(template: templates_pb2.Template, params: dict[str, Any]) -> common_pb2.TaskSpec:
    """The template's spec with every placeholder replaced; precise errors for missing or unknown ones."""
    wanted = set(template.parameters)
    missing = sorted(wanted - params.keys())
    if missing:
        raise InvalidArgument(
            f"template {template.name!r} needs parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}; it takes: {', '.join(template.parameters)}"
        )
    unknown = sorted(params.keys() - wanted)
    if unknown:
        takes = ", ".join(template.parameters) or "no parameters"
        raise InvalidArgument(f"template {template.name!r} has no parameter {unknown[0]!r}; it takes: {takes}")
    spec = common_pb2.TaskSpec()
    spec.CopyFrom(template.spec)
    spec.description = _fill_text(spec.description, params)
    if spec.input.data:
        spec.input.data = orjson.dumps(_fill(orjson.loads(spec.input.data), params))
    return spec


def _now_ts() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


class Library:
    """The control plane's templates and batches."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self.templates: dict[str, templates_pb2.Template] = {}
        self.batches: dict[str, templates_pb2.Batch] = {}

    async def load(self) -> None:
        for blob in await self._rt.store.load_templates():
            self.templates[blob.name] = templates_pb2.Template.FromString(blob.data)
        for blob in await self._rt.store.load_batches():
            self.batches[blob.name] = templates_pb2.Batch.FromString(blob.data)

    # --------------------------------------------------------------- templates

    async def create_template(self, request: templates_pb2.CreateTemplateRequest) -> templates_pb2.Template:
        name = _check_name("template", request.name)
        if name in self.templates:
            raise AlreadyExists(f"template {name!r} already exists; delete it first or pick another name")
        source = request.WhichOneof("source")
        spec = common_pb2.TaskSpec()
        if source == "from_task_id":
            rec = await self._rt.get(request.from_task_id)
            if rec.group:
                raise FailedPrecondition(f"task {rec.id} is a workflow root; make a template from one of its subtasks")
            spec.CopyFrom(rec.spec)
            spec.agent_type = spec.agent_type or rec.agent_type
        elif source == "spec":
            spec.CopyFrom(request.spec)
        else:
            raise InvalidArgument("say where the template comes from: from_task_id or spec")
        for field in ("parent_id", "idempotency_key", "depends_on"):
            spec.ClearField(field)  # per submission, never part of a reusable template
        validate_spec(
            spec,
            where=f"template {name!r}: ",
            known_agent_types=self._rt.agent_types(),
            default_agent_type=self._rt.settings.default_agent_type,
            limits=self._rt.limits,
        )
        template = templates_pb2.Template(
            name=name,
            spec=spec,
            parameters=template_parameters(spec),
            source_task_id=request.from_task_id,
            created_at=_now_ts(),
            description=request.description,
        )
        self.templates[name] = template
        self._rt.queue_named(templates=[NamedBlob(name, template.SerializeToString(), time.time())])
        await self._rt.commit()
        return template

    def get_template(self, name: str) -> templates_pb2.Template:
        template = self.templates.get(name)
        if template is None:
            known = ", ".join(sorted(self.templates)) or "none yet: create one with `maosctl template create`"
            raise NotFound(f"template {name!r} not found; templates: {known}")
        return template

    async def delete_template(self, name: str) -> templates_pb2.Template:
        template = self.get_template(name)
        del self.templates[name]
        self._rt.queue_named(deleted_templates=[name])
        await self._rt.commit()
        return template

    def filled_spec(self, request: templates_pb2.SubmitFromTemplateRequest) -> common_pb2.TaskSpec:
        template = self.get_template(request.name)
        params: Any = {}
        if request.params.data:
            try:
                params = orjson.loads(request.params.data)
            except orjson.JSONDecodeError as exc:
                raise InvalidArgument(f"params is not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise InvalidArgument("params must be a JSON object of parameter name -> value")
        spec = fill_template(template, params)
        overrides = request.overrides
        for field, value in overrides.ListFields():
            if field.name == "labels":
                spec.labels.update(overrides.labels)
            elif field.is_repeated:
                spec.ClearField(field.name)  # type: ignore[arg-type]
                getattr(spec, field.name).extend(value)
            elif field.message_type is not None:
                getattr(spec, field.name).CopyFrom(value)
            else:
                setattr(spec, field.name, value)
        return spec

    # ----------------------------------------------------------------- batches

    async def create_batch(self, name: str) -> templates_pb2.Batch:
        _check_name("batch", name)
        if name in self.batches:
            raise AlreadyExists(f"batch {name!r} already exists")
        batch = templates_pb2.Batch(name=name, state=templates_pb2.BATCH_STATE_OPEN, created_at=_now_ts())
        await self._save(batch)
        return batch

    def get_batch(self, name: str) -> templates_pb2.Batch:
        batch = self.batches.get(name)
        if batch is None:
            raise NotFound(f"batch {name!r} not found; create it with `maosctl batch create {name}`")
        return batch

    async def add_to_batch(self, name: str, specs: list[common_pb2.TaskSpec]) -> templates_pb2.Batch:
        batch = self.get_batch(name)
        if batch.state != templates_pb2.BATCH_STATE_OPEN:
            raise FailedPrecondition(f"batch {name!r} was already submitted; create a new batch")
        if not specs:
            raise InvalidArgument("no tasks to add")
        if len(batch.specs) + len(specs) > MAX_BATCH_TASKS:
            raise InvalidArgument(f"a batch holds at most {MAX_BATCH_TASKS} tasks")
        known = self._rt.agent_types()
        for i, spec in enumerate(specs):
            validate_spec(
                spec,
                where=f"task {len(batch.specs) + i} of batch {name!r}: ",
                known_agent_types=known,
                default_agent_type=self._rt.settings.default_agent_type,
                limits=self._rt.limits,
            )
        updated = templates_pb2.Batch()
        updated.CopyFrom(batch)
        updated.specs.extend(specs)
        await self._save(updated)
        return updated

    async def submit_batch(self, name: str) -> templates_pb2.Batch:
        batch = self.get_batch(name)
        if batch.state != templates_pb2.BATCH_STATE_OPEN:
            raise FailedPrecondition(f"batch {name!r} was already submitted")
        if not batch.specs:
            raise FailedPrecondition(f"batch {name!r} is empty; add tasks with `maosctl batch add-task {name} ...`")
        submitted = templates_pb2.Batch()
        submitted.CopyFrom(batch)
        submitted.state = templates_pb2.BATCH_STATE_SUBMITTED
        submitted.submitted_at.CopyFrom(_now_ts())
        # Queued before the tasks, so the tasks and the batch's new state commit together,
        # and a concurrent submit of the same batch is refused.
        self._queue(submitted)
        try:
            accepted = await self._rt.submit(list(batch.specs))
        except BaseException:
            self._queue(batch)  # rides on the next commit, after the queued SUBMITTED state
            raise
        submitted.task_ids.extend(rec.id for rec, _ in accepted)
        self._queue(submitted)
        await self._rt.commit()
        return submitted

    async def with_counts(self, batch: templates_pb2.Batch) -> templates_pb2.Batch:
        if not batch.task_ids:
            return batch
        counted = templates_pb2.Batch()
        counted.CopyFrom(batch)
        counts = dict.fromkeys((s.name.lower() for s in TaskStatus), 0)
        live = self._rt.orch.tasks
        missing = [i for i in batch.task_ids if i not in live]
        stored = {r.id: r for r in await self._rt.store.get_tasks(missing)} if missing else {}
        for task_id in batch.task_ids:
            rec = live.get(task_id) or stored.get(task_id)
            if rec is not None:
                counts[rec.status.name.lower()] += 1
        counted.tasks_by_status.update(counts)
        return counted

    def _queue(self, batch: templates_pb2.Batch) -> None:
        self.batches[batch.name] = batch
        created = batch.created_at.ToNanoseconds() / 1e9
        self._rt.queue_named(batches=[NamedBlob(batch.name, batch.SerializeToString(), created)])

    async def _save(self, batch: templates_pb2.Batch) -> None:
        self._queue(batch)
        await self._rt.commit()

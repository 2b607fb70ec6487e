"""TemplateService and BatchService: thin adapters over the library."""

from __future__ import annotations

from typing import Any

import grpc
from maos.controlplane._convert import task_to_proto
from maos.controlplane._library import Library
from maos.controlplane._runtime import Runtime
from maos.controlplane.api._context import before_deadline
from maos.errors import InvalidArgument
from maos.v1 import tasks_pb2, templates_pb2, templates_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


class TemplateServicer(templates_pb2_grpc.TemplateServiceServicer):
    def __init__(self, runtime: Runtime, library: Library) -> None:
        self._rt = runtime
        self._lib = library

    async def CreateTemplate(
        self, request: templates_pb2.CreateTemplateRequest, context: Ctx
    ) -> templates_pb2.Template:
        return await self._lib.create_template(request)

    async def GetTemplate(self, request: templates_pb2.GetTemplateRequest, context: Ctx) -> templates_pb2.Template:
        return self._lib.get_template(request.name)

    async def ListTemplates(
        self, request: templates_pb2.ListTemplatesRequest, context: Ctx
    ) -> templates_pb2.ListTemplatesResponse:
        return templates_pb2.ListTemplatesResponse(
            templates=[self._lib.templates[k] for k in sorted(self._lib.templates)]
        )

    async def DeleteTemplate(
        self, request: templates_pb2.DeleteTemplateRequest, context: Ctx
    ) -> templates_pb2.Template:
        return await self._lib.delete_template(request.name)

    async def SubmitFromTemplate(
        self, request: templates_pb2.SubmitFromTemplateRequest, context: Ctx
    ) -> tasks_pb2.SubmitTaskResponse:
        if request.wait_seconds < 0:
            raise InvalidArgument("wait_seconds must not be negative")
        spec = self._lib.filled_spec(request)
        [(rec, deduplicated)] = await self._rt.submit([spec])
        timed_out = False
        if request.wait_seconds > 0 and not rec.final:
            [rec], timed_out = await self._rt.wait([rec.id], before_deadline(request.wait_seconds, context))
        return tasks_pb2.SubmitTaskResponse(
            task=task_to_proto(rec), deduplicated=deduplicated, wait_timed_out=timed_out
        )


class BatchServicer(templates_pb2_grpc.BatchServiceServicer):
    def __init__(self, library: Library) -> None:
        self._lib = library

    async def CreateBatch(self, request: templates_pb2.CreateBatchRequest, context: Ctx) -> templates_pb2.Batch:
        return await self._lib.create_batch(request.name)

    async def AddToBatch(self, request: templates_pb2.AddToBatchRequest, context: Ctx) -> templates_pb2.Batch:
        return await self._lib.add_to_batch(request.name, list(request.specs))

    async def SubmitBatch(self, request: templates_pb2.SubmitBatchRequest, context: Ctx) -> templates_pb2.Batch:
        return await self._lib.with_counts(await self._lib.submit_batch(request.name))

    async def GetBatch(self, request: templates_pb2.GetBatchRequest, context: Ctx) -> templates_pb2.Batch:
        return await self._lib.with_counts(self._lib.get_batch(request.name))

    async def ListBatches(
        self, request: templates_pb2.ListBatchesRequest, context: Ctx
    ) -> templates_pb2.ListBatchesResponse:
        batches = [await self._lib.with_counts(self._lib.batches[k]) for k in sorted(self._lib.batches)]
        return templates_pb2.ListBatchesResponse(batches=batches)

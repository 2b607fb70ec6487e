"""Checkpoints in S3 (or an S3-compatible server) through aioboto3.

Keys: <prefix>/<id>/<object>. Sections are uploaded concurrently; an object of
at least `multipart_threshold` bytes goes up as a multipart upload in parts of
`part_size` bytes, sent in parallel (aborted on failure, so no parts linger).
The manifest goes last: a checkpoint without one is incomplete and not listed.
At most `concurrency` requests are in flight. Credentials come from the usual
AWS sources (environment, shared config, instance role).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, TypeVar

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from maos.errors import FailedPrecondition, MaosError, NotFound, PermissionDenied, Unavailable

from ._format import MANIFEST
from ._targets import ManifestFn, Written

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AllAccessDisabled"}


class S3Target:
    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        endpoint_url: str = "",
        multipart_threshold: int,
        part_size: int,
        concurrency: int,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self._requests = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._stack = contextlib.AsyncExitStack()
        self._s3: Any = None
        self.multipart_uploads = 0  # completed, for tests and benchmarks

    @property
    def description(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def _key(self, checkpoint_id: str, name: str = "") -> str:
        return "/".join(p for p in (self.prefix, checkpoint_id, name) if p) + ("" if name else "/")

    def location(self, checkpoint_id: str) -> str:
        return f"s3://{self.bucket}/{self._key(checkpoint_id)}"

    async def open(self) -> None:
        config = Config(
            max_pool_connections=max(self._concurrency, 10),
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=120,
        )
        session = aioboto3.Session()
        client = session.client("s3", endpoint_url=self.endpoint_url or None, config=config)
        self._s3 = await self._stack.enter_async_context(client)
        try:
            await self._call(self._s3.head_bucket(Bucket=self.bucket))
        except Unavailable as exc:
            # S3 may be down for a while: the control plane still runs, checkpoints fail until it is back.
            log.warning("checkpoint target %s is not reachable yet: %s", self.description, exc)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        await self._stack.aclose()
        self._s3 = None

    async def _call(self, call: Awaitable[_T], key: str = "") -> _T:
        """One request, with botocore's failures turned into one clear maos error."""
        try:
            async with self._requests:
                return await call
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("NoSuchBucket", "404") and not key:
                raise FailedPrecondition(
                    f"the checkpoint bucket {self.bucket!r} does not exist"
                    f"{' at ' + self.endpoint_url if self.endpoint_url else ''}: create it or fix --checkpoints"
                ) from None
            if code == "NoSuchBucket":
                raise FailedPrecondition(f"the checkpoint bucket {self.bucket!r} does not exist (any more)") from None
            if code in ("NoSuchKey", "404"):
                raise NotFound(f"s3://{self.bucket}/{key} does not exist") from None
            if code in _DENIED:
                raise PermissionDenied(
                    f"S3 refused access to bucket {self.bucket!r} ({code}): check the credentials and their policy"
                ) from None
            raise Unavailable(
                f"S3 answered {code or 'an error'} for {self.bucket}/{key}: {error.get('Message', exc)}"
            ) from None
        except NoCredentialsError:
            raise FailedPrecondition(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile or role) "
                "for the control plane"
            ) from None
        except (EndpointConnectionError, OSError) as exc:
            raise Unavailable(f"cannot reach S3 at {self.endpoint_url or 'AWS'}: {exc}") from None
        except BotoCoreError as exc:
            raise Unavailable(f"S3 request failed: {exc}") from None

    async def write(
        self, checkpoint_id: str, objects: Sequence[tuple[str, bytes]], manifest: ManifestFn, written: Written
    ) -> None:
        try:
            await asyncio.gather(*(self._put(self._key(checkpoint_id, n), n, d, written) for n, d in objects))
            await self._put(self._key(checkpoint_id, MANIFEST), MANIFEST, manifest(), written)
        except BaseException:
            with contextlib.suppress(MaosError):  # leave no incomplete checkpoint's objects behind
                await asyncio.shield(self.delete(checkpoint_id))
            raise

    async def _put(self, key: str, name: str, data: bytes, written: Written) -> None:
        if len(data) < self.multipart_threshold:
            await self._call(self._s3.put_object(Bucket=self.bucket, Key=key, Body=data), key)
            written(name, len(data))
            return
        created = await self._call(self._s3.create_multipart_upload(Bucket=self.bucket, Key=key), key)
        upload_id = created["UploadId"]

        async def part(number: int, chunk: bytes) -> dict[str, Any]:
            answer = await self._call(
                self._s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk),
                key,
            )
            written(name, len(chunk))
            return {"ETag": answer["ETag"], "PartNumber": number}

        try:
            chunks = [data[i : i + self.part_size] for i in range(0, len(data), self.part_size)]
            parts = await asyncio.gather(*(part(n, chunk) for n, chunk in enumerate(chunks, 1)))
            await self._call(
                self._s3.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                ),
                key,
            )
        except BaseException:
            with contextlib.suppress(MaosError):
                abort = self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                await asyncio.shield(self._call(abort, key))
            raise
        self.multipart_uploads += 1

    async def read(self, checkpoint_id: str, name: str) -> bytes:
        key = self._key(checkpoint_id, name)
        try:
            answer = await self._call(self._s3.get_object(Bucket=self.bucket, Key=key), key)
        except NotFound:
            if name == MANIFEST:
                raise NotFound(f"no checkpoint {checkpoint_id} in {self.description}") from None
            raise NotFound(f"checkpoint {checkpoint_id} lacks its object {name}; it is incomplete") from None
        async with answer["Body"] as body:
            data: bytes = await self._call(body.read(), key)
        return data

    async def _keys(self, prefix: str) -> AsyncIterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        pages = aiter(paginator.paginate(Bucket=self.bucket, Prefix=prefix))
        while True:
            try:
                page = await self._call(anext(pages))
            except StopAsyncIteration:
                return
            for item in page.get("Contents", ()):
                yield str(item["Key"])

    async def list_ids(self) -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        ids = []
        async for key in self._keys(base):
            rest = key[len(base) :]
            checkpoint_id, _, name = rest.partition("/")
            if name == MANIFEST:
                ids.append(checkpoint_id)
        return sorted(ids)

    async def delete(self, checkpoint_id: str) -> bool:
        keys = [key async for key in self._keys(self._key(checkpoint_id))]
        manifest = self._key(checkpoint_id, MANIFEST)
        if manifest in keys:
            # First and alone: a delete cut short leaves an incomplete checkpoint, never a damaged listed one.
            await self._call(self._s3.delete_object(Bucket=self.bucket, Key=manifest), manifest)
            keys.remove(manifest)
            deleted = True
        else:
            deleted = bool(keys)
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[i : i + 1000]]
            await self._call(self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True}))
        return deleted

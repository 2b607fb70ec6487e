"""Where checkpoints go and how they are uploaded: one frozen dataclass, validated here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from maos.errors import InvalidArgument

MIB = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD_BYTES = 100 * MIB
DEFAULT_PART_SIZE_BYTES = 10 * MIB
DEFAULT_UPLOAD_CONCURRENCY = 8
DEFAULT_INTERVAL_SECONDS = 0.0  # automatic checkpoints are off unless asked for
DEFAULT_RETENTION_COUNT = 24

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str, what: str) -> int:
    """Bytes from "1048576", "512KiB", "10MiB", "1G" (binary units); InvalidArgument otherwise."""
    match = _SIZE.match(text)
    if match is None:
        raise InvalidArgument(f"{what} {text!r} is not a size: use bytes or a number with KiB, MiB or GiB")
    unit = (match.group(2) or "").lower()[:1]
    return int(match.group(1)) * _UNITS[unit]


@dataclass(frozen=True, slots=True)
class CheckpointConfig:
    """`location` is a directory or s3://bucket/prefix ("" = <data dir>/checkpoints).

    Objects of at least `multipart_threshold_bytes` go to S3 in parts of `part_size_bytes`,
    `upload_concurrency` at a time. `interval_seconds` and `retention_count` are the start-up
    values of the live settings checkpoints.interval and checkpoints.retention.count.
    `restore_id` restores that checkpoint at start-up, before serving.
    """

    location: str = ""
    endpoint_url: str = ""
    multipart_threshold_bytes: int = DEFAULT_MULTIPART_THRESHOLD_BYTES
    part_size_bytes: int = DEFAULT_PART_SIZE_BYTES
    upload_concurrency: int = DEFAULT_UPLOAD_CONCURRENCY
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    retention_count: int = DEFAULT_RETENTION_COUNT
    restore_id: str = ""

    def __post_init__(self) -> None:
        if self.multipart_threshold_bytes < 1:
            raise InvalidArgument("--checkpoints-multipart-threshold must be at least 1 byte")
        if self.part_size_bytes < 1:
            raise InvalidArgument("--checkpoints-part-size must be at least 1 byte")
        if self.upload_concurrency < 1:
            raise InvalidArgument("--checkpoints-upload-concurrency must be at least 1")
        if self.interval_seconds < 0:
            raise InvalidArgument("--checkpoint-interval must not be negative (0 = no automatic checkpoints)")
        if self.retention_count < 1:
            raise InvalidArgument("--checkpoint-retention must be at least 1")
        if self.endpoint_url and not self.is_s3:
            raise InvalidArgument("--checkpoints-endpoint-url applies to S3 only: use --checkpoints s3://bucket/prefix")
        if self.is_s3:
            bucket, _ = self.s3_bucket_and_prefix()
            if not bucket:
                raise InvalidArgument(f"--checkpoints {self.location!r} names no bucket: use s3://bucket/prefix")

    @property
    def is_s3(self) -> bool:
        return self.location.startswith("s3://")

    def s3_bucket_and_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.location.removeprefix("s3://").partition("/")
        return bucket, prefix.strip("/")

    def directory(self, data_dir: Path) -> Path:
        """The local directory for checkpoints (not for S3)."""
        return Path(self.location) if self.location else data_dir / "checkpoints"

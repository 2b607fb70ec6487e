"""Checkpoints of the whole control plane: tasks (with events and attempts), hosts and agents,
shared state and message queues, lz4-compressed, in a local directory or S3.

`CheckpointManager` creates, lists, restores and deletes them; `AutoCheckpoints`
takes one every `checkpoints.interval` seconds; `open_target` picks the target
from the configuration (S3Target, in ._s3, is imported only when S3 is used). The gRPC
servicer is maos.controlplane.api._checkpoints.
"""

from pathlib import Path

from ._auto import AutoCheckpoints as AutoCheckpoints
from ._collect import Sources as Sources
from ._config import CheckpointConfig as CheckpointConfig
from ._config import parse_size as parse_size
from ._format import FORMAT_VERSION as FORMAT_VERSION
from ._format import Manifest as Manifest
from ._format import SectionInfo as SectionInfo
from ._manager import AUTOMATIC as AUTOMATIC
from ._manager import MANUAL as MANUAL
from ._manager import CheckpointManager as CheckpointManager
from ._manager import Listed as Listed
from ._manager import Progress as Progress
from ._manager import ProgressFn as ProgressFn
from ._manager import RestoreSummary as RestoreSummary
from ._targets import CheckpointTarget as CheckpointTarget
from ._targets import LocalTarget as LocalTarget


def open_target(config: CheckpointConfig, data_dir: Path) -> CheckpointTarget:
    """The target the configuration names (not yet opened)."""
    if config.is_s3:
        from ._s3 import S3Target  # aioboto3 takes a while to import: only when S3 is used

        bucket, prefix = config.s3_bucket_and_prefix()
        return S3Target(
            bucket,
            prefix,
            endpoint_url=config.endpoint_url,
            multipart_threshold=config.multipart_threshold_bytes,
            part_size=config.part_size_bytes,
            concurrency=config.upload_concurrency,
        )
    return LocalTarget(config.directory(data_dir))


__all__ = [
    "AUTOMATIC",
    "FORMAT_VERSION",
    "MANUAL",
    "AutoCheckpoints",
    "CheckpointConfig",
    "CheckpointManager",
    "CheckpointTarget",
    "Listed",
    "LocalTarget",
    "Manifest",
    "Progress",
    "ProgressFn",
    "RestoreSummary",
    "SectionInfo",
    "Sources",
    "open_target",
    "parse_size",
]

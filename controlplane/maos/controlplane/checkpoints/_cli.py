"""The control-plane daemon's checkpoint flags (added to maos-controlplane's argument parser)."""

from __future__ import annotations

import argparse
import os

from ._config import (
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_RETENTION_COUNT,
    DEFAULT_UPLOAD_CONCURRENCY,
    CheckpointConfig,
    parse_size,
)


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("checkpoints")
    group.add_argument(
        "--checkpoints",
        default=os.environ.get("MAOS_CHECKPOINTS", ""),
        metavar="DIR|s3://BUCKET/PREFIX",
        help="where checkpoints go: a directory (default: DATA_DIR/checkpoints) or an S3 bucket and prefix",
    )
    group.add_argument(
        "--checkpoints-endpoint-url",
        default=os.environ.get("MAOS_CHECKPOINTS_ENDPOINT_URL", ""),
        metavar="URL",
        help="an S3-compatible server instead of AWS (MinIO, Ceph, ...); credentials from the usual AWS_* variables",
    )
    group.add_argument(
        "--checkpoint-interval",
        type=float,
        default=DEFAULT_INTERVAL_SECONDS,
        metavar="SECONDS",
        help="seconds between automatic checkpoints, 0 = off (default; live setting checkpoints.interval)",
    )
    group.add_argument(
        "--checkpoint-retention",
        type=int,
        default=DEFAULT_RETENTION_COUNT,
        metavar="N",
        help=f"automatic checkpoints kept ({DEFAULT_RETENTION_COUNT}; live setting checkpoints.retention.count)",
    )
    group.add_argument(
        "--checkpoints-multipart-threshold",
        default="100MiB",
        metavar="SIZE",
        help="S3: objects this large or larger go up as multipart uploads (100MiB)",
    )
    group.add_argument(
        "--checkpoints-part-size", default="10MiB", metavar="SIZE", help="S3: multipart part size (10MiB)"
    )
    group.add_argument(
        "--checkpoints-upload-concurrency",
        type=int,
        default=DEFAULT_UPLOAD_CONCURRENCY,
        metavar="N",
        help=f"S3: requests in flight at once ({DEFAULT_UPLOAD_CONCURRENCY})",
    )
    group.add_argument(
        "--restore-checkpoint",
        default="",
        metavar="ID",
        help="restore this checkpoint before serving; the store, shared state and messages must be empty",
    )


def checkpoint_config(args: argparse.Namespace) -> CheckpointConfig:
    """The CheckpointConfig the parsed flags describe; InvalidArgument for a bad one."""
    return CheckpointConfig(
        location=args.checkpoints.strip(),
        endpoint_url=args.checkpoints_endpoint_url.strip(),
        multipart_threshold_bytes=parse_size(args.checkpoints_multipart_threshold, "--checkpoints-multipart-threshold"),
        part_size_bytes=parse_size(args.checkpoints_part_size, "--checkpoints-part-size"),
        upload_concurrency=args.checkpoints_upload_concurrency,
        interval_seconds=args.checkpoint_interval,
        retention_count=args.checkpoint_retention,
        restore_id=args.restore_checkpoint.strip(),
    )

"""Messaging configuration: one frozen dataclass, validated when it is built."""

from __future__ import annotations

from dataclasses import dataclass

from maos.errors import InvalidArgument

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MessagingConfig:
    """Bounds and defaults of the message service. Durations carry their unit in the name.

    `max_queued` bounds each mailbox (queued + in flight); `max_total_bytes`
    bounds the payload bytes held across all mailboxes, since every mailbox
    is also kept in memory for fast delivery.
    """

    max_queued: int = 10_000
    max_total_bytes: int = 512 * MIB
    max_payload_bytes: int = 1 * MIB
    default_ttl_seconds: float = 24 * 3600.0
    max_ttl_seconds: float = 30 * 24 * 3600.0
    default_lease_seconds: float = 30.0
    max_lease_seconds: float = 12 * 3600.0
    max_wait_seconds: float = 300.0
    max_receive_batch: int = 1000
    default_max_in_flight: int = 100
    max_in_flight: int = 10_000
    # A subscriber stream (a host relay's, a gRPC Subscribe) holds at most this many payload
    # bytes unacknowledged, about: its in-flight count is also capped at this over the
    # mailbox's mean message size. Bounds a relay's memory when payloads are large.
    max_in_flight_bytes: int = 64 * MIB
    max_streams_per_mailbox: int = 1
    max_streams_per_caller: int = 100
    max_waiters_per_mailbox: int = 100
    max_ack_ids: int = 10_000
    max_recipients: int = 10_000
    dedupe_window: int = 1000
    sweep_interval_seconds: float = 5.0
    subscription_idle_seconds: float = 3600.0
    mailbox_idle_seconds: float = 300.0
    sqlite_synchronous: str = "NORMAL"

    def __post_init__(self) -> None:
        positive_ints = {
            "max_queued": self.max_queued,
            "max_total_bytes": self.max_total_bytes,
            "max_payload_bytes": self.max_payload_bytes,
            "max_receive_batch": self.max_receive_batch,
            "default_max_in_flight": self.default_max_in_flight,
            "max_in_flight": self.max_in_flight,
            "max_in_flight_bytes": self.max_in_flight_bytes,
            "max_streams_per_mailbox": self.max_streams_per_mailbox,
            "max_streams_per_caller": self.max_streams_per_caller,
            "max_waiters_per_mailbox": self.max_waiters_per_mailbox,
            "max_ack_ids": self.max_ack_ids,
            "max_recipients": self.max_recipients,
        }
        for name, value in positive_ints.items():
            if value < 1:
                raise InvalidArgument(f"messaging {name} must be at least 1, got {value}")
        positive_floats = {
            "default_ttl_seconds": self.default_ttl_seconds,
            "max_ttl_seconds": self.max_ttl_seconds,
            "default_lease_seconds": self.default_lease_seconds,
            "max_lease_seconds": self.max_lease_seconds,
            "sweep_interval_seconds": self.sweep_interval_seconds,
            "subscription_idle_seconds": self.subscription_idle_seconds,
            "mailbox_idle_seconds": self.mailbox_idle_seconds,
        }
        for name, seconds in positive_floats.items():
            if not seconds > 0:
                raise InvalidArgument(f"messaging {name} must be above 0 seconds, got {seconds}")
        if self.max_wait_seconds < 0:
            raise InvalidArgument(f"messaging max_wait_seconds must not be negative, got {self.max_wait_seconds}")
        if self.dedupe_window < 0:
            raise InvalidArgument(f"messaging dedupe_window must not be negative, got {self.dedupe_window}")
        if self.default_ttl_seconds > self.max_ttl_seconds:
            raise InvalidArgument("messaging default_ttl_seconds must not exceed max_ttl_seconds")
        if self.default_lease_seconds > self.max_lease_seconds:
            raise InvalidArgument("messaging default_lease_seconds must not exceed max_lease_seconds")
        if self.default_max_in_flight > self.max_in_flight:
            raise InvalidArgument("messaging default_max_in_flight must not exceed max_in_flight")
        if self.max_payload_bytes > self.max_total_bytes:
            raise InvalidArgument("messaging max_payload_bytes must not exceed max_total_bytes")
        if self.sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise InvalidArgument("messaging sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA")

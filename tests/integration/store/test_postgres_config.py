"""Pure parts of the PostgreSQL store (no server): the URL, the pool knobs, the month partitions.
(Kept beside the store's suite; they need no database.)"""

from __future__ import annotations

import datetime as dt

import pytest
from maos.controlplane.store import PostgresOptions, parse_postgres_url
from maos.controlplane.store._pg_schema import month_bounds, month_of, months_ahead, partition_name
from maos.errors import InvalidArgument


def test_the_schema_parameter_is_ours_and_the_password_never_shows() -> None:
    t = parse_postgres_url("postgresql://maos:s3cret@db.example:6432/prod?schema=team_a&sslmode=require")
    assert t.schema == "team_a"
    assert "schema" not in t.dsn and "sslmode=require" in t.dsn and "s3cret" in t.dsn
    assert t.display == "postgresql://maos@db.example:6432/prod?schema=team_a"
    assert parse_postgres_url("postgres://u@h/db").schema == "public"
    # Control planes on one schema share a lock key; other schemas do not.
    assert t.lock_key == parse_postgres_url("postgresql://other@h/x?schema=team_a").lock_key
    assert t.lock_key != parse_postgres_url("postgresql://maos@db.example/prod?schema=team_b").lock_key


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:pw@h:port/db", "postgresql:///db", "postgresql://u@h/db?schema=Robert');DROP", "http://h/db"],
)
def test_bad_urls_are_invalid_arguments_without_the_password(url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_postgres_url(url)
    assert "pw@" not in str(caught.value)


@pytest.mark.parametrize(
    ("knobs", "flag"),
    [
        ({"pool_size": 0}, "--store-pool-size"),
        ({"max_overflow": -1}, "--store-max-overflow"),
        ({"acquire_timeout_seconds": 0}, "--store-acquire-timeout"),
        ({"recycle_seconds": -5}, "--store-recycle-seconds"),
        ({"application_name": ""}, "--store-application-name"),
    ],
)
def test_pool_knobs_are_checked(knobs: dict[str, object], flag: str) -> None:
    with pytest.raises(InvalidArgument, match=flag):
        PostgresOptions(**knobs)  # type: ignore[arg-type]


def test_months_cover_time_without_gaps() -> None:
    assert month_of(dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp()) == (2026, 12)
    assert months_ahead(dt.datetime(2026, 11, 15, tzinfo=dt.UTC).timestamp(), 2) == [(2026, 11), (2026, 12), (2027, 1)]
    start, end = month_bounds((2026, 12))
    assert month_bounds((2027, 1))[0] == end
    assert month_of(start) == (2026, 12) and month_of(end) == (2027, 1)
    assert partition_name((2027, 1)) == "tasks_p202701"
    assert month_of(-1e12) == (1970, 1)  # before any month: the first partition takes it

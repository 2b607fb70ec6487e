"""Passwords never reach logs or errors, even in URLs too broken to parse."""

from __future__ import annotations

import pytest
from maos.controlplane._urls import redacted


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:secret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("postgresql://maos:s3cr:t@db:5432/maos", "postgresql://maos:***@db:5432/maos"),
        ("postgresql://maos:pw@db:not-a-port/maos", "postgresql://maos:***@db:not-a-port/maos"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("postgresql://maos@db/maos", "postgresql://maos@db/maos"),
    ],
)
def test_the_password_is_hidden(url: str, shown: str) -> None:
    assert redacted(url) == shown

"""Server URLs as logs and errors may show them."""

from __future__ import annotations

import re

_PASSWORD = re.compile(r"(://[^:/@]*):[^@/]*@")


def redacted(url: str) -> str:
    """The URL without its password (user:***@host), for logs, status and errors. Text only: it
    works on URLs too broken to parse, which is when error messages show them."""
    return _PASSWORD.sub(r"\1:***@", url)

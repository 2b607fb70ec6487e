"""The one tracing setting, parsed and validated in one place.

off                       no tracing (the default): nothing is installed, nothing is imported
otlp-grpc[=ENDPOINT]      OTLP over gRPC to a collector (default: the OTel SDK's, localhost:4317)
otlp-http[=ENDPOINT]      OTLP over HTTP (default: http://localhost:4318/v1/traces; an endpoint
                          without a path gets /v1/traces)
jsonl:PATH                one JSON object per span, appended to PATH (made absolute here, so
                          every process of a cluster started from one directory shares the file)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from maos.errors import InvalidArgument

TRACING_ENV = "MAOS_TRACING"

Kind = Literal["off", "otlp-grpc", "otlp-http", "jsonl"]

_USAGE = "expected off, otlp-grpc[=ENDPOINT], otlp-http[=ENDPOINT] or jsonl:PATH"


@dataclass(frozen=True, slots=True)
class TracingSpec:
    """Where spans go. `target` is the endpoint (empty: the exporter's default) or the JSON-lines path."""

    kind: Kind = "off"
    target: str = ""

    @property
    def enabled(self) -> bool:
        return self.kind != "off"

    @property
    def text(self) -> str:
        """The spec as it would be written on a command line (parses back to an equal spec)."""
        if self.kind == "jsonl":
            return f"jsonl:{self.target}"
        if self.target:
            return f"{self.kind}={self.target}"
        return self.kind


OFF = TracingSpec()


def parse_spec(text: str | None, *, source: str = "--tracing") -> TracingSpec:
    """Parse a tracing setting; InvalidArgument naming `source` and the accepted forms when it is wrong."""
    raw = (text or "").strip()
    if not raw or raw.lower() == "off":
        return OFF
    if raw.lower().startswith("jsonl:"):
        path = raw[len("jsonl:") :].strip()
        if not path:
            raise InvalidArgument(f"{source} {raw!r}: jsonl needs a file path, e.g. jsonl:/tmp/maos-spans.jsonl")
        return TracingSpec("jsonl", os.path.abspath(Path(path).expanduser()))
    name, sep, endpoint = raw.partition("=")
    kind = name.strip().lower()
    endpoint = endpoint.strip()
    if kind not in ("otlp-grpc", "otlp-http"):
        raise InvalidArgument(f"{source} {raw!r}: {_USAGE}")
    if sep and not endpoint:
        raise InvalidArgument(f"{source} {raw!r}: the endpoint after '=' is empty; drop '=' to use the default")
    if endpoint:
        endpoint = _check_endpoint(kind, endpoint, source, raw)
    return TracingSpec("otlp-grpc" if kind == "otlp-grpc" else "otlp-http", endpoint)


def spec_from_env(environ: dict[str, str] | os._Environ[str] | None = None) -> TracingSpec:
    """$MAOS_TRACING parsed (off when unset)."""
    env = os.environ if environ is None else environ
    return parse_spec(env.get(TRACING_ENV), source=f"${TRACING_ENV}")


def _check_endpoint(kind: str, endpoint: str, source: str, raw: str) -> str:
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument(f"{source} {raw!r}: the endpoint must be http(s)://HOST:PORT[/PATH] or HOST:PORT")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise InvalidArgument(f"{source} {raw!r}: the endpoint's port is not a number from 1 to 65535") from None
        if kind == "otlp-http" and parts.path in ("", "/"):
            return endpoint.rstrip("/") + "/v1/traces"
        return endpoint
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"{source} {raw!r}: the endpoint must be HOST:PORT or http(s)://HOST:PORT")
    if kind == "otlp-http":
        return f"http://{endpoint}/v1/traces"
    return f"http://{endpoint}"

"""The one tracing setting: every accepted form, and a clear error for the rest."""

from __future__ import annotations

import os

import pytest
from maos.errors import InvalidArgument
from maos.tracing import OFF, TRACING_ENV, TracingSpec, parse_spec, spec_from_env


@pytest.mark.parametrize("text", [None, "", "  ", "off", "OFF", " Off "])
def test_off_forms(text: str | None) -> None:
    spec = parse_spec(text)
    assert spec == OFF
    assert not spec.enabled


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("otlp-grpc", TracingSpec("otlp-grpc", "")),
        ("otlp-grpc=collector:4317", TracingSpec("otlp-grpc", "http://collector:4317")),
        ("otlp-grpc=https://collector:4317", TracingSpec("otlp-grpc", "https://collector:4317")),
        ("OTLP-HTTP", TracingSpec("otlp-http", "")),
        ("otlp-http=collector:4318", TracingSpec("otlp-http", "http://collector:4318/v1/traces")),
        ("otlp-http=http://collector:4318", TracingSpec("otlp-http", "http://collector:4318/v1/traces")),
        ("otlp-http=http://collector:4318/custom", TracingSpec("otlp-http", "http://collector:4318/custom")),
        ("jsonl:/tmp/spans.jsonl", TracingSpec("jsonl", "/tmp/spans.jsonl")),
    ],
)
def test_enabled_forms(text: str, expected: TracingSpec) -> None:
    spec = parse_spec(text)
    assert spec == expected
    assert spec.enabled
    assert parse_spec(spec.text) == spec  # the text form round-trips (it is what workers get)


def test_a_relative_jsonl_path_becomes_absolute() -> None:
    spec = parse_spec("jsonl:spans/out.jsonl")
    assert spec.target == os.path.join(os.getcwd(), "spans", "out.jsonl")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("jaeger", "expected off, otlp-grpc[=ENDPOINT], otlp-http[=ENDPOINT] or jsonl:PATH"),
        ("jsonl:", "jsonl needs a file path"),
        ("otlp-grpc=", "the endpoint after '=' is empty"),
        ("otlp-grpc=collector", "HOST:PORT"),
        ("otlp-http=collector:99999", "HOST:PORT"),
        ("otlp-http=ftp://collector:21", "http(s)://"),
        ("otlp-grpc=http://collector:notaport", "port"),
    ],
)
def test_bad_settings_say_what_is_accepted(text: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_spec(text, source="--tracing")
    message = str(info.value)
    assert message.startswith(f"--tracing {text!r}")
    assert fragment in message
    assert "\n" not in message


def test_env_setting_names_the_variable() -> None:
    assert spec_from_env({}) == OFF
    assert spec_from_env({TRACING_ENV: "otlp-grpc"}) == TracingSpec("otlp-grpc", "")
    with pytest.raises(InvalidArgument, match=r"^\$MAOS_TRACING 'nope'"):
        spec_from_env({TRACING_ENV: "nope"})

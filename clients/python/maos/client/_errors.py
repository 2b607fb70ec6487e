"""gRPC status -> maos.errors: the one place the SDK translates transport failures."""

from __future__ import annotations

import grpc
from maos.errors import ERRORS_BY_CODE, MaosError, Unavailable

from ._config import ENDPOINT_ENV

# Text gRPC core puts in UNAVAILABLE when the channel never reached a server (as
# opposed to a server that answered UNAVAILABLE on purpose, whose message we keep).
_TRANSPORT_HINTS = (
    "failed to connect",
    "connection refused",
    "dns resolution failed",
    "name resolution",
    "connections to all backends failing",
    "socket closed",
    "connection reset",
    "broken pipe",
    "no route to host",
    "network is unreachable",
    "connection timed out",
    "empty address list",
)


def unreachable(endpoint: str) -> Unavailable:
    """The error for a control plane that cannot be reached, with what to do about it."""
    return Unavailable(
        f"cannot reach the MAOS control plane at {endpoint} — start one with `maosctl up` "
        f"or set --endpoint / {ENDPOINT_ENV}"
    )


def from_rpc_error(error: grpc.RpcError, endpoint: str) -> MaosError:
    """Translate a gRPC error into the maos.errors class of its status code.

    Codes without a class of their own (CANCELLED, UNKNOWN, UNIMPLEMENTED, ...)
    become a plain MaosError whose `code` attribute still names the status.
    """
    try:
        code = error.code()
        details = error.details() or ""
    except AttributeError:  # a bare RpcError that is not also a Call
        return MaosError(str(error) or "unknown gRPC error")
    name = code.name if isinstance(code, grpc.StatusCode) else str(code)
    if code is grpc.StatusCode.UNAVAILABLE:
        lowered = details.lower()
        if not details or any(hint in lowered for hint in _TRANSPORT_HINTS):
            return unreachable(endpoint)
    if code is grpc.StatusCode.UNIMPLEMENTED:
        details = f"the control plane at {endpoint} does not implement this call ({details})"
    cls = ERRORS_BY_CODE.get(name)
    message = " ".join(details.split()) or name.lower().replace("_", " ")
    if cls is None:
        err = MaosError(f"{message} ({name})")
        err.code = name
        return err
    return cls(message)

"""The MAOS exception tree, shared by the control plane, agent hosts and clients.

    MaosError                     root; `code` names the gRPC status it maps to
    ├── InvalidArgument           bad input: the message names the field and what is allowed
    ├── NotFound                  an id that names nothing
    ├── AlreadyExists
    ├── FailedPrecondition        the request is valid but the target's state forbids it
    ├── ResourceExhausted         a bound was hit (queue, mailbox, message size); retry later
    ├── Unauthenticated
    ├── PermissionDenied
    ├── Unavailable               the control plane (or a backend) cannot be reached
    ├── DeadlineExceeded
    └── Internal                  a bug; the message says where to look

The control plane raises these from its core; exactly one module maps them to
gRPC statuses. The SDK maps statuses back to the same classes.
"""

from __future__ import annotations


class MaosError(Exception):
    """Root of every error MAOS raises on purpose."""

    code: str = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(MaosError):
    code = "INVALID_ARGUMENT"


class NotFound(MaosError):
    code = "NOT_FOUND"


class AlreadyExists(MaosError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(MaosError):
    code = "FAILED_PRECONDITION"


class ResourceExhausted(MaosError):
    code = "RESOURCE_EXHAUSTED"


class Unauthenticated(MaosError):
    code = "UNAUTHENTICATED"


class PermissionDenied(MaosError):
    code = "PERMISSION_DENIED"


class Unavailable(MaosError):
    code = "UNAVAILABLE"


class DeadlineExceeded(MaosError):
    code = "DEADLINE_EXCEEDED"


class Internal(MaosError):
    code = "INTERNAL"


ERRORS_BY_CODE: dict[str, type[MaosError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        ResourceExhausted,
        Unauthenticated,
        PermissionDenied,
        Unavailable,
        DeadlineExceeded,
        Internal,
    )
}

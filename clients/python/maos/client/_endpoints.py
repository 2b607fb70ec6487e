"""Several control-plane endpoints (active/standby) and moving between them.

An endpoint setting may list several addresses, comma-separated
("10.0.0.1:7700,10.0.0.2:7700"): the control planes sharing one
PostgreSQL, of which one leads. A standby answers UNAVAILABLE naming the
leader; an address that cannot be reached is skipped. `EndpointRotation`
says where to go next: the leader a standby named, else the next address.
"""

from __future__ import annotations

import re

from maos.errors import InvalidArgument

_LEADER = re.compile(r"the leader is (\S+?) \(epoch")
# Only failures before the request left: a connection that dropped mid-call ("socket closed")
# may have delivered it, and a retry elsewhere could do the work twice.
_NOT_REACHED = ("failed to connect", "connection refused", "connect failed", "sendmsg", "not the leader")


def parse_endpoints(text: str) -> list[str]:
    """The addresses of a comma-separated endpoint setting, each HOST:PORT (or unix:PATH)."""
    endpoints = [part.strip() for part in text.split(",") if part.strip()]
    if not endpoints:
        raise InvalidArgument("no control plane endpoint given: use HOST:PORT, or several separated by commas")
    for endpoint in endpoints:
        if endpoint.startswith("unix:"):
            continue
        host, sep, port = endpoint.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgument(f"control plane endpoint must be HOST:PORT (e.g. 127.0.0.1:7700), got {endpoint!r}")
    return endpoints


def leader_hint(details: str) -> str | None:
    """The leader a standby's UNAVAILABLE names, if it names one."""
    match = _LEADER.search(details or "")
    return match.group(1) if match else None


def worth_another_endpoint(details: str) -> bool:
    """True when an UNAVAILABLE means the call never took effect here: a standby refused it,
    or the address could not be reached. Then another endpoint may take it safely."""
    text = (details or "").lower()
    return "standby" in text or any(marker in text for marker in _NOT_REACHED)


class EndpointRotation:
    """Where to connect: the current address, and the next one after a failure."""

    def __init__(self, endpoints: list[str]) -> None:
        self.endpoints = list(endpoints)
        self._index = 0
        self.current = self.endpoints[0]

    def has_elsewhere(self, details: str = "") -> bool:
        """Another address to try: several are listed, or a standby named the leader."""
        return len(self.endpoints) > 1 or leader_hint(details) is not None

    def move_after(self, details: str) -> bool:
        """After an UNAVAILABLE with these details: move on (True) when the call never took effect
        here and there is somewhere else to make it."""
        if not worth_another_endpoint(details) or not self.has_elsewhere(details):
            return False
        self.failed(details)
        return True

    def failed(self, details: str = "") -> str:
        """The current address failed (with this status detail): the address to try next."""
        leader = leader_hint(details)
        if leader and leader != self.current:
            if leader not in self.endpoints:
                self.endpoints.append(leader)  # a leader the list did not name: trust the standby's word
            self._index = self.endpoints.index(leader)
        else:
            self._index = (self._index + 1) % len(self.endpoints)
        self.current = self.endpoints[self._index]
        return self.current

"""Where gossip enters: parsing, per-field validation and the limits that bound a node's memory.

Every field of every gossip message is checked here before the membership engine sees it. The
rule is *drop, do not raise*: an entry with one bad field is dropped on its own (the rest of the
message still counts) and noted in a rate-limited log line; only a message that cannot be parsed
at all, or whose sender entry (``members[0]``) is bad, is rejected whole. Nothing here raises
out of :func:`parse_gossip` except :class:`~cinema.cluster.GossipRejected`.

Limits per message bound the work one message can cause; limits on the totals (members, actors,
registry bytes) are applied by the engine with the numbers below as defaults, so that a flood of
well-formed gossip cannot grow a node's memory without bound.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Final, final

from google.protobuf.message import DecodeError

from ._errors import GossipRejected
from ._types import NodeStatus
from .proto import gossip_pb2 as pb

__all__ = [
    "DEFAULT_MAX_ACTORS",
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_MAX_REGISTRY_BYTES",
    "MAX_ACTORS_PER_MEMBER",
    "MAX_ENTRIES",
    "MAX_HEARTBEAT",
    "MAX_ID_LENGTH",
    "MAX_INCARNATION_LEAD_MS",
    "MAX_NAME_LENGTH",
    "MAX_PROBES_PER_MESSAGE",
    "MAX_REGISTRY_BYTES_PER_MEMBER",
    "MAX_SUSPECTERS",
    "STATUS_FROM_PB",
    "STATUS_TO_PB",
    "AddressCheck",
    "BoundedLog",
    "Parsed",
    "address_check_for",
    "is_loopback",
    "parse_gossip",
    "registry_bytes",
    "short",
]

#: Entries in one gossip message (a full-state sync page included); more: rejected whole.
MAX_ENTRIES: Final = 1024
#: Actors one member may announce.
MAX_ACTORS_PER_MEMBER: Final = 4096
#: Bytes of actor and type names one member may announce.
MAX_REGISTRY_BYTES_PER_MEMBER: Final = 256 * 1024
MAX_ID_LENGTH: Final = 256
MAX_NAME_LENGTH: Final = 512
MAX_HEARTBEAT: Final = 1 << 62
#: An incarnation (or registration time) more than this far (ms) ahead of our wall clock is
#: absurd; a registration may not predate its member's incarnation by more than this either.
MAX_INCARNATION_LEAD_MS: Final = 24 * 3600 * 1000
#: Ids in ``probe_for`` or ``relayed`` honoured per message.
MAX_PROBES_PER_MESSAGE: Final = 4
#: Suspecter ids kept per suspicion.
MAX_SUSPECTERS: Final = 8
#: Default bounds on what one node remembers, in total.
DEFAULT_MAX_MEMBERS: Final = 10_000
DEFAULT_MAX_ACTORS: Final = 200_000
DEFAULT_MAX_REGISTRY_BYTES: Final = 32 * 1024 * 1024

STATUS_FROM_PB: Final = {
    pb.MEMBER_STATUS_UP: NodeStatus.UP,
    pb.MEMBER_STATUS_SUSPECT: NodeStatus.SUSPECT,
    pb.MEMBER_STATUS_DOWN: NodeStatus.DOWN,
    pb.MEMBER_STATUS_LEFT: NodeStatus.LEFT,
}
STATUS_TO_PB: Final = {v: k for k, v in STATUS_FROM_PB.items()}

#: ``check(address) -> bool``: whether an address can be connected to by this node.
AddressCheck = Callable[[str], bool]

# Address verdicts remembered by one check.
_CHECK_CACHE: Final = 16384
# Schemes whose rest is "host:port".
_HOST_PORT_SCHEMES: Final = frozenset({"tcp", "tls", "ws", "wss"})


def _printable(text: str) -> bool:
    # isprintable() is False for every whitespace character but the plain space.
    return text.isprintable() and " " not in text


def _valid_host_port(rest: str) -> bool:
    host, sep, port_text = rest.rpartition(":")
    if not sep or not host or not port_text.isdigit() or len(port_text) > 5:
        return False
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            return False
    elif ":" in host:
        return False
    return 1 <= int(port_text) <= 65535


def address_check_for(schemes: Collection[str]) -> AddressCheck:
    """An address check accepting the given URL schemes (plain ``host:port`` means ``tcp``).

    ``host:port`` schemes need a port in 1..65535; others need a non-empty rest. Spaces and
    control characters are never accepted.
    """
    allowed = frozenset(schemes)
    known: dict[str, bool] = {}  # the same few addresses come again and again: remember

    def verdict(address: str) -> bool:
        if not address or len(address) > MAX_ID_LENGTH or not _printable(address):
            return False
        scheme, sep, rest = address.partition("://")
        if not sep:
            scheme, rest = "tcp", address
        if scheme not in allowed or not rest:
            return False
        if scheme in _HOST_PORT_SCHEMES:
            return _valid_host_port(rest)
        return True

    def check(address: str) -> bool:
        result = known.get(address)
        if result is None:
            if len(known) >= _CHECK_CACHE:
                known.clear()  # bounded: hostile peers may send endless new addresses
            result = known[address] = verdict(address)
        return result

    return check


def is_loopback(address: str) -> bool:
    """Whether a listening address is reachable from this machine only (``mem://``,
    ``unix://``, ``localhost``, ``127.0.0.0/8``, ``::1``)."""
    scheme, sep, rest = address.partition("://")
    if sep and scheme in ("mem", "unix"):
        return True
    if not sep:
        rest = address
    host = rest.rpartition(":")[0] if ":" in rest else rest
    host = host.strip("[]").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def registry_bytes(actors: dict[str, tuple[str, int]]) -> int:
    """The bytes of names an actor list costs (the unit of the registry limits)."""
    return sum(len(name) + len(type_name) for name, (type_name, _) in actors.items())


@final
class BoundedLog:
    """Warnings at most ``burst`` per ``period`` seconds of real time; the rest are counted and
    the count reported with the next line that goes out."""

    def __init__(self, log: logging.Logger, *, burst: int = 10, period: float = 60.0) -> None:
        self._log = log
        self._burst = burst
        self._period = period
        self._window_start = -period
        self._sent = 0
        self.suppressed = 0

    def warning(self, message: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        if now - self._window_start >= self._period:
            self._window_start = now
            self._sent = 0
        if self._sent >= self._burst:
            self.suppressed += 1
            return
        self._sent += 1
        if self.suppressed:
            message += " (%d similar lines suppressed)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        self._log.warning(message, *args, exc_info=exc_info)


def short(text: str, limit: int = 40) -> str:
    """``text`` cut for a log line."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


@final
@dataclass(slots=True)
class Parsed:
    """A validated gossip message: its good entries (the sender first) and requests."""

    entries: list[pb.MemberState]
    probe_for: list[str] = field(default_factory=list)
    relayed: list[str] = field(default_factory=list)
    sync: bool = False
    sync_after: str = ""
    sync_next: str = ""
    dropped: list[str] = field(default_factory=list)  # why each dropped entry was dropped


def _entry_problem(
    e: pb.MemberState, *, max_incarnation: int, max_registered: int, check: AddressCheck
) -> str | None:
    node_id = e.id
    if not node_id or len(node_id) > MAX_ID_LENGTH or not node_id.isprintable():
        return f"bad member id {short(node_id)}"
    if not check(e.addr):
        return f"unusable address {short(e.addr)} for member {short(node_id)}"
    if e.status not in STATUS_FROM_PB:
        return f"bad status {e.status} for member {short(node_id)}"
    if e.incarnation > max_incarnation:
        return f"absurd incarnation {e.incarnation} for member {short(node_id)}"
    if e.heartbeat > MAX_HEARTBEAT:
        return f"absurd heartbeat {e.heartbeat} for member {short(node_id)}"
    if e.registry_version > MAX_HEARTBEAT:
        return f"absurd registry version for member {short(node_id)}"
    suspecters = e.suspecters
    if suspecters and (
        len(suspecters) > MAX_SUSPECTERS or any(not s or len(s) > MAX_ID_LENGTH for s in suspecters)
    ):
        return f"bad suspecters for member {short(node_id)}"
    if not e.actors:
        return None
    if len(e.actors) > MAX_ACTORS_PER_MEMBER:
        return f"{len(e.actors)} actors for member {short(e.id)}"
    names: set[str] = set()
    size = 0
    min_registered = e.incarnation - MAX_INCARNATION_LEAD_MS
    for a in e.actors:
        if not a.name or len(a.name) > MAX_NAME_LENGTH or len(a.type_name) > MAX_NAME_LENGTH:
            return f"bad actor entry for member {short(e.id)}"
        if a.name in names:
            return f"actor {short(a.name)} listed twice for member {short(e.id)}"
        if not min_registered <= a.registered_at_ms <= max_registered:
            return (
                f"actor {short(a.name)} of member {short(e.id)} registered at"
                f" {a.registered_at_ms}, outside its incarnation and the clock"
            )
        names.add(a.name)
        size += len(a.name) + len(a.type_name)
    if size > MAX_REGISTRY_BYTES_PER_MEMBER:
        return f"{size} bytes of actor names for member {short(e.id)}"
    return None


def parse_gossip(data: bytes, *, wall_ms: int, check: AddressCheck) -> Parsed:
    """Parse and validate one gossip message.

    :param wall_ms: the receiver's wall clock (ms), the bound for incarnations and timestamps.
    :param check: whether an address is usable here (a transport for it is installed).
    :raises GossipRejected: the message cannot be parsed, is too large, or its sender entry is
        bad; anything else bad is dropped entry by entry (see :attr:`Parsed.dropped`).
    """
    msg = pb.Gossip()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:  # protobuf's own errors
        raise GossipRejected(f"not a gossip message ({str(exc)[:80]})") from None
    if not msg.members:
        raise GossipRejected("no members")
    if len(msg.members) > MAX_ENTRIES:
        raise GossipRejected(f"{len(msg.members)} members, more than the {MAX_ENTRIES} allowed")
    max_incarnation = wall_ms + MAX_INCARNATION_LEAD_MS
    parsed = Parsed(entries=[])
    seen: set[str] = set()
    for index, e in enumerate(msg.members):
        problem = _entry_problem(
            e, max_incarnation=max_incarnation, max_registered=max_incarnation, check=check
        )
        if problem is None and e.id in seen:
            problem = f"member {short(e.id)} listed twice"
        if index == 0:
            if problem is not None:
                raise GossipRejected(f"bad sender entry: {problem}")
            if STATUS_FROM_PB[e.status] not in (NodeStatus.UP, NodeStatus.LEFT):
                raise GossipRejected(f"the sender {short(e.id)} describes itself as not alive")
        if problem is not None:
            parsed.dropped.append(problem)
            continue
        seen.add(e.id)
        parsed.entries.append(e)
    parsed.probe_for = _ids(msg.probe_for)
    parsed.relayed = _ids(msg.relayed)
    parsed.sync = msg.sync
    if len(msg.sync_after) <= MAX_ID_LENGTH:
        parsed.sync_after = msg.sync_after
    if len(msg.sync_next) <= MAX_ID_LENGTH:
        parsed.sync_next = msg.sync_next
    return parsed


def _ids(values: Collection[str]) -> list[str]:
    ids: list[str] = []
    for value in values:
        if len(ids) >= MAX_PROBES_PER_MESSAGE:
            break
        if value and len(value) <= MAX_ID_LENGTH and value not in ids:
            ids.append(value)
    return ids

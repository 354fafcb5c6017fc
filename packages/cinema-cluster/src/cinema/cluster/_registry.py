"""The distributed actor registry: the actors each member announces, indexed by name, within
total limits, and the rule that resolves a name held by several members."""

from __future__ import annotations

from ._member import LIVE, MemberRecord
from ._validation import (
    MAX_ACTORS_PER_MEMBER,
    MAX_INCARNATION_LEAD_MS,
    MAX_NAME_LENGTH,
    MAX_REGISTRY_BYTES_PER_MEMBER,
    registry_bytes,
    short,
)
from ._view import View
from .proto import gossip_pb2 as pb

__all__ = ["Registry"]


class Registry(View):
    """The member table plus the actors its members announce."""

    max_actors: int
    max_registry_bytes: int

    def __init__(self, node_id: str, addr: str, now: float, incarnation: int | None) -> None:
        super().__init__(node_id, addr, now, incarnation)
        # actor name -> ids of members (ours included) that announce it
        self._actor_index: dict[str, dict[str, None]] = {}
        self._actor_total = 0
        self._registry_total = 0

    @property
    def registry_version(self) -> int:
        """Grows with every change of this node's actor list."""
        return self._me.registry_version

    def lookup_actor(self, name: str) -> tuple[str, str] | None:
        """Where the actor registered under ``name`` lives: ``(node id, type name)``.

        Only live (Up or Suspect) members count. When several announce the name, the earliest
        registration wins, ties broken by the smaller node id: every node that has heard the
        same announcements picks the same one.
        """
        holders = self._actor_index.get(name)
        if not holders:
            return None
        best: tuple[int, str, str] | None = None
        for node_id in holders:
            m = self._members[node_id]
            if m.status not in LIVE:
                continue
            type_name, at = m.actors[name]
            candidate = (at, node_id, type_name)
            if best is None or candidate < best:
                best = candidate
        return None if best is None else (best[1], best[2])

    def actors(self) -> dict[str, tuple[str, str]]:
        """Every registered actor name with its resolved ``(node id, type name)``, sorted."""
        found: dict[str, tuple[str, str]] = {}
        for name in sorted(self._actor_index):
            location = self.lookup_actor(name)
            if location is not None:
                found[name] = location
        return found

    def register_actor(self, name: str, type_name: str) -> None:
        """Announce an actor on this node. Registering it again (same type) is a no-op."""
        if not name or len(name) > MAX_NAME_LENGTH or len(type_name) > MAX_NAME_LENGTH:
            raise ValueError(f"actor and type names must have 1..{MAX_NAME_LENGTH} characters")
        me = self._me
        current = me.actors.get(name)
        if current is not None and current[0] == type_name:
            return
        if current is None and len(me.actors) >= MAX_ACTORS_PER_MEMBER:
            raise ValueError(f"a node announces at most {MAX_ACTORS_PER_MEMBER} actors")
        size = me.registry_bytes + len(name) + len(type_name)
        if current is not None:
            size -= len(name) + len(current[0])
        if size > MAX_REGISTRY_BYTES_PER_MEMBER:
            raise ValueError(
                f"a node announces at most {MAX_REGISTRY_BYTES_PER_MEMBER} bytes of names"
            )
        actors = dict(me.actors)
        # Never before this life began (others reject such times), whatever the clock says.
        actors[name] = (type_name, max(self._wall_clock(), me.incarnation))
        self._set_actors(me, actors)
        me.registry_version += 1

    def unregister_actor(self, name: str) -> bool:
        """Withdraw an actor of this node; ``False`` if it was not registered here."""
        me = self._me
        if name not in me.actors:
            return False
        actors = dict(me.actors)
        del actors[name]
        self._set_actors(me, actors)
        me.registry_version += 1
        return True

    def _restamp_actors(self) -> None:
        # Registration times may not predate the incarnation by more than the allowed lead.
        me = self._me
        floor = me.incarnation - MAX_INCARNATION_LEAD_MS
        if any(at < floor for _, at in me.actors.values()):
            self._set_actors(me, {n: (t, max(at, floor)) for n, (t, at) in me.actors.items()})
            me.registry_version += 1

    def _adopt_actors(self, m: MemberRecord, e: pb.MemberState) -> bool:
        if e.registry_version <= m.registry_version:
            return False
        actors = {a.name: (a.type_name, a.registered_at_ms) for a in e.actors}
        size = registry_bytes(actors)
        if (
            self._actor_total - len(m.actors) + len(actors) > self.max_actors
            or self._registry_total - m.registry_bytes + size > self.max_registry_bytes
        ):
            self._limit_log.warning(
                "ignoring the %d actors of member %s: over the registry limits",
                len(actors),
                short(m.id),
            )
            return False
        self._set_actors(m, actors, size)
        m.registry_version = e.registry_version
        return True

    def _set_actors(
        self, m: MemberRecord, actors: dict[str, tuple[str, int]], size: int | None = None
    ) -> None:
        m.encoded = None
        for name in m.actors:
            if name not in actors:
                self._unindex(name, m.id)
        for name in actors:
            self._actor_index.setdefault(name, {})[m.id] = None
        self._actor_total += len(actors) - len(m.actors)
        new_size = registry_bytes(actors) if size is None else size
        self._registry_total += new_size - m.registry_bytes
        m.actors = actors
        m.registry_bytes = new_size

    def _unindex(self, name: str, node_id: str) -> None:
        holders = self._actor_index.get(name)
        if holders is not None:
            holders.pop(node_id, None)
            if not holders:
                del self._actor_index[name]

    def _forget(self, m: MemberRecord) -> None:
        super()._forget(m)
        self._set_actors(m, {})

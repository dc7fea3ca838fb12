"""The pool replica: every server the host's router knows, kept current from its notices, and the
choice of a server for a call (docs/protocol.md#calling, as lib/pool/function-pool.ts does it).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

from .topics import parse_subscription, pattern_matches

SCOPE_RANK = {"server": 0, "host": 1, "network": 2}


@dataclass
class PoolServer:
    id: str
    host: str
    host_id: str
    address: str
    port: int
    pid: int
    state: Optional[str] = None
    realm: str = ""
    suspect: bool = False
    gateway: Optional[str] = None
    functions: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    topics: Set[str] = field(default_factory=set)

    described: str = field(default="", repr=False, compare=False)

    def describe(self) -> str:
        if not self.described:
            self.described = f"server {self.id} on {self.host} (pid {self.pid}, {self.address}:{self.port})"
        return self.described


@dataclass
class Perspective:
    """Where a resolution is made from: this process (and its host), or a host named (get_host)."""

    host_id: str
    server_id: Optional[str] = None
    caller_host_id: Optional[str] = None
    caller_server_id: Optional[str] = None
    named: bool = False
    realm: str = ""


def in_realm(function_realm: str, caller_realm: str) -> bool:
    return function_realm == "" or caller_realm == function_realm or caller_realm.startswith(function_realm + ".")


def _within(server: PoolServer, scope: str, host_id: str, server_id: Optional[str]) -> bool:
    if SCOPE_RANK.get(scope, 2) >= 2:
        return True
    if server.host_id != host_id:
        return False
    return scope == "host" or server.id == server_id


def offers(server: PoolServer, name: str, scope: str, at: Perspective) -> bool:
    entry = server.functions.get(name)
    if entry is None:
        return False
    caller_host = at.caller_host_id or at.host_id
    caller_server = at.caller_server_id or at.server_id
    same_host = server.host_id == caller_host
    visibility = entry.get("visibility", "public")
    if visibility == "secret":
        return False
    if visibility == "local" and not same_host:
        return False
    if visibility == "private" and not same_host and not (at.named and server.host_id == at.host_id):
        return False
    if not in_realm(server.realm, at.realm):
        return False
    if not _within(server, scope, at.host_id, at.server_id):
        return False
    return _within(server, entry.get("scope", "network"), caller_host, caller_server)


def locality(server: PoolServer, at: Perspective) -> int:
    if server.id == at.server_id:
        return 0
    if server.host_id == at.host_id:
        return 1
    return 2 if server.gateway is None else 3


class Pool:
    """Thread-safe: the loop's thread applies notices while callers' threads resolve."""

    def __init__(self) -> None:
        self.servers: Dict[str, PoolServer] = {}
        self.lock = threading.RLock()
        #: Who subscribes to a topic, by topic, for as long as the pool does not change (the
        #: publisher's hot path asks it for every publication).
        self._subscribers: Dict[tuple, List[PoolServer]] = {}
        #: The servers a call may go to (the nearest of those offering it), by name, scope,
        #: perspective and state, for as long as the pool does not change (every call asks).
        self._nearest: Dict[tuple, List[PoolServer]] = {}
        self._groups: Dict[str, Dict[str, List[PoolServer]]] = {}
        #: Counts the changes: what was decided from the pool holds while it is the same.
        self.generation = 0

    def _changed(self) -> None:
        self.generation += 1
        self._subscribers.clear()
        self._nearest.clear()
        self._groups.clear()

    def _add(self, entry: Dict[str, Any]) -> PoolServer:
        known = self.servers.get(entry["id"])
        if known is not None:
            return known
        server = PoolServer(
            id=entry["id"], host=entry.get("host", ""), host_id=entry.get("hostId", ""), address=entry.get("address", ""),
            port=int(entry.get("port") or 0), pid=int(entry.get("pid") or 0), state=entry.get("state"), realm=entry.get("realm") or "",
            suspect=entry.get("suspect") is True, gateway=entry.get("gateway"),
        )
        self.servers[server.id] = server
        return server

    def _announce(self, server: PoolServer, entry: Dict[str, Any]) -> None:
        for function in entry.get("functions") or []:
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                server.functions[function["name"]] = function
        for topic in entry.get("topics") or []:
            if isinstance(topic, str):
                server.topics.add(topic)

    def replace(self, entries: List[Dict[str, Any]]) -> None:
        with self.lock:
            self._changed()
            self.servers.clear()
            for entry in entries:
                self._announce(self._add(entry), entry)

    def apply_announce(self, body: Dict[str, Any]) -> None:
        entry = body.get("server")
        if isinstance(entry, dict):
            with self.lock:
                self._changed()
                self._announce(self._add(entry), entry)

    def apply_withdraw(self, body: Dict[str, Any]) -> None:
        with self.lock:
            self._changed()
            server = self.servers.get(body.get("server"))
            if server is None:
                return
            for name in body.get("functions") or []:
                server.functions.pop(name, None)
            for topic in body.get("topics") or []:
                server.topics.discard(topic)

    def remove(self, server_id: str) -> Optional[PoolServer]:
        with self.lock:
            self._changed()
            return self.servers.pop(server_id, None)

    def set_suspect(self, server_id: str, suspect: bool) -> None:
        with self.lock:
            server = self.servers.get(server_id)
            if server is not None:
                server.suspect = suspect
                self._nearest.clear()
                self.generation += 1

    def candidates(self, name: str, scope: str, at: Perspective) -> List[PoolServer]:
        with self.lock:
            return [server for server in self.servers.values() if offers(server, name, scope, at)]

    def resolve(self, name: str, scope: str, at: Perspective, state: Optional[str] = None) -> Optional[PoolServer]:
        nearest = self.nearest(name, scope, at, state)
        if len(nearest) <= 1:
            return nearest[0] if nearest else None
        return random.choice(nearest)

    def nearest(self, name: str, scope: str, at: Perspective, state: Optional[str] = None) -> List[PoolServer]:
        """The servers a call may go to, equally near (``resolve`` picks one at random)."""
        key = (name, scope, at.host_id, at.server_id, at.caller_host_id, at.caller_server_id, at.named, at.realm, state)
        nearest = self._nearest.get(key)
        if nearest is None:
            with self.lock:
                nearest = self._nearest_to(name, scope, at, state)
                if len(self._nearest) > 10000:
                    self._nearest.clear()
                self._nearest[key] = nearest
        return nearest

    def _nearest_to(self, name: str, scope: str, at: Perspective, state: Optional[str]) -> List[PoolServer]:
        found = self.candidates(name, scope, at)
        if state is not None:
            found = [server for server in found if server.state == state]
        if len(found) > 1 and any(server.suspect for server in found):
            well = [server for server in found if not server.suspect]
            found = well or found
        if len(found) <= 1:
            return found
        best = min(locality(server, at) for server in found)
        return [server for server in found if locality(server, at) == best]

    def subscribers(self, topic: str, own_id: Optional[str]) -> List[PoolServer]:
        """Servers (not this process) with a subscription outside groups matching ``topic``."""
        known = self._subscribers.get((topic, own_id))
        if known is not None:
            return known
        with self.lock:
            out: List[PoolServer] = []
            for server in self.servers.values():
                if server.id == own_id:
                    continue
                for key in server.topics:
                    pattern, group = parse_subscription(key)
                    if group is None and pattern_matches(pattern, topic):
                        out.append(server)
                        break
            if len(self._subscribers) > 10000:
                self._subscribers.clear()
            self._subscribers[(topic, own_id)] = out
            return out

    def group_members(self, topic: str) -> Dict[str, List[PoolServer]]:
        """For each queue group with a subscription matching ``topic``, its servers (the caller
        must not change what it gets: it is kept until the pool changes)."""
        known = self._groups.get(topic)
        if known is not None:
            return known
        with self.lock:
            groups: Dict[str, List[PoolServer]] = {}
            for server in self.servers.values():
                for key in server.topics:
                    pattern, group = parse_subscription(key)
                    if group is not None and pattern_matches(pattern, topic):
                        members = groups.setdefault(group, [])
                        if server not in members:
                            members.append(server)
            if len(self._groups) > 10000:
                self._groups.clear()
            self._groups[topic] = groups
            return groups

    def hosts(self) -> Dict[str, str]:
        """Host id -> host name, for every host a server of the pool runs on."""
        with self.lock:
            return {server.host_id: server.host for server in self.servers.values()}

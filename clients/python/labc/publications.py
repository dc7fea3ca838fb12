"""What a process publishes: to every subscriber the pool replica lists (this process's own run
here), one member of each queue group in turn, other sites once per gateway; ``reqpub``, whose
nearest subscriber answers."""

from __future__ import annotations

import random
from typing import Any, Dict, List, Optional, Tuple

from .errors import LabcError, NoSuchFunctionError
from .frames import MAX_FRAME, Kind, PublicationHead, encode, encode_publication
from .pool import PoolServer
from .topics import check_topic

REQPUB = "labc.reqpub"


class _Plan:
    """How publications on one topic go while the pool (``generation``) and our connections
    (``changes``) are the same: ``connections`` to each subscriber, or None for the long way."""

    __slots__ = ("generation", "changes", "head", "max_frame", "connections", "labels")

    def __init__(self, generation: int, changes: int, head: PublicationHead) -> None:
        self.generation, self.changes, self.head = generation, changes, head
        self.max_frame = MAX_FRAME
        self.connections: Optional[List[Any]] = None
        self.labels: List[str] = []


class Publications:
    def __init__(self, runtime: Any) -> None:
        self.rt = runtime
        self._turns: Dict[str, int] = {}
        self._plans: Dict[str, _Plan] = {}

    def _choose_members(self, topic: str, only: Optional[callable] = None) -> Dict[str, List[str]]:
        """For each queue group matching ``topic``, the server (by id) that gets this publication."""
        chosen: Dict[str, List[str]] = {}
        for group, servers in self.rt.link.pool.group_members(topic).items():
            if only is not None:
                servers = [s for s in servers if only(s)]
            lan = [s for s in servers if s.gateway is None] or servers
            well = [s for s in lan if not s.suspect] or lan
            if not well:
                continue
            turn = self._turns.get(group)
            if turn is None:
                turn = random.randrange(0x10000)  # publishers that publish once each spread too
            self._turns[group] = turn + 1
            chosen.setdefault(well[turn % len(well)].id, []).append(group)
        return chosen

    def publish_plain(self, topic: str, args: Any) -> int:
        """``publish`` with no options (``labc.publish``), in the fewest steps when the topic's
        plan holds (``_send_planned``); anything else goes the long way."""
        done = self._send_planned(topic, args)
        if done is None:
            return self.publish(topic, list(args))
        for connection in done[1]:
            if connection.queued:  # what the socket did not take is waited for (wait_sent)
                self.wait_sent(done[1])
                break
        return done[0]

    def publish(self, topic: str, args: List[Any], only: Optional[callable] = None, one_by_one: bool = False,
                except_server: Optional[str] = None, skip: Optional[str] = None) -> int:
        """Sends to every subscriber (``only`` those a filter keeps); returns how many servers got it,
        once the frames have left this process."""
        reached, touched = self.send(topic, args, only, one_by_one, except_server, skip)
        self.wait_sent(touched)
        return reached

    def send(self, topic: str, args: List[Any], only: Optional[callable] = None, one_by_one: bool = False,
             except_server: Optional[str] = None, skip: Optional[str] = None) -> Tuple[int, List[Any]]:
        """``publish`` without its wait: how many servers it reaches, and the connections it wrote
        to (``wait_sent`` waits until they took it all)."""
        if only is None and not one_by_one and except_server is None and skip is None:
            done = self._send_planned(topic, args)
            if done is not None:
                return done
        rt = self.rt
        check_topic(topic)
        link = rt.link
        link.ready()
        if link.discovering_s() > 0:
            link.discovered()
        reached = 0
        own = rt.identity["id"]
        server = rt.server
        chosen = self._choose_members(topic, only)
        if server is not None and (only is None or only(None)):
            ran = server.deliver(topic, list(args), chosen.pop(own, []))
            reached += 1 if ran else 0
        else:
            chosen.pop(own, None)
        pool = link.pool
        targets = [s for s in pool.subscribers(topic, own) if (only is None or only(s)) and s.id != skip]
        by_id = {s.id: s for s in targets}
        for server_id in chosen:
            if server_id not in by_id and server_id != skip and server_id in pool.servers:
                by_id[server_id] = pool.servers[server_id]
        plain: Optional[bytes] = None
        sites: Dict[str, int] = {}
        touched = []
        for target in by_id.values():
            groups = chosen.get(target.id, [])
            on_site = not one_by_one and target.gateway is not None
            if on_site and target in targets:
                sites[target.gateway] = sites.get(target.gateway, 0) + 1
            if on_site and not groups:
                continue
            try:
                route = rt.links.route(target)
                if route.target is None:
                    if groups:
                        frame = encode(Kind.PUB, 0, {"topic": topic, "args": list(args), "groups": groups})
                    else:
                        plain = plain or encode_publication(topic, list(args))
                        frame = plain
                    route.connection.send_frame(frame, burst=True)
                    touched.append(route.connection)
                else:
                    body: Dict[str, Any] = {"topic": topic, "args": list(args)}
                    if groups:
                        body["groups"] = groups
                        if on_site:
                            body["groupsOnly"] = True
                    touched.append(route.publish(body))
                if not (on_site and target in targets):
                    reached += 1
            except LabcError as error:
                if isinstance(error, NoSuchFunctionError):
                    raise
                rt.debug(f"publication on {topic} not delivered to {target.describe()}: {error}")
        for gateway, count in sites.items():
            body = {"topic": topic, "args": list(args), "gateway": gateway}
            if except_server is not None:
                body["except"] = except_server
            try:
                link.ready().send(Kind.PUB, body)
                touched.append(link.connection)
                reached += count
            except LabcError as error:
                rt.debug(f"publication on {topic} not passed to the other sites: {error}")
        return reached, touched

    def _send_planned(self, topic: str, args: Any) -> Optional[Tuple[int, List[Any]]]:
        """The common publication, as ``send`` makes it, in fewer steps: this process serves
        nothing, no queue group and no other site subscribes to ``topic``, and every subscriber's
        own port is open from here. None when it is not that case (``send`` goes the long way)."""
        rt = self.rt
        link = rt.link
        try:
            plan = self._plans.get(topic)
        except TypeError:
            plan = None  # not a string: check_topic (in _make_plan) says so
        router = link.connection
        # plan_now's checks, here without its call: every publication makes them.
        if (plan is None or plan.generation != link.pool.generation or plan.changes != rt.links.changes
                or router is None or router.closed or rt.server is not None):
            plan = self._make_plan(topic)
            if plan is None:
                return None
        connections = plan.connections
        if connections is None:
            return None
        if not connections:
            return 0, connections
        frame = plan.head.frame(args, plan.max_frame)
        if frame is None:
            return None  # the long way encodes it, or says why it cannot
        for connection in connections:
            if connection.closed:
                return None  # the long way dials again, as route does
        if len(connections) == 1:
            try:
                connections[0].send_frame(frame, True)
            except LabcError as error:
                rt.debug(f"publication on {topic} not delivered to {plan.labels[0]}: {error}")
                return 0, []
            return 1, connections
        touched = []
        for connection, label in zip(connections, plan.labels):
            try:
                connection.send_frame(frame, True)
                touched.append(connection)
            except LabcError as error:
                rt.debug(f"publication on {topic} not delivered to {label}: {error}")
        return len(touched), touched

    def plan_now(self, topic: str) -> Optional[_Plan]:
        """The plan kept for ``topic`` while it holds: None when none is, or when what it was
        made from changed (the pool, our connections, the router link, this process serving)."""
        rt = self.rt
        link = rt.link
        plan = self._plans.get(topic)
        router = link.connection
        if (plan is None or plan.generation != link.pool.generation or plan.changes != rt.links.changes
                or router is None or router.closed or rt.server is not None):
            return None
        return plan

    def _make_plan(self, topic: str) -> Optional[_Plan]:
        """How publications on ``topic`` go while the pool and our connections are the same (kept
        per topic); None when this one goes the long way and nothing is to keep."""
        rt = self.rt
        link = rt.link
        if rt.server is not None:
            return None
        check_topic(topic)
        link.ready()
        if link.discovering_s() > 0:
            link.discovered()
        pool = link.pool
        # Read before looking: a change meanwhile makes the plan stale at once.
        generation, changes = pool.generation, rt.links.changes
        subscribers = pool.subscribers(topic, rt.identity["id"])
        plan = _Plan(generation, changes, PublicationHead(topic))
        if not pool.group_members(topic) and all(s.gateway is None for s in subscribers):
            connections = []
            try:
                for target in subscribers:
                    route = rt.links.route(target)
                    if route.target is not None:
                        break  # through the routers: the long way words it
                    connections.append(route.connection)
                else:
                    plan.connections = connections
                    plan.max_frame = min((c.max_frame for c in connections), default=MAX_FRAME)
                    plan.labels = [target.describe() for target in subscribers]
            except LabcError:
                return None  # the long way says what went wrong as it always did
        if len(self._plans) > 10000:
            self._plans.clear()
        self._plans[topic] = plan
        return plan

    @staticmethod
    def wait_sent(touched: List[Any]) -> None:
        # Resolved means it has left the process: what the sockets did not take yet, and the
        # backpressure of a subscriber that reads slower than we publish, is waited for here.
        for connection in touched:
            if connection is not None and connection.queued:
                connection.flush(below=0 if connection.queued <= connection.unsent_limit else connection.unsent_limit // 2)

    def publish_to(self, topic: str, args: List[Any], host: str, port: Optional[int] = None) -> int:
        rt = self.rt
        check_topic(topic)
        rt.link.sync()
        host_id = rt.calls.host_id_of(host)

        def is_target(server: Optional[PoolServer]) -> bool:
            if server is None:  # this process
                return rt.link.host_id == host_id and (port is None or (rt.server is not None and rt.server.port == port))
            return server.host_id == host_id and (port is None or server.port == port)

        return self.publish(topic, args, only=is_target, one_by_one=True)

    def reqpub(self, topic: str, args: List[Any], timeout: Optional[float] = None) -> Any:
        rt = self.rt
        check_topic(topic)
        rt.link.discovered()
        timeout = float(rt.config["call.timeout"]) if timeout is None else timeout
        if rt.server is not None and rt.server.subscribes(topic):
            # This process answers (its first subscriber runs as the function); the others,
            # not this process again, are notified.
            answer = rt.calls.call_here_reqpub(topic, list(args), timeout)
            self.publish(topic, args, only=lambda server: server is not None)
            return answer
        others = rt.link.pool.subscribers(topic, rt.identity["id"])
        answering = nearest(others, rt.link.host_id)
        if answering is None:
            raise NoSuchFunctionError(f'no function "{REQPUB} {topic}" in {rt.config["call.scope"]} scope (no subscriber of "{topic}")',
                                      data={"function": f"{REQPUB} {topic}", "scope": rt.config["call.scope"]})
        except_server = answering.id if answering.gateway is not None else None
        pending = rt.background(rt.calls.send, answering, REQPUB, [topic, *args], timeout)
        self.publish(topic, args, skip=answering.id, except_server=except_server)
        return pending.result()


def nearest(servers: List[PoolServer], host_id: str) -> Optional[PoolServer]:
    local = [s for s in servers if s.host_id == host_id]
    lan = local or [s for s in servers if s.gateway is None]
    choices = lan or servers
    return random.choice(choices) if choices else None

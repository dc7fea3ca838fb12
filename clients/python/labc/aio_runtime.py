"""The asyncio face of one Runtime (``AioRuntime``): calls, publications and the network's hosts
awaited instead of blocking, sent from the event loop's thread once connected; streams are
aio_stream.py's, serving aio_serving.py's. aio.py has the module's functions, for the process's
own Runtime."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, List, Optional

from .aio_inbox import Expired, expire, inbox_of, settle
from .aio_link import AioWaiter, LoopLink, link_of
from .aio_serving import serve_on_loop
from .aio_stream import AsyncStream
from .connection import Connection
from .errors import CallTimeout, NoSuchFunctionError
from .frames import HEADER, Kind, RequestHead, encode
from .pool import Perspective, PoolServer
from .publications import REQPUB, nearest
from .runtime import Runtime
from .topics import check_topic, pattern_matches
from .waiter import Waiter


def _connected(connection: Optional[Connection]) -> bool:
    return connection is not None and not connection.closed


class AioRuntime:
    """The asyncio face of one Runtime (the module's functions use the process's own)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    # --- helpers ------------------------------------------------------------------------------

    @staticmethod
    async def _blocking(fn: Callable, *args: Any, **kw: Any) -> Any:
        """Runs what may block (a first connect, a dial) in the loop's executor."""
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kw))

    def _linked(self) -> bool:
        """Whether the router link is up and has nothing to wait for (a router finding its hosts)."""
        link = self.rt.link
        return _connected(link.connection) and link.discovering_s() <= 0

    async def _await_answer(self, connection_or_route: Any, kind: int, body: dict, function: str, target: str, timeout: float) -> Any:
        """Sends a request and awaits its answer; a timeout or a cancelled task cancels it there."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        put = inbox_of(loop).put
        waiter = Waiter(function, target, on_done=lambda done: put(settle, (future, done)))
        if isinstance(connection_or_route, Connection):
            connection = connection_or_route
            id = connection.request(kind, body, waiter)

            def give_up() -> None:
                connection.forget(id)
        else:
            route = connection_or_route
            id = route.request(body, waiter)

            def give_up() -> None:
                route.cancel(id)
        timer = loop.call_later(timeout, expire, future)
        try:
            return await future
        except Expired:
            give_up()
            ms = int(timeout * 1000)
            raise CallTimeout(f'call to "{function}" on {target} timed out after {ms} ms',
                              data={"function": function, "timeoutMs": ms, "target": target}) from None
        except asyncio.CancelledError:
            give_up()  # the server is told; the function's context says it was cancelled
            raise
        finally:
            timer.cancel()

    def _perspective_now(self, host: Optional[str]) -> Optional[Perspective]:
        """Calls.perspective without a wait: None when ``host`` is not known yet."""
        rt, link = self.rt, self.rt.link
        own_server = rt.identity["id"] if rt.server is not None else None
        realm = rt.config["network.realm"]
        if host is None:
            return Perspective(link.host_id, own_server, realm=realm)
        known = link.pool.hosts()
        known[link.host_id] = link.host
        for host_id, name in known.items():
            if host in (host_id, name):
                return Perspective(host_id, None, link.host_id, own_server, named=True, realm=realm)
        return None

    async def _resolve(self, name: str, scope: str, host: Optional[str], state: Optional[str]) -> PoolServer:
        if _connected(self.rt.link.connection):
            at = self._perspective_now(host)
            if at is not None:
                target = self.rt.link.pool.resolve(name, scope, at, state)
                if target is not None:
                    return target
        # Not connected yet, or not in the replica (a server that registered a moment ago):
        # Calls.resolve connects, syncs with the router and says what is missing.
        return await self._blocking(self.rt.calls.resolve, name, scope, host, state)

    async def _route(self, target: PoolServer) -> Any:
        return self.rt.links.ready_route(target) or await self._blocking(self.rt.links.route, target)

    async def _send(self, target: PoolServer, name: str, args: List[Any], timeout: float) -> Any:
        rt = self.rt
        if rt.server is not None and target.id == rt.identity["id"]:
            return await self._blocking(rt.calls.call_here, name, list(args), timeout)
        route = await self._route(target)
        body = {"fn": name, "args": list(args), "timeoutMs": int(timeout * 1000)}
        if route.target is None:  # a connection of our own: this loop reads the answer itself
            link = link_of(asyncio.get_running_loop(), route.connection)
            if link is not None:
                return await self._exchange(link, name, target.describe(), timeout, body=body)
        return await self._await_answer(route, Kind.REQ, body, name, target.describe(), timeout)

    # --- calling ------------------------------------------------------------------------------

    async def call(self, name: str, *args: Any) -> Any:
        """``call_with`` without options, in fewer steps in the common case (calls.py's
        ``call_plain``): sent on the plan kept for ``name``, answered on this loop (aio_link.py)."""
        rt = self.rt
        rt._open()
        calls = rt.calls
        plan = calls.plan_now(name)
        if plan is None and calls.may_plan():
            plan = await self._blocking(calls.make_plan, name)  # it may dial the server
        if plan is not None and plan.route is not None:
            connection = plan.route.connection
            head = plan.head
            args_json = head.args_json(args)
            if args_json is not None and HEADER + len(head.head) + len(args_json) + len(head.tail) <= connection.max_frame:
                link = link_of(asyncio.get_running_loop(), connection)
                if link is not None:
                    return await self._exchange(link, name, plan.label, plan.timeout, head, args_json)
        return await self._call_with(name, args, None, None, None, None)

    @staticmethod
    async def _exchange(link: LoopLink, name: str, label: str, timeout: float, head: Optional[RequestHead] = None,
                        args_json: bytes = b"", body: Optional[dict] = None) -> Any:
        """Sends a call on ``link`` (``head`` around ``args_json``, or ``body``) and awaits its
        answer; a timeout or a cancelled task cancels it on the server."""
        loop = link.loop
        connection = link.connection
        future = loop.create_future()
        waiter = AioWaiter(future, link, name, label)
        id = connection._take_id(waiter)
        if head is not None:
            frame = head.frame(id, args_json)
        else:
            try:
                frame = encode(Kind.REQ, id, body, 0, connection.max_frame)
            except BaseException:
                connection.forget(id)
                raise
        link.claim()
        link.write(frame)
        timer = link.deadlines.add(loop, future, timeout)
        try:
            return await future
        except Expired:
            waiter.given_up()
            link.cancel(id)
            ms = int(timeout * 1000)
            raise CallTimeout(f'call to "{name}" on {label} timed out after {ms} ms',
                              data={"function": name, "timeoutMs": ms, "target": label}) from None
        except asyncio.CancelledError:
            waiter.given_up()
            link.cancel(id)  # the server is told; the function's context says it was cancelled
            raise
        finally:
            if timer is not None:
                timer.cancel()

    async def call_with(self, name: str, args: Any = (), *, timeout: Optional[float] = None, scope: Optional[str] = None,
                        host: Optional[str] = None, state: Optional[str] = None) -> Any:
        if timeout is None and scope is None and host is None and state is None and type(args) in (list, tuple):
            return await self.call(name, *args)
        return await self._call_with(name, args, timeout, scope, host, state)

    async def _call_with(self, name: str, args: Any, timeout: Optional[float], scope: Optional[str],
                         host: Optional[str], state: Optional[str]) -> Any:
        rt = self.rt
        rt._open()
        timeout = float(rt.config["call.timeout"]) if timeout is None else float(timeout)
        scope = scope or rt.config["call.scope"]
        if host is None and state is None and rt.server is not None and name in rt.server.functions:
            # A function of this very process runs in a worker thread (an async def one on the
            # loop labc serves on), never in the loop's own thread.
            return await self._blocking(rt.calls.call_here, name, list(args), timeout)
        if scope == "server":
            raise NoSuchFunctionError(f'no function "{name}" in server scope (not in this process)', data={"function": name, "scope": scope})
        target = await self._resolve(name, scope, host, state)
        return await self._send(target, name, list(args), timeout)

    def stream(self, name: str, *args: Any, window: int = 64, timeout: Optional[float] = None, host: Optional[str] = None) -> "AsyncStream":
        self.rt._open()
        return AsyncStream(self, name, list(args), window, timeout, host)

    # --- publications -------------------------------------------------------------------------

    def _loop_may_publish(self, topic: str) -> bool:
        """Whether a publication can go from the loop's thread: linked, no subscriber of this
        process runs (it would run right here), every subscriber's route open."""
        rt = self.rt
        if not self._linked():
            return False
        server = rt.server
        if server is not None and any(pattern_matches(h.pattern, topic) for h in server.handlers):
            return False
        pool, own = rt.link.pool, rt.identity["id"]
        targets = list(pool.subscribers(topic, own))
        for members in pool.group_members(topic).values():
            targets.extend(members)
        return all(target.id == own or rt.links.ready_route(target) is not None for target in targets)

    async def _publish(self, topic: str, args: List[Any], skip: Optional[str] = None, except_server: Optional[str] = None) -> int:
        publications = self.rt.publications
        plan = publications.plan_now(topic) if skip is None and except_server is None else None
        # A plan that holds, its connections open, sends without blocking: no need to look again.
        planned = plan is not None and plan.connections is not None and not any(c.closed for c in plan.connections)
        if not planned and not self._loop_may_publish(topic):
            return await self._blocking(publications.publish, topic, args, skip=skip, except_server=except_server)
        reached, touched = publications.send(topic, args, skip=skip, except_server=except_server)
        if any(connection is not None and connection.queued for connection in touched):
            # A subscriber that reads slower than we publish: its bytes leave in their time.
            await self._blocking(publications.wait_sent, touched)
        return reached

    async def publish(self, topic: str, *args: Any) -> int:
        self.rt._open()
        check_topic(topic)
        return await self._publish(topic, list(args))

    async def reqpub(self, topic: str, *args: Any, timeout: Optional[float] = None) -> Any:
        rt = self.rt
        rt._open()
        check_topic(topic)
        if not self._linked() or (rt.server is not None and rt.server.subscribes(topic)):
            return await self._blocking(rt.reqpub, topic, *args, timeout=timeout)
        timeout = float(rt.config["call.timeout"]) if timeout is None else float(timeout)
        answering = nearest(rt.link.pool.subscribers(topic, rt.identity["id"]), rt.link.host_id)
        if answering is None:
            scope = rt.config["call.scope"]
            raise NoSuchFunctionError(f'no function "{REQPUB} {topic}" in {scope} scope (no subscriber of "{topic}")',
                                      data={"function": f"{REQPUB} {topic}", "scope": scope})
        except_server = answering.id if answering.gateway is not None else None
        answer = asyncio.ensure_future(self._send(answering, REQPUB, [topic, *args], timeout))
        try:
            await self._publish(topic, list(args), skip=answering.id, except_server=except_server)
        except BaseException:
            answer.cancel()
            raise
        return await answer

    # --- the network --------------------------------------------------------------------------

    async def hosts(self) -> List[dict]:
        rt = self.rt
        rt._open()
        if not self._linked():
            return await self._blocking(rt.hosts)
        link = rt.link
        return await self._await_answer(link.connection, Kind.REQ, {"fn": "labc.hosts", "args": []}, "labc.hosts", link.label, link.timeout())

    # --- serving ------------------------------------------------------------------------------

    async def serve(self, *instances: Any, exclusive: bool = False) -> None:
        """Serves what was registered and each instance's decorated methods until the task is
        cancelled (or SIGTERM, or ``Runtime.stop()``), then stops without losing a call and
        returns. ``async def`` functions run on this event loop; others on labc's threads."""
        await serve_on_loop(self.rt, *instances, exclusive=exclusive)

    async def close(self) -> None:
        await self._blocking(self.rt.close)


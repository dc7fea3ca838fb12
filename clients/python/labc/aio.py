"""labc from asyncio: the same calls, streams and publications, awaited instead of blocking.

    import labc.aio

    print(await labc.aio.call("echo", "hi"))          # a Jupyter cell, or any coroutine
    async for line in labc.aio.stream("tail", "log"):  # break (or aclose()) cancels the producer
        ...
    await labc.aio.serve()                            # async def functions run on this loop

Nothing here blocks the event loop. A request is written to its socket at once (what the socket
does not take is queued and written by labc's I/O thread), and its answer resolves a future from
that thread through ``loop.call_soon_threadsafe``. What may block, connecting to the host's router
the first time, dialing a server for the first time, waiting for a router that is still finding
its hosts, runs in the loop's executor, and only then: once connected, a call does not leave the
event loop's thread. A cancelled task cancels its call on the server, as Ctrl-C does a blocking one.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
import threading
import weakref
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Tuple

from .connection import Connection
from .errors import CallTimeout, NoSuchFunctionError
from .frames import Kind
from .pool import Perspective, PoolServer
from .publications import REQPUB, nearest
from .runtime import Runtime
from .streams import END, Stream, StreamWaiter
from .topics import check_topic, pattern_matches
from .waiter import Waiter

__all__ = ["call", "call_with", "stream", "publish", "reqpub", "hosts", "serve", "close", "AsyncStream", "AioRuntime"]


class _Inbox:
    """What labc's I/O thread hands one event loop: one wake-up for a batch of answers, not one
    per answer (1000 calls answered in one read cost one ``call_soon_threadsafe``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._items: Deque[Tuple[Callable[[Any], None], Any]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def put(self, fn: Callable[[Any], None], arg: Any) -> None:
        with self._lock:
            self._items.append((fn, arg))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, deque()
            self._scheduled = False
        for fn, arg in items:
            fn(arg)


_inboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox]" = weakref.WeakKeyDictionary()
_kept: dict = {}  # loops that cannot be weakly referred to, by id (a few at most in a process)
_inboxes_lock = threading.Lock()


def _inbox(loop: asyncio.AbstractEventLoop) -> _Inbox:
    try:
        inbox = _inboxes.get(loop)
    except TypeError:
        inbox = _kept.get(id(loop))
    if inbox is None:
        with _inboxes_lock:
            inbox = _Inbox(loop)
            try:
                inbox = _inboxes.setdefault(loop, inbox)
            except TypeError:
                inbox = _kept.setdefault(id(loop), inbox)
    return inbox


def _settle(pair: Tuple[asyncio.Future, Waiter]) -> None:
    future, waiter = pair
    if future.done():  # cancelled, or timed out, before the answer came
        return
    if waiter.error is not None:
        future.set_exception(waiter.error)
    else:
        future.set_result(waiter.value)


class _Expired(Exception):
    pass


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(_Expired())


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
        put = _inbox(loop).put
        waiter = Waiter(function, target, on_done=lambda done: put(_settle, (future, done)))
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
        timer = loop.call_later(timeout, _expire, future)
        try:
            return await future
        except _Expired:
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
        return await self._await_answer(route, Kind.REQ, body, name, target.describe(), timeout)

    # --- calling ------------------------------------------------------------------------------

    async def call(self, name: str, *args: Any) -> Any:
        return await self.call_with(name, args)

    async def call_with(self, name: str, args: Any = (), *, timeout: Optional[float] = None, scope: Optional[str] = None,
                        host: Optional[str] = None, state: Optional[str] = None) -> Any:
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
        if not self._loop_may_publish(topic):
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
        rt = self.rt
        rt._open()
        loop = asyncio.get_running_loop()
        rt.use_event_loop(loop)
        await self._blocking(rt.serve, *instances, block=False, exclusive=exclusive)
        stopped = loop.run_in_executor(None, rt._stopped.wait)
        # SIGTERM stops serving; so does Ctrl-C, which asyncio.run() turns into cancelling its
        # task from Python 3.11 (before, it raises KeyboardInterrupt out of the loop: taken here).
        taken = []
        if threading.current_thread() is threading.main_thread():
            signals = [signal.SIGTERM]
            if sys.version_info < (3, 11) and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                signals.append(signal.SIGINT)
            for number in signals:
                try:
                    loop.add_signal_handler(number, rt.stop)
                    taken.append(number)
                except (NotImplementedError, RuntimeError, ValueError):  # Windows, or a loop of another thread
                    pass
        cancelled = False
        try:
            await stopped
        except asyncio.CancelledError:
            cancelled = True
        finally:
            for number in taken:
                loop.remove_signal_handler(number)
            # Withdraw, tell callers, answer what runs: the loop goes on meanwhile, so that
            # async functions still running on it finish.
            await asyncio.shield(loop.run_in_executor(None, rt.close))
        if cancelled:
            # Cancelling is how serving is asked to stop, not a failure: serve returns (and
            # asyncio.run() after Ctrl-C ends cleanly). The task is no longer being cancelled.
            uncancel = getattr(asyncio.current_task(), "uncancel", None)  # Python 3.11 and newer
            if uncancel is not None:
                uncancel()

    async def close(self) -> None:
        await self._blocking(self.rt.close)


class AsyncStream:
    """``async for item in labc.aio.stream(name, ...)``: the items as they come, with the
    protocol's credit as the blocking Stream has it (a slow reader slows the producer). Leaving
    the loop (``break``), ``aclose()``, an ``async with`` block's end or a cancelled task
    cancels the producer (its ``finally`` blocks run)."""

    def __init__(self, face: AioRuntime, name: str, args: List[Any], window: int, timeout: Optional[float], host: Optional[str]) -> None:
        rt = face.rt
        if not isinstance(window, int) or isinstance(window, bool) or window < 1 or window > 2 ** 31:
            from .errors import BadArgumentsError

            raise BadArgumentsError(f"stream window must be a whole number from 1, not {window!r}")
        self._face = face
        self.function = name
        self._args = args
        self._window = window
        self._timeout = float(rt.config["call.timeout"]) if timeout is None else float(timeout)
        self._host = host
        self._stream: Optional[Stream] = None
        self._ended = False
        #: Set (on the loop's thread) while a reader waits; the I/O thread wakes it only then.
        self._waiting = False
        self._wake: Optional[asyncio.Future] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def __aiter__(self) -> "AsyncStream":
        return self

    async def __aenter__(self) -> "AsyncStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def _open(self) -> Stream:
        face, rt = self._face, self._face.rt
        scope = rt.config["call.scope"]
        target = await face._resolve(self.function, scope, self._host, None)
        route = await face._route(target)
        self._loop = asyncio.get_running_loop()
        waiter = StreamWaiter(self.function, target.describe())
        # A weak reference: the waiter is held by the connection until the stream ends, and
        # must not keep this object alive, or a reader that leaves would never cancel it.
        waiter.on_item = functools.partial(_item_came, weakref.ref(self), _inbox(self._loop).put)
        id = route.request({"fn": self.function, "args": self._args, "timeoutMs": int(self._timeout * 1000), "credit": self._window}, waiter)
        return Stream(self.function, waiter, route, id, self._window, self._timeout)

    async def __anext__(self) -> Any:
        if self._ended:
            raise StopAsyncIteration
        if self._stream is None:
            self._stream = await self._open()
        stream = self._stream
        while True:
            self._waiting = True
            try:
                got = stream.poll()
            except BaseException:
                self._waiting, self._ended = False, True
                raise
            if got is not None:
                self._waiting = False
                if got[0] is END:
                    self._ended = True
                    raise StopAsyncIteration
                return got[0]
            loop = self._loop
            self._wake = loop.create_future()
            # Until the first item the call's timeout runs (as for a blocking stream).
            timer = None if stream._started else loop.call_later(self._timeout, _expire, self._wake)
            try:
                await self._wake
            except _Expired:
                self._ended = True
                stream.close()
                ms = int(self._timeout * 1000)
                raise CallTimeout(f'call to "{self.function}" on {stream._waiter.target} timed out after {ms} ms',
                                  data={"function": self.function, "timeoutMs": ms}) from None
            except asyncio.CancelledError:
                self._ended = True
                stream.close()
                raise
            finally:
                self._waiting = False
                self._wake = None
                if timer is not None:
                    timer.cancel()

    def _woken(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Stops reading: the producer is cancelled."""
        self._ended = True
        if self._stream is not None:
            self._stream.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _item_came(ref: "weakref.ref[AsyncStream]", put: Callable, *_: Any) -> None:
    """On labc's I/O thread: an item (or the end) came; wake the reader if it waits."""
    stream = ref()
    if stream is not None and stream._waiting:
        put(_wake_reader, ref)


def _wake_reader(ref: "weakref.ref[AsyncStream]") -> None:
    stream = ref()
    if stream is not None:
        stream._woken()


# --- the process's labc, as the blocking functions of the package use it ---------------------


def _face() -> AioRuntime:
    import labc

    return AioRuntime(labc.runtime())


async def call(name: str, *args: Any) -> Any:
    """Calls ``name`` on the nearest server that offers it: ``await labc.aio.call("echo", "hi")``."""
    return await _face().call_with(name, args)


async def call_with(name: str, args: Any = (), *, timeout: Optional[float] = None, scope: Optional[str] = None,
                    host: Optional[str] = None, state: Optional[str] = None) -> Any:
    """``call`` with options, as ``labc.call_with`` takes them (timeout in seconds)."""
    return await _face().call_with(name, args, timeout=timeout, scope=scope, host=host, state=state)


def stream(name: str, *args: Any, window: int = 64, timeout: Optional[float] = None, host: Optional[str] = None) -> AsyncStream:
    """What ``name`` yields: ``async for item in labc.aio.stream("ticks", 10)``."""
    return _face().stream(name, *args, window=window, timeout=timeout, host=host)


async def publish(topic: str, *args: Any) -> int:
    """Publishes; returns how many servers it reached, once it has left this process."""
    return await _face().publish(topic, *args)


async def reqpub(topic: str, *args: Any, timeout: Optional[float] = None) -> Any:
    """Publishes, and returns the answer of the nearest subscriber (the others are notified)."""
    return await _face().reqpub(topic, *args, timeout=timeout)


async def hosts() -> List[dict]:
    """The hosts of the network, as ``labc hosts --json`` lists them."""
    return await _face().hosts()


async def serve(*instances: Any, exclusive: bool = False) -> None:
    """Serves until the task is cancelled (or SIGTERM), then stops without losing a call and
    returns; ``async def`` functions run on the caller's event loop."""
    return await _face().serve(*instances, exclusive=exclusive)


async def close() -> None:
    """Stops serving, flushes what was published and closes every connection."""
    import labc

    current = labc._default
    if current is not None:
        await AioRuntime(current).close()

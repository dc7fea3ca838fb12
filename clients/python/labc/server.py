"""The server of a Python process: its own port, its functions and subscribers, run on a thread pool.

Requests arrive on connections callers open to its port and, passed on by the routers, on its
lifeline to the router (``handle``). Each call runs on a worker thread with ``labc.context()``
set; an exclusive function's calls run one at a time, in arrival order, on a thread of their
instrument's own; publications run in the order they came, on one thread, and a connection
whose publications pile up is read no further until they are done (the publisher then waits).
"""

from __future__ import annotations

import inspect
import itertools
import os
import socket
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from .connection import Connection, PartialBudget, Waiter
from .context import CallContext, caller_of, reset_current, set_current
from .dial import from_own_host, listen
from .errors import BadArgumentsError, LabcError, LimitError, NoSuchFunctionError, StreamRequiredError, exc_body
from .frames import Kind
from .in_order import InOrder
from .signature import arity, count_problem, params_of
from .stream_pump import StreamPump
from .topics import check_pattern, parse_subscription, pattern_matches, subscription_key
from .trips import peer_text, tripped

#: TLS handshakes under way at once, per address and in all (each holds a thread).
HANDSHAKES, HANDSHAKES_AT_ONCE = 16, 256
FLAG_FAR = 1
FLAG_OTHER_SITE = 2
REQPUB = "labc.reqpub"
#: Publications waiting on one connection past which it is read no further, and below which again
#: (also past limits.unsent bytes of them, and below a quarter of that).
PAUSE_AT, RESUME_AT = 2000, 200


class Local:
    __slots__ = ("fn", "entry", "serial", "fewest", "most")

    def __init__(self, fn: Callable, entry: Dict[str, Any], serial: Optional[ThreadPoolExecutor]) -> None:
        self.fn, self.entry, self.serial = fn, entry, serial
        self.fewest, self.most = arity(entry.get("params"))


class Handler:
    __slots__ = ("pattern", "fn", "group", "label", "with_topic")

    def __init__(self, pattern: str, fn: Callable, group: Optional[str], label: str) -> None:
        self.pattern, self.fn, self.group, self.label = pattern, fn, group, label
        # A subscriber whose first parameter is named `topic` gets the topic first.
        try:
            first = next(iter(inspect.signature(fn).parameters), None)
        except (TypeError, ValueError):
            first = None
        self.with_topic = first == "topic"


class Turns:
    """Runs calls on the pool's threads taking turns, first between the addresses callers come
    from, then between the connections of an address: callers filling the pool with slow calls
    (limits.in_flight on each of many connections) make another's next call wait for a thread
    to free up and its address's turn, not for all their calls. The lifeline (routed calls) is
    one connection of the router's address."""

    def __init__(self, executor: ThreadPoolExecutor, threads: int) -> None:
        self.executor, self.threads = executor, threads
        self._lock = threading.Lock()
        #: Per address, the connections with calls waiting (in turn order), each with its calls.
        self._waiting: Dict[str, Dict[int, Deque[Tuple[Callable, tuple]]]] = {}
        self._addresses: Deque[str] = deque()  # those with calls waiting, in turn order
        self._busy = 0

    def submit(self, address: str, key: int, fn: Callable, *args: Any) -> None:
        with self._lock:
            connections = self._waiting.get(address)
            if connections is None:
                connections = self._waiting[address] = {}
                self._addresses.append(address)
            calls = connections.get(key)
            if calls is None:
                calls = connections[key] = deque()
            calls.append((fn, args))
            if self._busy >= self.threads:
                return
            self._busy += 1
        self.executor.submit(self._work)

    def _next(self) -> Optional[Tuple[Callable, tuple]]:
        if not self._addresses:
            return None
        address = self._addresses.popleft()
        connections = self._waiting[address]
        key = next(iter(connections))
        calls = connections.pop(key)
        call = calls.popleft()
        if calls:
            connections[key] = calls  # to the end of its address's line
        if connections:
            self._addresses.append(address)
        else:
            del self._waiting[address]
        return call

    def _work(self) -> None:
        while True:
            with self._lock:
                call = self._next()
                if call is None:
                    self._busy -= 1
                    return
            fn, args = call
            try:
                fn(*args)
            except Exception:  # a call's own errors are answered in fn; this is ours
                import traceback

                traceback.print_exc()
            except BaseException:  # SystemExit in a served function: answered in fn; the thread serves on
                pass


def offered(entry: Dict[str, Any]) -> bool:
    """What other processes may call: not scope ``server``, not visibility ``secret``."""
    return entry["scope"] != "server" and entry["visibility"] != "secret"


def exported(entry: Dict[str, Any]) -> bool:
    """What callers on other hosts may call."""
    return entry["scope"] == "network" and entry["visibility"] in ("public", "private")


class Server:
    def __init__(self, runtime: Any, threads: int) -> None:
        self.rt = runtime
        self.config = runtime.config
        self.loop = runtime.loop
        self.id: str = runtime.identity["id"]
        self.functions: Dict[str, Local] = {}
        self.handlers: List[Handler] = []
        self._group_turns: Dict[str, int] = {}
        self.executor = ThreadPoolExecutor(max(1, threads), thread_name_prefix="labc call")
        self._turns = Turns(self.executor, max(1, threads))
        self._serial: Dict[int, ThreadPoolExecutor] = {}
        self._publications = InOrder("labc publications")
        #: Per connection, its publications waiting for their subscribers: how many bytes of it had
        #: been read when each came (their span is what they hold, give or take a read).
        self._waiting_pubs: Dict[int, Deque[int]] = {}
        self._pause_bytes = int(self.config["limits.unsent"])
        #: The calls of each connection not answered yet, by request id (a negative one for an id of 0).
        self._running: Dict[int, Dict[int, Any]] = {}
        self._unanswered = itertools.count(1)
        #: Per connection, the bytes of the requests of its calls not answered yet: by slot, and their sum.
        self._call_bytes: Dict[int, Dict[int, int]] = {}
        self._call_total: Counter = Counter()
        self._lock = threading.Lock()
        self.connections: Dict[int, Connection] = {}
        #: Connections that have not said hello yet, by address, oldest first: past
        #: limits.connections_per_address the oldest is closed (as the TypeScript side does), so a
        #: flood of idle connections is cut and callers that say hello are never shut out.
        self._unproved: Dict[str, Dict[int, Connection]] = {}
        #: TLS handshakes under way, by address (each on a thread of its own): bounded too.
        self._handshaking: Dict[str, Dict[int, socket.socket]] = {}
        self._partial = PartialBudget(int(self.config["limits.partial_frames"]))
        self.leaving = False
        self._told: List[Waiter] = []
        self.listener: Optional[socket.socket] = listen(self.config["server.address"])
        self.port: int = self.listener.getsockname()[1]
        self.listener.setblocking(False)
        self.loop.call_soon(lambda: self.loop.watch(self.listener, self._accept, None))
        self.loop.every_tick(self._check_timeouts)

    # --- what it offers ------------------------------------------------------------------------

    def add_function(self, name: str, fn: Callable, options: Dict[str, Any], serial_key: Any = None) -> Dict[str, Any]:
        if name in self.functions:
            raise BadArgumentsError(f'function "{name}" is already registered in this server')
        entry: Dict[str, Any] = {"name": name, "scope": options.get("scope", "network"), "visibility": options.get("visibility", "public")}
        if options.get("idempotent"):
            entry["idempotent"] = True
        params = params_of(fn)
        if params is not None:
            entry["params"] = params
        serial = None
        if serial_key is not None:
            key = id(serial_key)
            serial = self._serial.get(key)
            if serial is None:
                serial = self._serial[key] = ThreadPoolExecutor(1, thread_name_prefix=f"labc {name} one at a time")
        self.functions[name] = Local(fn, entry, serial)
        return entry

    def add_handler(self, pattern: str, fn: Callable, group: Optional[str], label: str) -> Optional[str]:
        """Adds a subscriber; returns the subscription key when it is new to this server."""
        check_pattern(pattern)
        key = subscription_key(pattern, group)
        new = all(subscription_key(h.pattern, h.group) != key for h in self.handlers)
        self.handlers.append(Handler(pattern, fn, group, label))
        return key if new else None

    def offer(self) -> Dict[str, Any]:
        keys: List[str] = []
        for handler in self.handlers:
            key = subscription_key(handler.pattern, handler.group)
            if key not in keys:
                keys.append(key)
        return {"functions": [local.entry for local in self.functions.values() if offered(local.entry)], "topics": keys}

    # --- connections --------------------------------------------------------------------------

    def _accept(self) -> None:
        while self.listener is not None:
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, OSError):
                return
            host = address[0]
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.config["network.secret"]:
                if not self._handshake_room(host, address[1]):
                    sock.close()
                    continue
                self._handshaking.setdefault(host, {})[id(sock)] = sock
                threading.Thread(target=self._secure, args=(sock, host), daemon=True, name="labc tls").start()
            else:
                self._adopt(sock, host)

    def _handshake_room(self, host: str, port: int) -> bool:
        """Room for one more handshake thread: at most HANDSHAKES per address (the oldest is cut)
        and HANDSHAKES_AT_ONCE in all (the new one is refused)."""
        if sum(len(shaking) for shaking in self._handshaking.values()) >= HANDSHAKES_AT_ONCE:
            tripped("connections_per_address", f"{host}:{port}", f"{HANDSHAKES_AT_ONCE} TLS handshakes under way; closed the next at once")
            return False
        shaking = self._handshaking.get(host, {})
        if len(shaking) >= HANDSHAKES:
            oldest = next(iter(shaking.values()))
            tripped("connections_per_address", f"{host}:{port}", f"{len(shaking)} TLS handshakes under way from it; the oldest was cut")
            shaking.pop(id(oldest), None)
            try:
                oldest.shutdown(socket.SHUT_RDWR)  # its thread's handshake fails, and the thread ends
            except OSError:
                pass
        return True

    def _secure(self, sock: socket.socket, host: str) -> None:
        from .tls import server_side

        try:
            secured = server_side(sock, self.config["network.secret"], float(self.config["limits.hello_timeout"]))
        except (LabcError, OSError):
            sock.close()
            return
        finally:
            self.loop.call_soon(lambda: self._handshaking.get(host, {}).pop(id(sock), None))
        self.loop.call_soon(lambda: self._adopt(secured, host))

    def _adopt(self, sock: socket.socket, host: str) -> None:
        own = from_own_host(sock)
        connection = Connection(self.loop, sock, f"caller at {host}", self.handle, self.config["wire.max_frame_size"],
                                self.config["limits.queued"], self.config["limits.unsent"], self._partial)
        connection.accepted = True  # type: ignore[attr-defined]
        connection.own_host = own  # type: ignore[attr-defined]
        connection.remote_host = host  # type: ignore[attr-defined]
        waiting = self._unproved.setdefault(host, {})
        if len(waiting) >= self.config["limits.connections_per_address"]:
            oldest = next(iter(waiting.values()))
            tripped("connections_per_address", f"caller at {host}", f"{len(waiting)} connections from it have not said hello: the oldest was closed")
            waiting.pop(id(oldest), None)
            oldest.close(LabcError("closed to make room: too many connections from its address without a hello"))
        waiting[id(connection)] = connection
        self.connections[id(connection)] = connection
        connection.on_close.append(lambda closed: self._forget(closed, host))
        if self.leaving:
            self._tell(connection)

    def _proved(self, connection: Connection, host: str) -> None:
        waiting = self._unproved.get(host)
        if waiting is not None and waiting.pop(id(connection), None) is not None and not waiting:
            del self._unproved[host]

    def _forget(self, connection: Connection, host: str) -> None:
        self.connections.pop(id(connection), None)
        self._proved(connection, host)
        with self._lock:
            running = self._running.pop(id(connection), {})
            self._call_bytes.pop(id(connection), None)
            self._call_total.pop(id(connection), None)
        for call in running.values():
            call.cancel()

    def _check_timeouts(self, now: float) -> None:
        hello_s = float(self.config["limits.hello_timeout"])
        frame_s = float(self.config["limits.frame_timeout"])
        for connection in list(self.connections.values()):
            if not connection.peer and now - connection.opened_at > hello_s:
                tripped("hello_timeout", connection.remote, f"no hello within {hello_s:g} s; closed the connection ({connection.label})")
                connection.close(LimitError("no hello within limits.hello_timeout", data={"limit": "hello_timeout"}))
            elif connection.partial_since and not connection.paused and now - connection.partial_since > frame_s:
                tripped("frame_timeout", connection.remote, f"a frame still incomplete {frame_s:g} s after its first byte; closed the connection ({connection.label})")
                connection.close(LimitError("a frame did not arrive whole within limits.frame_timeout", data={"limit": "frame_timeout"}))

    # --- messages -----------------------------------------------------------------------------

    def handle(self, connection: Connection, kind: int, flags: int, id: int, body: Dict[str, Any], routed: bool = False) -> None:
        """A message for this server, from a caller's connection or (``routed``) the lifeline."""
        accepted = getattr(connection, "accepted", False)
        problem = body_problem(kind, body)
        if problem is not None:
            return self._refuse(connection, kind, id, problem)
        if accepted and not connection.peer and kind != Kind.HELLO:
            return self._refuse(connection, kind, id, "the first message on a connection must be a hello")
        if kind == Kind.REQ:
            return self._request(connection, flags, id, body, routed)
        if kind == Kind.PUB:
            return self._publication(connection, body)
        if kind == Kind.CANCEL:
            running = self._running.get(id_of(connection), {}).get(id) if id else None
            if running is not None:
                running.cancel()
            return
        if kind == Kind.CREDIT:
            running = self._running.get(id_of(connection), {}).get(id) if id else None
            if isinstance(running, StreamPump):
                running.grant(int(body["n"]))
            return
        if kind == Kind.HELLO and accepted:
            if body["v"] != PROTOCOL_VERSION:
                # As a router answers it (docs/protocol.md, Field details): the reason, then the close.
                self._answer_refusal(connection, id, {"name": "BadArgumentsError", "message": f"protocol version {js_text(body['v'])} is not {PROTOCOL_VERSION}", "code": "LABC_BAD_ARGUMENTS"})
                return self._close_refused(connection, id, "bad_message", f"protocol version {js_text(body['v'])} is not {PROTOCOL_VERSION}")
            connection.peer = body
            self._proved(connection, getattr(connection, "remote_host", ""))
            return
        if kind == Kind.DEATH and id:
            connection.send(Kind.REP, id, {"v": None})

    def _refuse(self, connection: Connection, kind: int, id: int, problem: str) -> None:
        """A message that does not fit (docs/protocol.md#refusals), answered as the TypeScript side
        answers it, byte for byte (test/vectors/frames.json, refusals): an ``exc`` when the peer
        waits for an answer and said hello, and the connection stays; a bad ``hello`` with an id is
        answered too, then closed; anything else closes the connection unanswered."""
        name = KIND_NAMES.get(kind, str(kind))
        message = f"bad {name} message: {problem}"
        answered = id != 0 and kind in ANSWERED
        if answered and (connection.peer or not getattr(connection, "accepted", False)):
            tripped("bad_message", connection.remote, message)
            self._answer_refusal(connection, id, {"name": "BadMessageError", "message": message, "code": "LABC_BAD_MESSAGE", "data": {"kind": name}})
            return
        if answered and kind == Kind.HELLO:
            self._answer_refusal(connection, id, {"name": "BadMessageError", "message": message, "code": "LABC_BAD_MESSAGE", "data": {"kind": name}})
        self._close_refused(connection, id if kind == Kind.HELLO else 0, "bad_message", message)

    def _answer_refusal(self, connection: Connection, id: int, body: Dict[str, Any]) -> None:
        try:
            connection.send(Kind.EXC, id, body)
        except LabcError:
            pass

    def _close_refused(self, connection: Connection, answered: int, limit: str, why: str) -> None:
        """Closes a connection whose peer broke the protocol; after what was answered has left
        (within 1 s) when ``answered``, so that its sender learns why."""
        tripped(limit, connection.remote, f"{why}; closed the connection ({connection.label})")
        if answered:
            connection.close_after_flush(1.0)
        else:
            connection.close(LabcError(why))

    def _request(self, connection: Connection, flags: int, id: int, body: Dict[str, Any], routed: bool) -> None:
        fn, args = body["fn"], list(body["args"])
        credit = body.get("credit")
        timeout_ms = body.get("timeoutMs")
        other_site = bool(flags & FLAG_OTHER_SITE)
        far = other_site or bool(flags & FLAG_FAR) or (not routed and not getattr(connection, "own_host", True))
        deadline = time.time() + timeout_ms / 1000 if isinstance(timeout_ms, (int, float)) and timeout_ms > 0 else None
        call = CallContext(fn, deadline, caller_of(connection.peer), far, other_site)
        with self._lock:
            mine = self._running.setdefault(id_of(connection), {})
            if id and id in mine:
                return self._refuse(connection, Kind.REQ, id, f"request id {id} is already in use")
            # Requests nobody waits for (id 0) count too: they hold a thread or a place in line.
            if len(mine) >= self.config["limits.in_flight"]:
                limit = self.config["limits.in_flight"]
                tripped("in_flight", connection.remote, f"more than {limit} requests waiting for their answers; refused the next ({connection.label})")
                return self._answer_refusal(connection, id, {"name": "LimitError", "message": f"limit in_flight: more than {limit} requests at once", "code": "LABC_LIMIT", "data": {"limit": "in_flight"}})
            slot = id or -next(self._unanswered)
            mine[slot] = call
            sizes = self._call_bytes.setdefault(id_of(connection), {})
            sizes[slot] = connection.frame_bytes
            self._call_total[id_of(connection)] += connection.frame_bytes
            over = self._call_total[id_of(connection)] > self._pause_bytes and len(sizes) > 1
        if over and not connection.paused:
            # Their arguments wait for threads: the rest waits in the caller's kernel (limits.unsent).
            connection.pause()
        local = self.functions.get(fn)
        credit = credit if isinstance(credit, int) and credit > 0 else None
        if local is not None and local.serial is not None:
            local.serial.submit(self._run, connection, id, fn, args, call, credit, slot)  # one at a time, in arrival order
        else:
            self._turns.submit(connection.remote.rsplit(":", 1)[0], id_of(connection), self._run, connection, id, fn, args, call, credit, slot)

    def _run(self, connection: Connection, id: int, fn: str, args: list, call: CallContext, credit: Optional[int], slot: int) -> None:
        if call.cancelled:  # its caller left, or gave it up, before it started: nobody waits for it
            return self._answered(connection, slot)
        token = set_current(call)
        try:
            try:
                value = self.invoke(fn, args, call, remote=True)
                if inspect.isgenerator(value) or inspect.isasyncgen(value):
                    if credit is None or id == 0:
                        raise StreamRequiredError(f'"{fn}" returns a stream: read it with labc.stream (or labc call)', data={"function": fn})
                    pump = StreamPump(value, connection, id, credit, call, self.rt)
                    with self._lock:
                        mine = self._running.get(id_of(connection))
                        if mine is not None and slot in mine:
                            mine[slot] = pump
                    self._release(connection, slot)  # a stream's credit must be read, whatever it holds
                    pump.run()
                    return
            except BaseException as error:  # a function's error is its caller's, never ours
                if id or isinstance(error, (KeyboardInterrupt, SystemExit)):
                    self._answer_error(connection, id, fn, error)
                if isinstance(error, (KeyboardInterrupt, SystemExit)):
                    raise
                return
            if id:
                try:
                    connection.send(Kind.REP, id, {"v": value})
                except BadArgumentsError as error:
                    self._answer_error(connection, id, fn, BadArgumentsError(f"{fn}: the result cannot be sent: {error}"))
                except LabcError:
                    pass  # the caller left
        finally:
            reset_current(token)
            self._answered(connection, slot)

    def _answered(self, connection: Connection, slot: int) -> None:
        with self._lock:
            mine = self._running.get(id_of(connection))
            if mine is not None:
                mine.pop(slot, None)
        self._release(connection, slot)

    def _release(self, connection: Connection, slot: int) -> None:
        """A call no longer holds its request's bytes: reading resumes under a quarter of limits.unsent."""
        with self._lock:
            sizes = self._call_bytes.get(id_of(connection))
            size = None if sizes is None else sizes.pop(slot, None)
            if size is None:
                return
            self._call_total[id_of(connection)] -= size
        self._may_resume(connection)

    def _may_resume(self, connection: Connection) -> None:
        """Resumes reading a connection paused when what it holds (calls, publications) is low again."""
        key = id_of(connection)
        with self._lock:
            pubs = self._waiting_pubs.get(key)
            under = self._call_total.get(key, 0) <= self._pause_bytes // 4 and (
                not pubs or (len(pubs) <= RESUME_AT and pubs[-1] - pubs[0] <= self._pause_bytes // 4))
        if under and connection.paused and not connection.closed:
            self.loop.call_soon(connection.resume)

    def _answer_error(self, connection: Connection, id: int, fn: str, error: BaseException) -> None:
        body = exc_body(error, self.config["errors.send_stack"])
        try:
            connection.send(Kind.EXC, id, body)
        except BadArgumentsError as problem:
            # A field of the error that cannot travel must not cost the caller its answer.
            body = {k: v for k, v in body.items() if k not in ("data", "cause")}
            body["message"] = f"{body['message']} (its fields were not sent: {problem})"
            try:
                connection.send(Kind.EXC, id, body)
            except LabcError:
                pass
        except LabcError:
            pass

    def invoke(self, fn: str, args: list, call: CallContext, remote: bool) -> Any:
        """Runs a function of this server (the reqpub's first subscriber for ``labc.reqpub``)."""
        if fn == REQPUB:
            return self._answer_publication(args)
        local = self.functions.get(fn)
        # What a caller may not see is refused as if it did not exist: nothing leaks.
        if local is None or (remote and not offered(local.entry)) or (call.from_other_host and not exported(local.entry)):
            raise NoSuchFunctionError(f'no function "{fn}" in server scope (not on server {self.id})', data={"function": fn, "scope": "server"})
        if not local.fewest <= len(args) <= local.most:
            raise BadArgumentsError(count_problem(local.entry, len(args)))
        value = local.fn(*args)
        if inspect.iscoroutine(value):
            value = self.rt.run_coroutine(value)
        return value

    def _answer_publication(self, args: list) -> Any:
        if not args or not isinstance(args[0], str):
            raise BadArgumentsError(f"{REQPUB}: the first argument is the topic")
        topic, rest = args[0], args[1:]
        matched = [h for h in self.handlers if h.group is None and pattern_matches(h.pattern, topic)]
        if not matched:
            raise NoSuchFunctionError(f'no function "{REQPUB} {topic}" in server scope (no subscriber of "{topic}" on server {self.id})')
        for handler in matched[1:]:
            self._run_handler(handler, topic, rest)
        first = matched[0]
        value = first.fn(topic, *rest) if first.with_topic else first.fn(*rest)
        return self.rt.run_coroutine(value) if inspect.iscoroutine(value) else value

    def subscribes(self, topic: str) -> bool:
        return any(h.group is None and pattern_matches(h.pattern, topic) for h in self.handlers)

    # --- publications -------------------------------------------------------------------------

    def _publication(self, connection: Connection, body: Dict[str, Any]) -> None:
        topic, args, groups = body["topic"], list(body["args"]), list(body.get("groups") or [])
        only = body.get("groupsOnly") is True
        with self._lock:
            marks = self._waiting_pubs.setdefault(id_of(connection), deque())
            marks.append(connection.bytes_in)
            over = len(marks) >= PAUSE_AT or marks[-1] - marks[0] > self._pause_bytes
        if over and not connection.paused:
            connection.pause()
        self._publications.submit(self._deliver_then, connection, topic, args, groups, only)

    def _deliver_then(self, connection: Connection, topic: str, args: list, groups: List[str], only: bool) -> None:
        try:
            self.deliver(topic, args, groups, only)
        finally:
            with self._lock:
                marks = self._waiting_pubs[id_of(connection)]
                marks.popleft()
                if not marks:
                    del self._waiting_pubs[id_of(connection)]
            self._may_resume(connection)

    def deliver(self, topic: str, args: list, groups: List[str] = (), only: bool = False) -> int:
        """Runs this server's subscribers of ``topic`` (outside groups unless ``only``), and one
        subscriber of each group in ``groups``; one that raises does not stop the others."""
        ran = 0
        if not only:
            for handler in self.handlers:
                if handler.group is None and pattern_matches(handler.pattern, topic):
                    self._run_handler(handler, topic, args)
                    ran += 1
        for group in groups:
            mine = [h for h in self.handlers if h.group == group and pattern_matches(h.pattern, topic)]
            if mine:
                turn = self._group_turns.get(group, 0)
                self._group_turns[group] = turn + 1
                self._run_handler(mine[turn % len(mine)], topic, args)
                ran += 1
        return ran

    def _run_handler(self, handler: Handler, topic: str, args: list) -> None:
        try:
            value = handler.fn(topic, *args) if handler.with_topic else handler.fn(*args)
            if inspect.iscoroutine(value):
                self.rt.run_coroutine(value)
        except Exception as error:
            # The topic and the error's words may be a peer's: escaped, one line.
            self.rt.warn(peer_text(f'subscriber {handler.label} failed on "{topic}": {type(error).__name__}: {error}', 2000))

    # --- stopping -----------------------------------------------------------------------------

    def _tell(self, connection: Connection) -> None:
        waiter = Waiter("leaving", connection.label)
        try:
            connection.request(Kind.DEATH, {"server": self.id}, waiter)
            self._told.append(waiter)
        except LabcError:
            pass

    def drain(self, timeout: float) -> None:
        """Tells every caller this server leaves, stops accepting, and waits for the calls running."""
        deadline = time.monotonic() + timeout
        self.leaving = True
        for connection in list(self.connections.values()):
            self._tell(connection)
        seen = -1
        while seen != len(self._told) and time.monotonic() < deadline:
            seen = len(self._told)
            for waiter in list(self._told):
                waiter.wait(max(0.0, deadline - time.monotonic()))
            time.sleep(0.01)  # connections waiting to be accepted are, and told
        listener, self.listener = self.listener, None
        if listener is not None:
            self.loop.call_soon(lambda: (self.loop.forget(listener), listener.close()))
        while any(self._running.values()) and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            running = [call for calls in self._running.values() for call in calls.values()]
        if running:
            self.rt.warn(f"stopping with {len(running)} call(s) unfinished after {timeout:g} s")
            for call in running:
                call.cancel()

    def close(self) -> None:
        for connection in list(self.connections.values()):
            connection.close_after_flush(1.0)
        listener, self.listener = self.listener, None
        if listener is not None:
            self.loop.call_soon(lambda: (self.loop.forget(listener), listener.close()))
        self.executor.shutdown(wait=False)
        self._publications.shutdown()
        for serial in self._serial.values():
            serial.shutdown(wait=False)


def id_of(connection: Connection) -> int:
    return id(connection)


PROTOCOL_VERSION = 1
KIND_NAMES = {value: name.lower() for name, value in vars(Kind).items() if not name.startswith("_")}
#: Kinds whose sender waits for an answer when the header id is not 0.
ANSWERED = frozenset((Kind.HELLO, Kind.REQ, Kind.ANNOUNCE, Kind.WITHDRAW, Kind.PING, Kind.DEATH))
MAX_NAME = 1024


def js_text(value: Any) -> str:
    """A value as JavaScript's template string writes it (``${v}``), for messages that quote one."""
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


# The body checks of lib/wire/validate.ts, with its words: what a server reads of a peer's body.
def _str(v: Any, path: str) -> Optional[str]:
    if type(v) is not str:
        return f"{path} must be a string"
    return f"{path} is over {MAX_NAME} characters" if len(v) > MAX_NAME else None


def _name(v: Any, path: str) -> Optional[str]:
    return _str(v, path) or (f"{path} must not be empty" if v == "" else None)


def _number(v: Any) -> bool:
    return type(v) in (int, float) and v == v and v not in (float("inf"), float("-inf"))


def _whole(v: Any, path: str) -> Optional[str]:
    return None if _number(v) and float(v).is_integer() and v >= 0 else f"{path} must be a whole number"


def _count(v: Any, path: str) -> Optional[str]:
    return None if _number(v) and float(v).is_integer() and 1 <= v <= 2 ** 31 else f"{path} must be a whole number from 1 to 2^31"


def _port(v: Any, path: str) -> Optional[str]:
    return None if _number(v) and float(v).is_integer() and 0 <= v <= 65535 else f"{path} must be a port"


def _ms(v: Any, path: str) -> Optional[str]:
    return None if type(v) in (int, float) and v >= 0 else f"{path} must be a number of milliseconds"


def _bool(v: Any, path: str) -> Optional[str]:
    return None if type(v) is bool else f"{path} must be true or false"


def _array(v: Any, path: str) -> Optional[str]:
    return None if isinstance(v, (list, tuple)) else f"{path} must be an array"


def _role(v: Any, path: str) -> Optional[str]:
    return None if v in ("server", "client", "router") and type(v) is str else f"{path} must be one of server, client, router"


def _names(v: Any, path: str) -> Optional[str]:
    if not isinstance(v, (list, tuple)):
        return f"{path} must be an array"
    for i, item in enumerate(v):
        problem = _name(item, f"{path}[{i}]")
        if problem:
            return problem
    return None


#: Per kind: (field, check, optional); an optional field may be absent or null.
SHAPES = {
    Kind.HELLO: (("v", _whole, False), ("role", _role, False), ("id", _name, False), ("pid", _whole, False), ("host", _str, False),
                 ("hostId", _str, False), ("state", _str, True), ("realm", _str, True), ("port", _port, True), ("watch", _bool, True),
                 ("nats", _bool, True)),
    Kind.REQ: (("fn", _name, False), ("args", _array, False), ("target", _name, True), ("timeoutMs", _ms, True), ("credit", _count, True),
               ("trace", _str, True)),
    Kind.CREDIT: (("n", _count, False),),
    Kind.PUB: (("topic", _name, False), ("args", _array, False), ("target", _name, True), ("groups", _names, True), ("groupsOnly", _bool, True),
               ("gateway", _name, True), ("except", _name, True)),
}


def body_problem(kind: int, body: Dict[str, Any]) -> Optional[str]:
    """What is wrong with a body of this kind, in lib/wire/validate.ts's words, or None."""
    for field, check, optional in SHAPES.get(kind, ()):
        value = body.get(field)
        if value is None:
            if optional:
                continue
            return f"{field} is missing"
        problem = check(value, field)
        if problem:
            return problem
    return None

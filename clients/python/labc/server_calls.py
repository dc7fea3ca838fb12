"""How a server runs the calls it is asked for: each in its own request slot (limits.in_flight),
its request's bytes counted (past limits.unsent the connection is read no further), on the pool's
threads taking turns (turns.py) or on an exclusive function's own thread, with
``labc.context()`` set; its value, stream or error answered. Part of Server (server.py), which
sets the state used here (``functions``, ``_running``, ``_call_bytes``, ``_call_total``,
``_turns``, ``_lock``...)."""

from __future__ import annotations

import inspect
import time
from typing import Any, Dict, Optional

from .connection import Connection
from .context import CallContext, caller_of, reset_current, set_current
from .errors import BadArgumentsError, LabcError, NoSuchFunctionError, StreamRequiredError, exc_body
from .frames import Kind
from .local_function import exported, offered
from .publications import REQPUB
from .signature import count_problem
from .stream_pump import StreamPump
from .trips import tripped

FLAG_FAR = 1
FLAG_OTHER_SITE = 2


def id_of(connection: Connection) -> int:
    return id(connection)


class ServerCalls:
    """The calls half of Server (a mixin: it has no state of its own)."""

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

"""A served generator's items sent to its caller, never more than the credit the caller granted,
and the next item taken only while the connection is not congested: a slow reader slows the
producer. A cancel, or the caller's connection closing, closes the generator (its ``finally``
runs); the end is a ``rep {done: true}``, an error of the producer an ``exc`` after its items."""

from __future__ import annotations

import inspect
import threading
from typing import Any

from .connection import Connection
from .context import CallContext
from .errors import LabcError, exc_body
from .frames import Kind


class StreamPump:
    def __init__(self, source: Any, connection: Connection, id: int, credit: int, call: CallContext, runtime: Any) -> None:
        self.source = source
        self.connection = connection
        self.id = id
        self.credit = credit
        self.call = call
        self.rt = runtime
        self._cond = threading.Condition()

    def grant(self, n: int) -> None:
        with self._cond:
            self.credit += n
            self._cond.notify()

    def cancel(self) -> None:
        self.call.cancel()
        with self._cond:
            self._cond.notify()

    def _next(self) -> Any:
        if inspect.isasyncgen(self.source):
            return self.rt.run_coroutine(self.source.__anext__())
        return next(self.source)

    def _close_source(self) -> None:
        try:
            if inspect.isasyncgen(self.source):
                self.rt.run_coroutine(self.source.aclose())
            else:
                self.source.close()
        except Exception:
            pass

    def run(self) -> None:
        connection, limit = self.connection, self.connection.unsent_limit
        try:
            while True:
                with self._cond:
                    while self.credit <= 0 and not self.call.cancelled and not connection.closed:
                        self._cond.wait(0.5)
                if self.call.cancelled or connection.closed:
                    break
                try:
                    item = self._next()
                except (StopIteration, StopAsyncIteration):
                    break
                self.credit -= 1
                connection.send(Kind.ITEM, self.id, {"v": item})
                if connection.queued > limit:
                    connection.flush(below=limit // 2)
        except LabcError as error:
            if not connection.closed:
                self._fail(error)
            return
        except Exception as error:
            self._fail(error)
            return
        finally:
            self._close_source()
        try:
            connection.send(Kind.REP, self.id, {"done": True})
        except LabcError:
            pass

    def _fail(self, error: BaseException) -> None:
        try:
            self.connection.send(Kind.EXC, self.id, exc_body(error, self.rt.config["errors.send_stack"]))
        except LabcError:
            pass

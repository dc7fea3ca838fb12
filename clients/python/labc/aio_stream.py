"""``labc.aio.stream``: a stream read with ``async for``, its items handed to the event loop as
they come (aio_inbox.py), with the credit a blocking Stream has."""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import Any, Callable, List, Optional

from .aio_inbox import Expired, expire, inbox_of
from .errors import BadArgumentsError, CallTimeout
from .streams import END, Stream, StreamWaiter


class AsyncStream:
    """``async for item in labc.aio.stream(name, ...)``: the items as they come, with the
    protocol's credit as the blocking Stream has it (a slow reader slows the producer). Leaving
    the loop (``break``), ``aclose()``, an ``async with`` block's end or a cancelled task
    cancels the producer (its ``finally`` blocks run). ``face`` is the AioRuntime that opens it
    (aio_runtime.py, which imports this module)."""

    def __init__(self, face: Any, name: str, args: List[Any], window: int, timeout: Optional[float], host: Optional[str]) -> None:
        rt = face.rt
        if not isinstance(window, int) or isinstance(window, bool) or window < 1 or window > 2 ** 31:
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
        waiter.on_item = functools.partial(_item_came, weakref.ref(self), inbox_of(self._loop).put)
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
            timer = None if stream._started else loop.call_later(self._timeout, expire, self._wake)
            try:
                await self._wake
            except Expired:
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


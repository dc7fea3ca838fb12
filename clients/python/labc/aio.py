"""labc from asyncio: the same calls, streams and publications, awaited instead of blocking.

    import labc.aio

    print(await labc.aio.call("echo", "hi"))          # a Jupyter cell, or any coroutine
    async for line in labc.aio.stream("tail", "log"):  # break (or aclose()) cancels the producer
        ...
    await labc.aio.serve()                            # async def functions run on this loop

Nothing here blocks the event loop. While a loop's calls wait on a server's connection, the loop
itself reads it and resolves their futures where it reads the answers; the calls of one loop
iteration leave in one send (what the socket does not take is queued and written by labc's I/O
thread): aio_link.py. Other answers (streams, the router's) resolve a future from labc's I/O
thread through ``loop.call_soon_threadsafe`` (aio_inbox.py). What may block, connecting to the
host's router the first time, dialing a server for the first time, waiting for a router that is
still finding its hosts, runs in the loop's executor, and only then: once connected, a call does
not leave the event loop's thread. A cancelled task cancels its call on the server, as Ctrl-C
does a blocking one.

The functions here use the process's own Runtime (``labc.runtime()``); ``AioRuntime``
(aio_runtime.py) is the face of any Runtime, ``AsyncStream`` (aio_stream.py) what ``stream``
returns.
"""

from __future__ import annotations

from typing import Any, List, Optional

from .aio_runtime import AioRuntime
from .aio_stream import AsyncStream

__all__ = ["call", "call_with", "stream", "publish", "reqpub", "hosts", "serve", "close", "AsyncStream", "AioRuntime"]


def _face() -> AioRuntime:
    import labc

    return AioRuntime(labc.runtime())


async def call(name: str, *args: Any) -> Any:
    """Calls ``name`` on the nearest server that offers it: ``await labc.aio.call("echo", "hi")``."""
    return await _face().call(name, *args)


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

"""labc for Python: call, serve, publish and stream on a labc network, from scripts and notebooks.

    import labc
    labc.call("echo", "hi")                      # any process, any host
    labc.network.power_supply.set_voltage(3.3)   # the same, by attribute

    @labc.register
    def add(a: float, b: float) -> float:
        return a + b

    @labc.subscribe("lab.temp.*")
    def on_temp(value):
        print(value)

    labc.serve()                                 # until Ctrl-C or SIGTERM

Everything blocks the calling thread only; a background thread reads the sockets. ``labc.aio``
is the asyncio face. docs/python.md is the guide; docs/protocol.md the wire they share.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, List, Optional

from .context import CallContext, Caller, context
from .decorators import (
    REGISTER_MARK,
    SUBSCRIBE_MARK,
    add_mark,
    is_method,
    register_options,
    subscribe_options,
)
from .errors import *  # noqa: F401,F403 - every error class is part of the API
from .errors import LabcError
from .runtime import Runtime
from .streams import Stream

__version__ = "0.1.0"

_default: Optional[Runtime] = None
_default_lock = threading.Lock()
_settings: dict = {}


def configure(**settings: Any) -> None:
    """Settings for the process's labc before its first use, by config key with ``_`` for ``.``
    (``configure(router_port=6000, call_timeout=5)``); files and LABC_* variables come first."""
    if _default is not None:
        raise LabcError("labc.configure() must come before labc's first use in this process")
    for key, value in settings.items():
        section, _, name = key.partition("_")
        _settings[f"{section}.{name}"] = value


def runtime() -> Runtime:
    """The process's Runtime, made on first use (and again after ``close()``)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Runtime(dict(_settings))
        return _default


def call(name: str, *args: Any) -> Any:
    """Calls ``name`` on the nearest server that offers it and returns its result."""
    return runtime().call(name, *args)


def call_with(name: str, args: List[Any] = (), *, timeout: Optional[float] = None, scope: Optional[str] = None,
              host: Optional[str] = None, state: Optional[str] = None) -> Any:
    """``call`` with options: ``timeout`` (s), ``scope`` (server, host, network), ``host`` (a
    host's name or id: resolve from there), ``state`` (only a server running that state id)."""
    return runtime().call_with(name, list(args), timeout=timeout, scope=scope, host=host, state=state)


def stream(name: str, *args: Any, window: int = 64, timeout: Optional[float] = None) -> Stream:
    """Reads what ``name`` yields: ``for item in labc.stream("tail", "log.txt")``."""
    return runtime().stream(name, *args, window=window, timeout=timeout)


def call_all(name: str, *args: Any, timeout: Optional[float] = None) -> List[dict]:
    """Calls ``name`` on every server offering it: one dict per server (``value`` or ``error``)."""
    return runtime().call_all(name, *args, timeout=timeout)


def publish(topic: str, *args: Any) -> int:
    """Publishes to every subscriber of ``topic``; returns how many servers it reached, once it
    has left this process."""
    rt = _default  # without the lock, nor Runtime.publish's steps, once made: a publisher calls this for every message
    if rt is None or rt._closed:
        rt = runtime()
    return rt.publications.publish_plain(topic, args)


def reqpub(topic: str, *args: Any, timeout: Optional[float] = None) -> Any:
    """Publishes, and returns the answer of the nearest subscriber (the others are notified)."""
    return runtime().reqpub(topic, *args, timeout=timeout)


def hosts() -> List[dict]:
    """The hosts of the network, as ``labc hosts --json`` lists them."""
    return runtime().hosts()


def servers() -> List[dict]:
    """Every server of the network and what it offers, as ``labc ls --json`` lists them."""
    return runtime().servers()


def serve(*instances: Any, block: bool = True, exclusive: bool = False) -> Runtime:
    """Serves the functions registered and each instance's decorated methods. Blocks until
    Ctrl-C or SIGTERM (``block=False``: returns at once), then stops without losing a call.
    ``exclusive=True``: each instance's functions run one call at a time (an instrument)."""
    return runtime().serve(*instances, block=block, exclusive=exclusive)


def close() -> None:
    """Stops serving, flushes what was published and closes every connection."""
    with _default_lock:
        current = _default
    if current is not None:
        current.close()


def register(fn: Optional[Callable] = None, *, name: Optional[str] = None, scope: str = "network", visibility: str = "public",
             idempotent: bool = False, exclusive: bool = False):
    """Offers a function to every process (``@labc.register`` or ``@labc.register(name=...)``).

    ``scope``: "network" (default), "host" (callers of this host) or "server" (this process);
    ``visibility``: "public", "local" (this host only), "private" (this host, or a caller naming
    it with get_host) or "secret"; ``idempotent``: may run twice for the same arguments;
    ``exclusive``: one call at a time, in arrival order (an instrument), while others go on.
    """
    options = register_options(name, scope, visibility, idempotent, exclusive)

    def mark(target: Callable) -> Callable:
        add_mark(target, REGISTER_MARK, options)
        if not is_method(target):
            runtime().add_function(target, options)
        return target

    return mark(fn) if fn is not None else mark


def subscribe(pattern: str, *, group: Optional[str] = None):
    """Runs the function for each publication matching ``pattern`` (``*`` one word, ``#`` the
    rest); in a queue ``group``, one member of the group gets each publication."""
    options = subscribe_options(pattern, group)

    def mark(target: Callable) -> Callable:
        add_mark(target, SUBSCRIBE_MARK, options)
        if not is_method(target):
            runtime().add_subscriber(pattern, target, group)
        return target

    return mark


class Host:
    """One host of the network (``labc.get_host("computer1")``): calls resolve from there, so
    its functions come first and its private ones are callable; publications go to it alone."""

    def __init__(self, name: str) -> None:
        self.name = name

    def call(self, fn: str, *args: Any) -> Any:
        return runtime().call_with(fn, list(args), host=self.name)

    def call_with(self, fn: str, args: List[Any] = (), **options: Any) -> Any:
        return runtime().call_with(fn, list(args), host=self.name, **options)

    def stream(self, fn: str, *args: Any, window: int = 64) -> Stream:
        return runtime().stream(fn, *args, window=window, host=self.name)

    def publish(self, topic: str, *args: Any) -> int:
        return runtime().publications.publish_to(topic, list(args), self.name)

    @property
    def network(self) -> "_Names":
        """Functions by attribute, from this host: ``get_host("computer1").network.core.info()``."""
        return _Names("", self.name)

    def __getattr__(self, name: str) -> "_Names":
        if name.startswith("__"):
            raise AttributeError(name)
        return _Names(name, self.name)

    def __repr__(self) -> str:
        return f"<labc host {self.name}>"


def get_host(name: str) -> Host:
    return Host(name)


class _Names:
    """``labc.network.power_supply.set_voltage(3.3)`` calls ``power_supply.set_voltage``."""

    def __init__(self, prefix: str, host: Optional[str] = None) -> None:
        self._prefix, self._host = prefix, host

    def __getattr__(self, name: str) -> "_Names":
        if name.startswith("__"):
            raise AttributeError(name)
        return _Names(f"{self._prefix}.{name}" if self._prefix else name, self._host)

    def __call__(self, *args: Any) -> Any:
        return runtime().call_with(self._prefix, list(args), host=self._host)

    def __repr__(self) -> str:
        return f"<labc function {self._prefix}>"


network = _Names("")


class _Localhost(Host):
    def __init__(self) -> None:
        super().__init__("")

    @property
    def name(self) -> str:  # type: ignore[override]
        # The host's name, as on the TypeScript side (getHost takes a name or an id alike).
        rt = runtime()
        rt.link.ready()
        return rt.link.host or rt.link.host_id

    @name.setter
    def name(self, value: str) -> None:
        pass


localhost = _Localhost()


def __getattr__(name: str) -> Any:
    # `import labc` then `await labc.aio.call(...)`: the asyncio face, loaded on first use
    # (a blocking program never imports asyncio for it).
    if name == "aio":
        import importlib

        # Not `from . import aio`: that asks this very function for `aio` first.
        return importlib.import_module(f"{__name__}.aio")
    raise AttributeError(f"module 'labc' has no attribute {name!r}")

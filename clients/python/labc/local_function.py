"""A function a server offers (``Local``: the function, its entry in the pool, its own thread when
exclusive) and who may call it (``offered``: other processes, ``exported``: other hosts)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Optional

from .signature import arity


class Local:
    __slots__ = ("fn", "entry", "serial", "fewest", "most")

    def __init__(self, fn: Callable, entry: Dict[str, Any], serial: Optional[ThreadPoolExecutor]) -> None:
        self.fn, self.entry, self.serial = fn, entry, serial
        self.fewest, self.most = arity(entry.get("params"))


def offered(entry: Dict[str, Any]) -> bool:
    """What other processes may call: not scope ``server``, not visibility ``secret``."""
    return entry["scope"] != "server" and entry["visibility"] != "secret"


def exported(entry: Dict[str, Any]) -> bool:
    """What callers on other hosts may call."""
    return entry["scope"] == "network" and entry["visibility"] in ("public", "private")

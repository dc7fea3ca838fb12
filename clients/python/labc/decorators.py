"""``@labc.register`` and ``@labc.subscribe``: marks on functions and methods, read by ``serve``.

A function at a module's top level (or inside a function) is offered by the process's server
as soon as it is decorated (served once ``labc.serve()`` runs); a method is offered with its
instance, ``labc.serve(PowerSupply())``, under ``power_supply.<method>`` as on the TypeScript side.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional

from .errors import BadArgumentsError
from .topics import check_group, check_pattern

SCOPES = ("server", "host", "network")
VISIBILITIES = ("public", "local", "private", "secret")
REGISTER_MARK = "__labc_register__"
SUBSCRIBE_MARK = "__labc_subscribe__"


def route_name(class_name: str) -> str:
    """``PowerSupply`` -> ``power_supply``, ``HTTPServer`` -> ``http_server`` (as TypeScript's)."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", class_name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def is_method(fn: Callable) -> bool:
    """A function defined in a class body (its qualified name is ``Class.name``)."""
    parts = getattr(fn, "__qualname__", "").split(".")
    return len(parts) >= 2 and parts[-2] != "<locals>"


def register_options(name: Optional[str], scope: str, visibility: str, idempotent: bool, exclusive: bool) -> Dict[str, Any]:
    if scope not in SCOPES:
        raise BadArgumentsError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    if visibility not in VISIBILITIES:
        raise BadArgumentsError(f"visibility must be one of {', '.join(VISIBILITIES)}, not {visibility!r}")
    if name is not None and (not isinstance(name, str) or not name or len(name) > 1024):
        raise BadArgumentsError(f"a function's name is 1 to 1024 characters, not {name!r}")
    return {"name": name, "scope": scope, "visibility": visibility, "idempotent": idempotent, "exclusive": exclusive}


def subscribe_options(pattern: str, group: Optional[str]) -> Dict[str, Any]:
    check_pattern(pattern)
    if group is not None:
        check_group(group)
    return {"pattern": pattern, "group": group}


def marks(fn: Callable, mark: str) -> List[Dict[str, Any]]:
    return list(getattr(fn, mark, []))


def add_mark(fn: Callable, mark: str, options: Dict[str, Any]) -> None:
    target = getattr(fn, "__func__", fn)
    existing = list(getattr(target, mark, []))
    existing.append(options)
    setattr(target, mark, existing)

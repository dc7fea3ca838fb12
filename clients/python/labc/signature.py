"""A served function's parameters as the pool lists them (``params``), so that callers, ``labc ls
--long`` and ``labc call``'s typed arguments see them, and calls with a wrong count are refused."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional, Tuple

#: Python annotations as the TypeScript type names the CLI converts arguments by.
TYPE_NAMES = {int: "number", float: "number", str: "string", bool: "boolean", bytes: "Buffer", bytearray: "Buffer",
              list: "unknown[]", tuple: "unknown[]", dict: "object", type(None): "null"}


def _type_name(annotation: Any) -> Optional[str]:
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        # `from __future__ import annotations`: the annotation is its source text.
        return {"int": "number", "float": "number", "str": "string", "bool": "boolean", "bytes": "Buffer"}.get(annotation, annotation)
    return TYPE_NAMES.get(annotation, getattr(annotation, "__name__", None))


def params_of(fn: Callable) -> Optional[List[Dict[str, Any]]]:
    """The parameters a caller passes (``self`` of a bound method is not one), or None."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params: List[Dict[str, Any]] = []
    for param in signature.parameters.values():
        if param.kind == inspect.Parameter.VAR_KEYWORD or param.kind == inspect.Parameter.KEYWORD_ONLY:
            continue  # labc passes arguments by position only
        entry: Dict[str, Any] = {"name": param.name}
        type_name = _type_name(param.annotation)
        if param.kind == inspect.Parameter.VAR_POSITIONAL:
            entry["rest"] = True
            if type_name:
                entry["type"] = f"{type_name}[]"
        else:
            if type_name:
                entry["type"] = type_name
            if param.default is not inspect.Parameter.empty:
                entry["optional"] = True
        params.append(entry)
    return params


def arity(params: Optional[List[Dict[str, Any]]]) -> Tuple[float, float]:
    if params is None:
        return 0, float("inf")
    fewest = 0
    for i, param in enumerate(params):
        if not param.get("optional") and not param.get("rest"):
            fewest = i + 1
    most = float("inf") if any(p.get("rest") for p in params) else len(params)
    return fewest, most


def format_signature(entry: Dict[str, Any]) -> str:
    params = entry.get("params")
    if params is None:
        return f"{entry['name']}(...)"
    shown = [("..." if p.get("rest") else "") + p["name"] + ("?" if p.get("optional") else "") + (f": {p['type']}" if p.get("type") else "") for p in params]
    return f"{entry['name']}({', '.join(shown)})"


def count_problem(entry: Dict[str, Any], count: int) -> str:
    fewest, most = arity(entry.get("params"))
    takes = f"{int(fewest)}" if fewest == most else f"at least {int(fewest)}" if most == float("inf") else f"{int(fewest)} to {int(most)}"
    plural = "" if takes.endswith(" 1") or takes == "1" else "s"
    return f"{format_signature(entry)} takes {takes} argument{plural}, not {count}"

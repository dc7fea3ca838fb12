"""Values beyond JSON, wire -> Python (docs/protocol.md#values-beyond-json): the binary parts put
back and the typed values revived after the JSON is read; values_out.py is the way there,
values.py the overview.

Wire -> Python (``restore``): Date -> aware ``datetime`` in UTC (``None`` for an invalid date or
one outside years 1..9999), BigInt -> ``BigInt`` (an ``int``), Number -> ``float``, undefined ->
``None`` (or ``UNDEFINED`` when asked), Map -> ``Map`` (a ``dict``; unhashable keys made
hashable: lists -> tuples, sets -> frozensets, dicts -> tuples of pairs), Set -> ``set`` (the
same for its items), RegExp -> ``re.Pattern`` when Python's ``re`` compiles the source (flags
i, m, s kept; g, y, u, d, v dropped), else the source string; Error -> the Python builtin
exception of that name when there is one that is an ``Exception`` (``TypeError``, ``KeyError``;
JS's ``RangeError`` or ``Error`` have none and are ``RemoteError``, so that they travel on under
their own name), else ``RemoteError(message, remote_name=, remote_code=, data=own fields)``;
its own fields are in ``__dict__``, its cause is ``__cause__``. A Buffer, Uint8Array,
Uint8ClampedArray, DataView or ArrayBuffer -> ``bytes``; other typed arrays -> ``array.array``.
"""

from __future__ import annotations

import array
import builtins
import datetime as _dt
import math
import re
from functools import partial
from typing import Any, List, Tuple

from .errors import MalformedFrameError, RemoteError
from .value_kinds import BIN_KEY, EPOCH, LITTLE, TYPECODES, TYPES_KEY, BigInt, Map


def _malformed(kind: str) -> MalformedFrameError:
    return MalformedFrameError(f"bad {kind} value")


def _reach(root: dict, path: list, start: int, what: str, must_exist: bool) -> Tuple[Any, Any]:
    """The container holding the value at ``path[start:]`` and the value's key (or index) in it."""
    target: Any = root
    last = len(path) - 1
    if start > last:
        raise MalformedFrameError(f"bad {what}")
    for i in range(start, last + 1):
        step = path[i]
        t = type(target)
        if t is dict:
            if type(step) is int:
                step = str(step)  # obj[0] is obj["0"] in JS
            elif type(step) is not str:
                raise MalformedFrameError(f"bad {what}")
            exists = step in target
        elif t is list:
            if type(step) is not int:
                raise MalformedFrameError(f"bad {what}")
            exists = 0 <= step < len(target)
            if not exists and i == last and step == len(target) and not must_exist:
                target.append(None)  # JS's arr[arr.length] = x
                exists = True
        else:
            raise MalformedFrameError(f"bad {what}")
        if (must_exist or i < last or t is list) and not exists:
            raise MalformedFrameError(f"{what} does not exist in the body")
        if i == last:
            return target, step
        target = target[step]
    raise MalformedFrameError(f"bad {what}")  # pragma: no cover


def place_binary(body: dict, paths: Any, parts: List[bytes]) -> None:
    """Puts each binary part back at its path (decoded JSON, before ``restore_types``)."""
    if type(paths) is not list or len(paths) != len(parts):
        raise MalformedFrameError(f'{len(parts)} binary parts but no matching "{BIN_KEY}" paths')
    for path, part in zip(paths, parts):
        if type(path) is not list or not path:
            raise MalformedFrameError("bad binary path")
        parent, key = _reach(body, path, 0, "binary path", False)
        parent[key] = part


def restore_types(body: dict, types: Any, undefined: Any = None) -> None:
    """Brings every value listed under ``$types`` back to its kind, in the order listed."""
    if type(types) is not list:
        raise MalformedFrameError(f'"{TYPES_KEY}" is not a list')
    for entry in types:
        if type(entry) is not list or len(entry) < 2 or type(entry[0]) is not str:
            raise MalformedFrameError(f'bad "{TYPES_KEY}" entry')
        parent, key = _reach(body, entry, 1, "typed value's path", True)
        kind = entry[0]
        form = parent[key]
        if kind == "undefined":
            if form is not None:
                raise _malformed(kind)
            parent[key] = undefined
            continue
        revive = _REVIVERS.get(kind)
        if revive is None:
            if kind not in TYPECODES:
                raise MalformedFrameError(f'unknown value kind "{kind}"')
            revive = partial(_typed_array, kind)
        parent[key] = revive(form)


_NUMBERS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}


def _number(form: Any) -> float:
    if type(form) is not str or form not in _NUMBERS:
        raise _malformed("Number")
    return _NUMBERS[form]


_BIGINT = re.compile(r"-?[0-9a-f]+")


def _bigint(form: Any) -> BigInt:
    if type(form) is not str or not _BIGINT.fullmatch(form):
        raise _malformed("BigInt")
    return BigInt(int(form, 16))


def _date(form: Any) -> Any:
    if form is None:
        return None
    if type(form) not in (int, float) or form != form:
        raise _malformed("Date")
    if abs(form) > 8.64e15:
        return None  # JS's invalid date
    try:
        return EPOCH + _dt.timedelta(milliseconds=int(form))  # int(): toward zero, as JS
    except OverflowError:
        return None  # a Date Python's datetime cannot hold (outside years 1..9999)


def hashable(v: Any) -> Any:
    """``v`` made hashable for a set item or a dict key: lists -> tuples, sets -> frozensets,
    dicts -> tuples of (key, value) pairs, typed arrays -> tuples; anything hashable as it is."""
    if isinstance(v, (list, array.array)):
        return tuple(hashable(x) for x in v)
    if isinstance(v, (set, frozenset)):
        return frozenset(hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple((hashable(k), hashable(x)) for k, x in v.items())
    return v


def _map(form: Any) -> Map:
    if type(form) is not list or not all(type(p) is list and len(p) == 2 for p in form):
        raise _malformed("Map")
    return Map((hashable(k), x) for k, x in form)


def _set(form: Any) -> set:
    if type(form) is not list:
        raise _malformed("Set")
    return {hashable(x) for x in form}


_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}


def _regexp(form: Any) -> Any:
    if type(form) is not list or len(form) != 2 or type(form[0]) is not str or type(form[1]) is not str:
        raise _malformed("RegExp")
    source, flags = form
    if len(set(flags)) != len(flags) or not set(flags) <= set("dgimsuvy") or ("u" in flags and "v" in flags):
        raise _malformed("RegExp")  # JS's RegExp refuses these too
    try:
        return re.compile(source, sum(_FLAGS.get(c, 0) for c in flags))
    except (re.error, ValueError, OverflowError, RecursionError):
        return source


def _error(form: Any) -> BaseException:
    if type(form) is not dict or type(form.get("name")) is not str or type(form.get("message")) is not str:
        raise _malformed("Error")
    name, message = form["name"], form["message"]
    own = {k: x for k, x in form.items() if k not in ("name", "message")}
    cause = own.pop("cause", None) if isinstance(own.get("cause"), BaseException) else None
    error: Any = None
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and not name.startswith("_"):
        try:
            error = cls(message)
        except Exception:  # a builtin that needs other arguments (UnicodeDecodeError...)
            error = None
        if error is not None:
            error.__dict__.update(own)
    if error is None:
        code = own.get("code")
        error = RemoteError(message, remote_name=name, remote_code=code if type(code) is str else None, data=own)
    if cause is not None:
        error.__cause__ = cause
    return error


def _binary(kind: str, part: Any) -> bytes:
    if type(part) is not bytes:
        raise _malformed(kind)
    return part


def _typed_array(kind: str, part: Any) -> array.array:
    code = TYPECODES[kind]
    out = array.array(code)
    if type(part) is not bytes or len(part) % out.itemsize:
        raise _malformed(kind)
    out.frombytes(part)
    if not LITTLE and out.itemsize > 1:
        out.byteswap()
    return out


_REVIVERS = {
    "Number": _number, "BigInt": _bigint, "Date": _date, "Map": _map, "Set": _set, "RegExp": _regexp,
    "Error": _error, "ArrayBuffer": partial(_binary, "ArrayBuffer"), "DataView": partial(_binary, "DataView"),
    "Uint8Array": partial(_binary, "Uint8Array"), "Uint8ClampedArray": partial(_binary, "Uint8ClampedArray"),
}

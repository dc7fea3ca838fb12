"""Values beyond JSON, Python -> wire (docs/protocol.md#values-beyond-json); values_in.py is the
way back, values.py the overview.

Python -> wire (``to_wire``): a body is walked once; binary values become parts listed under
``$bin``, every other value JSON would change or drop gets its JSON form and a ``$types`` entry
(innermost first, as lib/wire/values.ts writes them), so that a TypeScript peer gets a ``Date``,
``Map``, ``Float32Array``... What travels as what:

* ``bytes``, ``bytearray``, ``memoryview``: a binary part with no ``$types`` entry (a Buffer);
* ``array.array``: the typed array of its typecode ('b' Int8Array, 'B' Uint8Array, 'h'/'H'
  Int16/Uint16Array, 'i'/'l'/'I'/'L' Int32/Uint32Array when 4 bytes wide, else BigInt64 /
  BigUint64Array, 'q'/'Q' BigInt64/BigUint64Array, 'f' Float32Array, 'd' Float64Array);
* ``datetime.datetime``: a Date (a naive one is local time, as ``.timestamp()`` takes it);
  ``datetime.date``: a Date at UTC midnight of that day (what JS makes of ``"2024-01-02"``);
* ``set``/``frozenset``: a Set; a ``dict`` with any key that is not a ``str`` (or a ``Map``):
  a Map; any other ``dict``: a plain object; ``list``/``tuple``: an array;
* ``int`` outside +-(2**53-1), or a ``BigInt``: a BigInt; NaN, +-inf, -0.0: a Number;
* ``BaseException``: an Error ``{name, message, cause?, ...own fields}`` (a ``LabcError`` as its
  wire name with its code and data; a ``RemoteError`` as the remote error it stands for);
* a dataclass instance: its fields, as a plain object; ``UNDEFINED``: JS ``undefined``.

Anything else (a function, a module, a generator, an object of another class) is refused with
``BadArgumentsError`` naming its path (``args[0].then: a function (then) cannot be sent``), as
is a value nested deeper than 512 levels, or cyclic.
"""

from __future__ import annotations

import array
import dataclasses
import datetime as _dt
import math
import re
import types as _types
from functools import partial
from json.encoder import encode_basestring
from typing import Any, List

from .errors import BadArgumentsError, LabcError, RemoteError
from .js_number import js_number
from .value_kinds import ARRAY_KINDS, EPOCH, LITTLE, MAX_BLOBS, MAX_DEPTH, MAX_SAFE, UNDEFINED, WIDE_KINDS, BigInt, Map

_IDENT = re.compile(r"[A-Za-z_$][\w$]*", re.ASCII)


def is_plain(v: Any, depth: int = 0) -> bool:
    """Whether the standard JSON encoder writes ``v`` exactly as JSON.stringify would, with
    nothing to list under ``$bin``/``$types``: the common case, checked without allocating.
    Floats qualify only where Python's repr is JS's text (not 1.0, not 1e-07)."""
    t = type(v)
    # Containers first, and the scalars inside them checked here rather than by a call each:
    # a publisher checks every message's arguments (a call is most of the cost). The two loops
    # stay written out: one shared would take two Python frames a level of nesting, and a value
    # nested MAX_DEPTH deep would pass the interpreter's recursion limit before the check ends.
    if t is dict:
        if depth >= MAX_DEPTH:
            return False  # the full walk names it
        for k, x in v.items():
            if type(k) is not str:
                return False
            u = type(x)
            if u is str or x is None or u is bool:
                continue
            if u is int:
                if -MAX_SAFE <= x <= MAX_SAFE:
                    continue
                return False
            if not is_plain(x, depth + 1):
                return False
        return True
    if t is list or t is tuple:
        if depth >= MAX_DEPTH:
            return False
        for x in v:
            u = type(x)
            if u is str or x is None or u is bool:
                continue
            if u is int:
                if -MAX_SAFE <= x <= MAX_SAFE:
                    continue
                return False
            if not is_plain(x, depth + 1):
                return False
        return True
    if t is str or t is bool or v is None:
        return True
    if t is int:
        return -MAX_SAFE <= v <= MAX_SAFE
    if t is float:
        return (0.0001 <= v < 1e16 or -1e16 < v <= -0.0001) and not v.is_integer()
    return False


class Wire:
    """A body's JSON form: ``value`` with parts taken out (``blobs``, their ``paths``), the
    ``types`` entries, and ``js_floats`` when a float needs JS's own text (see frames.py)."""

    def __init__(self) -> None:
        self.value: Any = None
        self.blobs: List[bytes] = []
        self.paths: List[list] = []
        self.types: List[list] = []
        self.js_floats = False
        self._path: list = []
        self._shown: list = []

    def refuse(self, what: str) -> None:
        where = "".join(_show(s) for s in self._shown)
        if len(where) > 120:
            where = where[:120] + "…"
        raise BadArgumentsError(f"{where}: {what}")

    def typed(self, kind: str, form: Any) -> Any:
        self.types.append([kind, *self._path])
        return form

    def blob(self, kind: str, data: bytes) -> None:
        if len(self.blobs) >= MAX_BLOBS:
            self.refuse(f"more than {MAX_BLOBS} binary values in one message")
        self.blobs.append(data)
        self.paths.append(list(self._path))
        if kind != "Buffer":
            self.typed(kind, None)

    def inside(self, steps: tuple, shown: Any, v: Any, depth: int, in_array: bool) -> Any:
        self._path.extend(steps)
        self._shown.append(shown)
        form = self.visit(v, depth, in_array)
        del self._path[len(self._path) - len(steps):]
        self._shown.pop()
        return form

    def visit(self, v: Any, depth: int, in_array: bool) -> Any:
        t = type(v)
        if t is str or t is bool or v is None:
            return v
        if t is int:
            return v if -MAX_SAFE <= v <= MAX_SAFE else self.typed("BigInt", _hex(v))
        if t is float:
            return self.number(v)
        if v is UNDEFINED:
            return self.typed("undefined", None) if in_array else UNDEFINED
        if depth > MAX_DEPTH:
            self.refuse(f"nested deeper than {MAX_DEPTH} levels (or cyclic)")
        if isinstance(v, (list, tuple)):
            path, shown = self._path, self._shown
            out = []
            for i, x in enumerate(v):
                path.append(i)
                shown.append(i)
                out.append(self.visit(x, depth + 1, True))
                path.pop()
                shown.pop()
            return out
        if isinstance(v, dict):
            if type(v) is not Map and all(isinstance(k, str) for k in v):
                return self.fields(v, depth)
            return self.typed("Map", [
                [self.inside((i, 0), _Shown(f"<key {i}>"), k, depth + 2, True),
                 self.inside((i, 1), _Shown(_get_shown(k, i)), x, depth + 2, True)]
                for i, (k, x) in enumerate(v.items())
            ])
        if isinstance(v, BigInt):
            return self.typed("BigInt", _hex(v))
        if isinstance(v, int):
            return self.visit(int(v), depth, in_array)
        if isinstance(v, float):
            return self.number(float(v))
        if isinstance(v, str):
            return str(v)
        if isinstance(v, (bytes, bytearray, memoryview)):
            self.blob("Buffer", bytes(v) if not isinstance(v, memoryview) else v.tobytes())
            return None
        if isinstance(v, array.array):
            kind = ARRAY_KINDS.get(v.typecode) if v.itemsize <= 4 or v.typecode in "qQd" else WIDE_KINDS.get(v.typecode)
            if kind is None:
                self.refuse(f"an array of typecode '{v.typecode}' cannot be sent")
            if not LITTLE and v.itemsize > 1:
                v = array.array(v.typecode, v)
                v.byteswap()
            self.blob(kind, v.tobytes())
            return None
        if isinstance(v, (set, frozenset)):
            return self.typed("Set", [self.inside((i,), _Shown(f"<item {i}>"), x, depth + 1, True) for i, x in enumerate(v)])
        if isinstance(v, _dt.datetime):
            return self.typed("Date", date_ms(v))
        if isinstance(v, _dt.date):
            return self.typed("Date", date_ms(_dt.datetime(v.year, v.month, v.day, tzinfo=_dt.timezone.utc)))
        if isinstance(v, re.Pattern):
            flags = "".join(c for c, f in (("i", re.I), ("m", re.M), ("s", re.S)) if v.flags & f)
            source = v.pattern if isinstance(v.pattern, str) else v.pattern.decode("latin-1")
            return self.typed("RegExp", [_js_source(source), flags])
        if isinstance(v, BaseException):
            return self.typed("Error", self.visit(error_fields(v), depth + 1, False))
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return self.fields({f.name: getattr(v, f.name) for f in dataclasses.fields(v)}, depth)
        if isinstance(v, (_types.FunctionType, _types.BuiltinFunctionType, _types.MethodType, partial)) or isinstance(v, type):
            name = getattr(v, "__name__", "") or ""
            what = "a class" if isinstance(v, type) else "a function"
            self.refuse(f"{what} ({name if name and name != '<lambda>' else 'anonymous'}) cannot be sent")
        if isinstance(v, (_types.CoroutineType, _types.GeneratorType, _types.AsyncGeneratorType)) or hasattr(v, "__await__"):
            self.refuse(f"a {type(v).__name__} cannot be sent (await or read it first)")
        if isinstance(v, _types.ModuleType):
            self.refuse(f"a module ({v.__name__}) cannot be sent")
        self.refuse(f"an instance of {type(v).__name__} cannot be sent (send a dict, or make it a dataclass)")

    def fields(self, v: dict, depth: int) -> dict:
        """A plain object: each str key's form; an UNDEFINED field is left out, as JSON does."""
        out = {}
        path, shown = self._path, self._shown
        for k, x in v.items():
            path.append(k)
            shown.append(k)
            form = self.visit(x, depth + 1, False)
            path.pop()
            shown.pop()
            if form is not UNDEFINED:
                out[k] = form
        return out

    def number(self, v: float) -> Any:
        if v != v:
            return self.typed("Number", "NaN")
        if v in (math.inf, -math.inf):
            return self.typed("Number", "Infinity" if v > 0 else "-Infinity")
        if v == 0.0 and math.copysign(1.0, v) < 0:
            return self.typed("Number", "-0")
        if v.is_integer() and -9007199254740992.0 < v < 9007199254740992.0:
            return int(v)  # written as JS writes this number (1, not 1.0)
        a = -v if v < 0 else v
        if a < 0.0001 or 9007199254740992.0 <= a < 1e21:
            self.js_floats = True  # Python writes 1e-07 and 1e+16, JS 1e-7 and 10000000000000000
        return v


class _Shown(str):
    """A path piece shown as it is (``result``, ``<key 0>``), not as an index or a key."""


def _show(s: Any) -> str:
    if type(s) is int:
        return f"[{s}]"
    if isinstance(s, _Shown):
        return s
    return f".{s}" if _IDENT.fullmatch(s) else "[" + encode_basestring(s) + "]"


def _get_shown(key: Any, i: int) -> str:
    if isinstance(key, str):
        return f".get({encode_basestring(key)})"
    if isinstance(key, float):
        return f".get({js_number(key) if math.isfinite(key) else 'null'})"
    if isinstance(key, int) and not isinstance(key, bool) and -MAX_SAFE <= key <= MAX_SAFE:
        return f".get({int(key)})"
    return f"<value {i}>"


_LINE_ENDS = {"\n": "n", "\r": "r", "\u2028": "u2028", "\u2029": "u2029"}


def _js_source(source: str) -> str:
    """A pattern's source as JS's RegExp#source gives it: ``/`` outside a class and line ends
    escaped, ``(?:)`` when empty; so that a RegExp sent on is the same bytes."""
    if not source:
        return "(?:)"
    out = []
    escaped = in_class = False
    for ch in source:
        if escaped:
            out.append(_LINE_ENDS.get(ch, ch))
            escaped = False
        elif ch in _LINE_ENDS:
            out.append("\\" + _LINE_ENDS[ch])
        elif ch == "/" and not in_class:
            out.append("\\/")
        else:
            out.append(ch)
            escaped = ch == "\\"
            in_class = (in_class or ch == "[") and ch != "]"
    return "".join(out)


def _hex(v: int) -> str:
    return "-" + format(-v, "x") if v < 0 else format(v, "x")


def date_ms(v: _dt.datetime) -> int:
    """Whole ms since the epoch (toward zero, as JS's TimeClip); naive = local time."""
    if v.tzinfo is None or v.utcoffset() is None:
        v = v.astimezone(_dt.timezone.utc)
    delta = v - EPOCH
    us = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return us // 1000 if us >= 0 else -((-us) // 1000)


def error_fields(e: BaseException) -> dict:
    """What travels of an exception: name, message, cause, its own fields (never the traceback)."""
    own = {k: x for k, x in vars(e).items() if not k.startswith("_")} if hasattr(e, "__dict__") else {}
    if isinstance(e, RemoteError):
        fields = {"name": e.remote_name, "message": e.message}
        own = dict(e.data)
        if e.remote_code is not None and "code" not in own:
            own["code"] = e.remote_code
    elif isinstance(e, LabcError):
        fields = {"name": e.wire_name, "message": e.message}
        own = {"code": e.code, **e.data}
    else:
        args = e.args
        fields = {"name": type(e).__name__, "message": args[0] if len(args) == 1 and isinstance(args[0], str) else str(e)}
    if e.__cause__ is not None:
        fields["cause"] = e.__cause__
    elif "cause" in own:
        fields["cause"] = own["cause"]
    if "errors" in own:
        fields["errors"] = own["errors"]
    for k, x in own.items():
        if k not in ("cause", "errors", "name", "message"):
            fields[k] = x
    return fields


def to_wire(body: dict) -> Wire:
    """The JSON form of a message body and what goes with it (see Wire); the body's own keys
    are shown as the user knows them (``args[0]``, ``result`` for ``v``)."""
    wire = Wire()
    root = {}
    for k, x in body.items():
        form = wire.inside((k,), _Shown("result" if k == "v" else k), x, 1, False)
        if form is not UNDEFINED:
            root[k] = form
    wire.value = root
    return wire


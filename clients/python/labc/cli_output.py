"""What the command line prints: a value as JSON can show it, saying what it is where JSON cannot
(``{"$binary": ...}``, ``{"$map": ...}``...), for people or for ``--json``, and tables
(cli/format.ts on the TypeScript side)."""

from __future__ import annotations

import array
import base64
import dataclasses
import datetime as _dt
import json
import math
import re
import sys
from typing import Any, List

from .value_kinds import ARRAY_KINDS, UNDEFINED, BigInt, Map


def _iso(value: _dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.astimezone()
    value = value.astimezone(_dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def shown(value: Any, binary: str = "base64", depth: int = 0) -> Any:
    """A value as JSON can show it, saying what it is where JSON cannot (cli/format.ts):
    ``{"$binary": base64}`` (or ``"<n bytes>"``), ``{"$bigint": "12"}``, ``{"$map": [[k, v]...]}``,
    ``{"$set": [...]}``, ``{"$Float32Array": [...]}``, ``{"$number": "NaN"}``, ``{"$error": {...}}``;
    a datetime as its ISO text."""
    if depth > 512:
        return None
    again = lambda v: shown(v, binary, depth + 1)  # noqa: E731
    if value is None or value is UNDEFINED or isinstance(value, (bool, str)):
        return None if value is UNDEFINED else value
    if isinstance(value, BigInt) or (isinstance(value, int) and abs(value) > 2 ** 53 - 1):
        return {"$bigint": str(int(value))}
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$number": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return {"$binary": base64.b64encode(raw).decode()} if binary == "base64" else f"<{len(raw)} bytes>"
    if isinstance(value, array.array):
        return {f"${ARRAY_KINDS.get(value.typecode, 'Array')}": [again(x) for x in value]}
    if isinstance(value, _dt.datetime):
        return _iso(value)
    if isinstance(value, _dt.date):
        return value.isoformat() + "T00:00:00.000Z"
    if isinstance(value, (set, frozenset)):
        return {"$set": [again(x) for x in value]}
    if isinstance(value, dict):
        if isinstance(value, Map) or any(not isinstance(key, str) for key in value):
            return {"$map": [[again(k), again(v)] for k, v in value.items()]}
        return {k: again(v) for k, v in value.items() if v is not UNDEFINED}
    if isinstance(value, (list, tuple)):
        return [again(x) for x in value]
    if isinstance(value, BaseException):
        fields = {k: again(v) for k, v in vars(value).items() if not k.startswith("_")} if hasattr(value, "__dict__") else {}
        name = getattr(value, "remote_name", None) or getattr(value, "wire_name", None) or type(value).__name__
        return {"$error": {**fields, "name": name, "message": str(value)}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: again(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, re.Pattern):
        return {"$regexp": f"/{value.pattern}/"}
    return repr(value)


def to_json(value: Any) -> str:
    return json.dumps(shown(value), ensure_ascii=False, separators=(",", ":"))


def to_text(value: Any) -> Any:
    """For people: a string as it is, binary data as raw bytes, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, BigInt):
        return str(int(value))
    return json.dumps(shown(value, "size"), ensure_ascii=False, indent=2)


def to_line(value: Any) -> str:
    """A value on one line: a string as it is unless it holds a line break, else compact JSON."""
    if isinstance(value, str) and "\n" not in value and "\r" not in value:
        return value
    return json.dumps(shown(value, "size"), ensure_ascii=False, separators=(",", ":"))


def write_out(value: Any, as_json: bool) -> None:
    if value is None and not as_json:
        return
    out = to_json(value) if as_json else to_text(value)
    if isinstance(out, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
        return
    sys.stdout.write(out if out.endswith("\n") or out == "" else out + "\n")
    sys.stdout.flush()


def write_item(value: Any, as_json: bool) -> None:
    if not as_json and isinstance(value, (bytes, bytearray, memoryview)):
        sys.stdout.flush()
        sys.stdout.buffer.write(bytes(value))
        sys.stdout.buffer.flush()
        return
    sys.stdout.write((to_json(value) if as_json else to_line(value)) + "\n")
    sys.stdout.flush()


def table(header: List[str], rows: List[List[str]]) -> str:
    """Columns padded to their widest cell; control characters shown escaped, never sent."""
    clean = [[cell.encode("unicode_escape").decode("ascii") if any(ord(c) < 32 or ord(c) == 127 for c in cell) else cell for cell in row] for row in rows]
    widths = [max([len(title)] + [len(row[i]) for row in clean]) for i, title in enumerate(header)]
    line = lambda cells: "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()  # noqa: E731
    return "\n".join([line(header)] + [line(row) for row in clean])


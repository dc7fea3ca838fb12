"""The command line's arguments (``python -m labc call NAME ARGS...``): JSON when they parse as
JSON, else text; ``-`` reads one from stdin, ``@path`` from a file; a function's declared
parameter types convert them (cli/format.ts and cli/typed-args.ts on the TypeScript side)."""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional, Sequence

from .signature import arity, count_problem, format_signature
from .value_kinds import BigInt

STDIN = "-"


class UsageError(Exception):
    """A mistake on the command line: exit code 2."""


def parse_arg(text: str) -> Any:
    """JSON when it parses as JSON, else the text (cli/format.ts parseArg)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def argument_from(raw: bytes) -> Any:
    """A file's or stdin's bytes: UTF-8 text is read as a typed argument (less one final line
    break); anything else travels as bytes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    if "\0" in text:
        return raw
    return parse_arg(text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text)


def read_arguments(args: Sequence[str]) -> List[Dict[str, Any]]:
    """Each argument as ``{"text": ...}`` (as typed) or ``{"value": ...}`` (read from stdin or a file)."""
    if sum(1 for arg in args if arg == STDIN) > 1:
        raise UsageError("only one argument can come from stdin (-)")
    out: List[Dict[str, Any]] = []
    for arg in args:
        if arg == STDIN:
            if sys.stdin.isatty():
                print("labc: reading an argument from stdin; Ctrl-D ends it", file=sys.stderr)
            out.append({"value": argument_from(sys.stdin.buffer.read())})
        elif arg.startswith("@@"):
            out.append({"text": arg[1:]})
        elif len(arg) > 1 and arg.startswith("@"):
            try:
                with open(arg[1:], "rb") as file:
                    out.append({"value": argument_from(file.read())})
            except OSError as error:
                raise UsageError(f"cannot read the argument file {arg[1:]}: {error.strerror or error} (write @@ for a text starting with @)") from None
        else:
            out.append({"text": arg})
    return out


def _type_at(params: List[Dict[str, Any]], index: int) -> Optional[str]:
    param = params[index] if index < len(params) else next((p for p in params if p.get("rest")), None)
    if param is None or not param.get("type"):
        return None
    if param.get("rest") and index >= params.index(param):
        return param["type"][:-2] if param["type"].endswith("[]") else None
    return param["type"]


def typed_arguments(args: List[Dict[str, Any]], entry: Optional[Dict[str, Any]]) -> List[Any]:
    """Arguments converted by the declared types (cli/typed-args.ts): ``string`` as typed,
    ``number``, ``boolean`` and ``bigint`` from their text; anything else as ``parse_arg`` reads it."""
    if entry is not None and entry.get("params") is not None:
        fewest, most = arity(entry["params"])
        if not fewest <= len(args) <= most:
            raise UsageError(count_problem(entry, len(args)))
    values: List[Any] = []
    for index, arg in enumerate(args):
        if "value" in arg:
            values.append(arg["value"])
            continue
        text = arg["text"]
        params = (entry or {}).get("params") or []
        kind = _type_at(params, index) if params else None

        def refuse(what: str) -> UsageError:
            name = params[min(index, len(params) - 1)]["name"]
            return UsageError(f"{format_signature(entry)}: {name} must be {what}, not {json.dumps(text)}")

        if kind == "string":
            values.append(text)
        elif kind == "number":
            try:
                number = float(text)
            except ValueError:
                raise refuse("a number") from None
            values.append(int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number)
        elif kind == "boolean":
            if text not in ("true", "false"):
                raise refuse("true or false")
            values.append(text == "true")
        elif kind == "bigint":
            try:
                values.append(BigInt(int(text)))
            except ValueError:
                raise refuse("a whole number") from None
        else:
            values.append(parse_arg(text))
    return values


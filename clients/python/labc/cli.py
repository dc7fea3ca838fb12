"""``python -m labc``: call, publish, subscribe, list and serve from the command line, as the
``labc`` command of the TypeScript side does (the same arguments, output and exit codes).

Arguments are JSON when they parse as JSON (``42``, ``true``, ``[1,2]``, ``'"7"'``), else text;
``-`` reads one from stdin and ``@path`` from a file; a function's declared parameter types
convert them (a ``str`` parameter takes ``42`` as the text "42"). A failure prints one line,
``labc: <message> [<code>]``, and exits 1 (2 for a usage mistake, 130 on Ctrl-C).
"""

from __future__ import annotations

import argparse
import array
import base64
import dataclasses
import datetime as _dt
import json
import math
import os
import re
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence

from .errors import CancelledError, LabcError, NoSuchFunctionError
from .signature import count_problem, format_signature
from .values import BigInt, UNDEFINED

STDIN = "-"


class UsageError(Exception):
    """A mistake on the command line: exit code 2."""


# --- arguments --------------------------------------------------------------------------------


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
        from .signature import arity

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


# --- output -----------------------------------------------------------------------------------


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
        from .value_kinds import ARRAY_KINDS

        return {f"${ARRAY_KINDS.get(value.typecode, 'Array')}": [again(x) for x in value]}
    if isinstance(value, _dt.datetime):
        return _iso(value)
    if isinstance(value, _dt.date):
        return value.isoformat() + "T00:00:00.000Z"
    if isinstance(value, (set, frozenset)):
        return {"$set": [again(x) for x in value]}
    if isinstance(value, dict):
        from .values import Map

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


# --- commands ---------------------------------------------------------------------------------


def _runtime(options: argparse.Namespace, **settings: Any):
    from .runtime import Runtime

    config: Dict[str, Any] = {}
    for pair in getattr(options, "set", None) or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes key=value, got {pair!r}" if len(pair) <= 40 else "--set takes key=value")
        if key.strip() == "network.secret":
            raise UsageError("--set network.secret is refused: every user of this computer sees a command's arguments (ps); "
                             "give it by LABC_SECRET in the environment, or the secret file (labc secret set)")
        config[key.strip()] = value
    if getattr(options, "port", None) is not None:
        config["router.port"] = options.port
    config.update({key: value for key, value in settings.items() if value is not None})
    return Runtime(config)


def _declared(rt: Any, name: str) -> Optional[Dict[str, Any]]:
    """The function's entry when every server offering it declares the same parameters."""
    rt.link.ready()
    with rt.link.pool.lock:
        entries = [s.functions[name] for s in rt.link.pool.servers.values() if name in s.functions]
    if not entries or entries[0].get("params") is None:
        return None
    same = json.dumps(entries[0]["params"], sort_keys=True)
    return entries[0] if all(json.dumps(e.get("params"), sort_keys=True) == same for e in entries) else None


def cmd_call(options: argparse.Namespace) -> int:
    timeout = options.timeout
    with _runtime(options, **{"call.timeout": timeout}) as rt:
        raw = read_arguments(options.args)
        entry = _declared(rt, options.name)
        if entry is None and not options.all:
            # A function a moment from registering: its parameters once it is there.
            try:
                rt.calls.resolve(options.name, options.scope or rt.config["call.scope"], options.host, options.state)
                entry = _declared(rt, options.name)
            except LabcError:
                pass
        args = typed_arguments(raw, entry)
        if options.all:
            results = rt.calls.call_all(options.name, args, timeout, options.scope, options.host)
            if not results:
                raise NoSuchFunctionError(f'no function "{options.name}" in {options.scope or rt.config["call.scope"]} scope (no server offers it)')
            answers = [{"host": r["host"], "server": r["server"], "pid": r["pid"], "port": r["port"],
                        **({"error": str(r["error"])} if "error" in r else {"value": r.get("value")})} for r in results]
            if options.json:
                write_out(answers, True)
            else:
                lines = [f"{a['host']} pid {a['pid']}: " + (f"error: {a['error']}" if "error" in a else a["value"] if isinstance(a["value"], str) else to_json(a["value"])) for a in answers]
                write_out("\n".join(lines), False)
            return 1 if any("error" in r for r in results) else 0
        # Read as a stream: one value prints as it is; a stream prints each item as it comes.
        stream = rt.calls.stream(options.name, args, timeout, options.scope, options.host, options.state)
        try:
            for item in stream:
                if stream.streamed:
                    write_item(item, options.json)
                else:
                    write_out(item, options.json)
        except KeyboardInterrupt:
            stream.close()
            raise
    return 0


def cmd_publish(options: argparse.Namespace) -> int:
    with _runtime(options) as rt:
        values = typed_arguments(read_arguments(options.args), None)
        if options.host is None:
            reached = rt.publish(options.topic, *values)
        else:
            reached = rt.publications.publish_to(options.topic, values, options.host)
        where = "" if options.host is None else f" on {options.host}"
        print(f"labc: published on {options.topic} to {reached} server(s){where}", file=sys.stderr, flush=True)
    return 0


def cmd_subscribe(options: argparse.Namespace) -> int:
    if options.count is not None and options.count < 1:
        raise UsageError(f"--count must be a whole number from 1, not {options.count}")
    piped = not sys.stdout.isatty()
    done = threading.Event()
    seen = [0]
    lock = threading.Lock()
    rt = _runtime(options)

    def on_publication(topic: str, *args: Any) -> None:
        with lock:
            if done.is_set():
                return
            if options.json:
                line = to_json({"topic": topic, "args": list(args)})
            else:
                show = to_line if piped else (lambda a: f"<{len(a)} bytes>" if isinstance(a, (bytes, bytearray, memoryview)) else to_text(a))
                line = " ".join([topic] + [show(a) for a in args])
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            seen[0] += 1
            if options.count is not None and seen[0] >= options.count:
                done.set()
                rt.stop()

    try:
        rt.add_subscriber(options.pattern, on_publication, options.group, label=f"labc subscribe {options.pattern}")
        rt.serve(block=False)
        group = "" if options.group is None else f" in group {options.group}"
        stops = "" if options.count is None else f" after {options.count} publication(s) or"
        print(f"labc: subscribed to {options.pattern}{group}; stops{stops} on Ctrl-C", file=sys.stderr, flush=True)
        rt.wait()
    finally:
        rt.close()
    return 0


def _listed(rt: Any) -> List[Dict[str, Any]]:
    rt.link.ready()
    servers = [s for s in rt.servers() if s["id"] != rt.identity["id"]]
    for server in servers:
        server["functions"] = [f for f in server["functions"] if f.get("visibility") != "private" or server["hostId"] == rt.link.host_id]
    return servers


def cmd_ls(options: argparse.Namespace) -> int:
    with _runtime(options) as rt:
        servers = _listed(rt)
        if options.json:
            write_out(servers, True)
            return 0
        where = lambda s: [s["host"], str(s["pid"]), f"{s['address']}:{s['port']}", "suspect" if s.get("suspect") else "ok"]  # noqa: E731
        functions = sorted(([format_signature(f) if options.long else f["name"], f.get("scope", "network"), f.get("visibility", "public"), *where(s)]
                            for s in servers for f in s["functions"]), key=lambda row: row[0])
        topics = sorted(([t, *where(s)] for s in servers for t in s["topics"]), key=lambda row: row[0])
        sys.stdout.write(table(["FUNCTION", "SCOPE", "VISIBILITY", "HOST", "PID", "ADDRESS", "STATE"], functions) + "\n\n")
        sys.stdout.write(table(["SUBSCRIPTION", "HOST", "PID", "ADDRESS", "STATE"], topics) + "\n")
    return 0


def cmd_hosts(options: argparse.Namespace) -> int:
    with _runtime(options) as rt:
        hosts = rt.hosts()
        if options.json:
            write_out(hosts, True)
            return 0
        rows = [[h.get("name", ""), h.get("hostId", ""), h.get("state", ""), ",".join(h.get("addresses") or []) or "-",
                 str(h.get("port", "-")), str(h.get("servers", 0)), str(h.get("functions", 0))] for h in hosts]
        sys.stdout.write(table(["HOST", "ID", "STATE", "ADDRESSES", "PORT", "SERVERS", "FUNCTIONS"], rows) + "\n")
    return 0


def cmd_serve(options: argparse.Namespace) -> int:
    import labc

    from . import service_file
    from .state_id import state_id

    if options.threads is not None and options.threads < 1:
        raise UsageError(f"--threads must be a whole number from 1, not {options.threads}")
    path = os.path.abspath(options.file)
    if options.list:
        module = service_file.load_module(path)
        classes = service_file.service_classes(module)
        functions = service_file.service_functions(module)
        patterns = service_file.service_subscriptions(module)
        if not classes and not functions and not patterns:
            raise labc.ServiceLoadError(f"{path}: has no class with @labc.register or @labc.subscribe methods, and no @labc.register or @labc.subscribe function")
        print(json.dumps({"name": service_file.service_name(path, classes), "classes": [c.__name__ for c in classes],
                          "functions": functions, "subscriptions": patterns}))
        return 0
    if options.as_name:
        _name_process(f"labc service {options.as_name}")
        _outlive_the_pipes(options.as_name)
    # The supervisor says which state it started (LABC_STATE); by hand, it is the file's own.
    given_state = os.environ.pop("LABC_STATE", None)
    settings: Dict[str, Any] = {}
    for pair in getattr(options, "set", None) or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--set takes key=value, got {pair!r}")
        settings[key.strip()] = value
    if getattr(options, "port", None) is not None:
        settings["router.port"] = options.port
    if options.threads is not None:
        settings["server.threads"] = options.threads
    # The process's runtime is made here, before the file's decorators reach for it.
    labc._settings.update(settings)
    rt = labc.runtime()
    module = service_file.load_module(path)
    state = given_state or state_id(path)
    rt.identity["state"] = state
    classes = service_file.service_classes(module)
    functions = service_file.service_functions(module)
    if not classes and not functions and not rt._pending_handlers:
        raise labc.ServiceLoadError(f"{path}: has no class with @labc.register or @labc.subscribe methods, and no @labc.register or @labc.subscribe function")
    instances = service_file.instances_of(classes, path)
    rt.serve(*instances, block=False)
    names = [c.__name__ for c in classes] + functions
    print(f"labc: serving {', '.join(names) or os.path.basename(path)} on {rt.config['server.address']}:{rt.server.port}"
          f" (router on port {rt.config['router.port']}, pid {rt.link.welcome.get('pid')}, state {state}); Ctrl-C stops", flush=True)
    rt.wait()
    return 0


class _LogWhenOrphaned:
    """stdout or stderr of a service a router started: its pipe to that router, and once the
    router is gone (the pipe broken) the service's log file itself, which the router wrote into
    and the next one reads from. A print never fails the call that made it."""

    def __init__(self, stream: Any, log: Dict[str, Any]) -> None:
        self._stream, self._log = stream, log

    def write(self, text: str) -> int:
        if self._log.get("file") is None:
            try:
                written = self._stream.write(text)
                self._stream.flush()
                return written
            except (BrokenPipeError, ValueError, OSError):
                self._orphaned()
        try:
            self._log["file"].write(text)
            self._log["file"].flush()
        except (OSError, ValueError, AttributeError):
            pass
        return len(text)

    def _orphaned(self) -> None:
        if self._log.get("file") is None:
            try:
                os.makedirs(os.path.dirname(self._log["path"]), exist_ok=True)
                self._log["file"] = open(self._log["path"], "a", encoding="utf-8", errors="replace")
            except OSError:
                self._log["file"] = False

    def flush(self) -> None:
        if self._log.get("file") is None:
            try:
                self._stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self._orphaned()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _outlive_the_pipes(name: str) -> None:
    from .config import state_dir

    log: Dict[str, Any] = {"path": os.path.join(state_dir(), "logs", f"{name}.log"), "file": None}
    sys.stdout = _LogWhenOrphaned(sys.stdout, log)  # type: ignore[assignment]
    sys.stderr = _LogWhenOrphaned(sys.stderr, log)  # type: ignore[assignment]


def _name_process(title: str) -> None:
    """What ``top`` and ``ps -o comm`` show (the kernel keeps 15 bytes); ``ps`` also shows the
    command line, ``python3 -m labc serve FILE --as NAME``."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, title.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass


# --- the parser -------------------------------------------------------------------------------

EXAMPLES = """\
examples:
  python -m labc call echo "Hello World!"
  python -m labc call add 1 2
  python -m labc call --host computer1 power_supply.measure
  python -m labc publish lab.temp.room1 21.5
  python -m labc subscribe 'lab.temp.*' --count 10
  python -m labc ls --long
  python -m labc serve driver.py --threads 4

Arguments are JSON when they parse as JSON, else text; - reads one from stdin, @path from a file.
Errors print one line, "labc: <message> [<code>]", and exit 1 (2: a usage mistake; 130: Ctrl-C).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given before the command or after it, a subcommand's default does not undo it.
    common.add_argument("--port", type=int, default=argparse.SUPPRESS, help="the router's root port (config router.port)")
    common.add_argument("--set", action="append", default=argparse.SUPPRESS, metavar="KEY=VALUE", help="a config key for this command (repeatable)")
    parser = _Parser(prog="python -m labc", description="labc from Python: call functions, publish and subscribe, list what the network offers, serve a Python file.",
                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    call = commands.add_parser("call", parents=[common], help="call a function and print its result (or each item of the stream it returns)",
                               description="Call a function and print its result, or each item of the stream it returns as it comes.",
                               epilog='examples:\n  python -m labc call echo "Hello World!"\n  python -m labc call add 1 2\n  python -m labc call add -- -1 2\n'
                                      '  cat notes.txt | python -m labc call echo -\n  python -m labc call --host computer1 temperature',
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    call.add_argument("name", help="the function's name")
    call.add_argument("args", nargs="*", help="its arguments: JSON when they parse as JSON, else text; - reads stdin, @path a file")
    call.add_argument("--timeout", type=float, metavar="SECONDS", help="give up after this many seconds; for a stream, waiting for its first item (config call.timeout)")
    call.add_argument("--scope", choices=["server", "host", "network"], help="where to look (config call.scope)")
    call.add_argument("--host", help="resolve from this host's perspective (its functions first, its private ones too)")
    call.add_argument("--state", metavar="ID", help="only a server running this state id may answer")
    call.add_argument("--all", action="store_true", help="call every server that offers the function; print each answer")
    call.add_argument("--json", action="store_true", help='print the result as JSON (binary data as {"$binary": base64})')
    call.set_defaults(run=cmd_call)

    publish = commands.add_parser("publish", parents=[common], help="publish to every subscriber of a topic",
                                  description="Publish to every subscriber of a topic, on every host; says on stderr how many servers it reached.")
    publish.add_argument("topic")
    publish.add_argument("args", nargs="*", help="as for call")
    publish.add_argument("--host", help="only to the subscribers on this host")
    publish.set_defaults(run=cmd_publish)

    subscribe = commands.add_parser("subscribe", parents=[common], help="print every publication matching a pattern until Ctrl-C",
                                    description="Print every publication matching a pattern (* one word, # the rest), one line each: the topic, then its arguments.")
    subscribe.add_argument("pattern")
    subscribe.add_argument("--count", type=int, metavar="N", help="stop after N publications")
    subscribe.add_argument("--group", help="join a queue group: each publication goes to one subscriber of the group")
    subscribe.add_argument("--json", action="store_true", help='one JSON object per line: {"topic", "args"}')
    subscribe.set_defaults(run=cmd_subscribe)

    ls = commands.add_parser("ls", parents=[common], help="list the functions and subscriptions known to this host",
                             description="List the functions and subscriptions known to this host, with where they run.")
    ls.add_argument("--long", action="store_true", help="show each function with its parameters: add(a: number, b: number)")
    ls.add_argument("--json", action="store_true", help="print the pool as JSON (with each function's params)")
    ls.set_defaults(run=cmd_ls)

    hosts = commands.add_parser("hosts", parents=[common], help="list the hosts this one knows",
                                description="List every host this one knows, with its state and what it offers.")
    hosts.add_argument("--json", action="store_true", help="print the hosts as JSON")
    hosts.set_defaults(run=cmd_hosts)

    serve = commands.add_parser("serve", parents=[common], help="serve a Python file until Ctrl-C or SIGTERM",
                                description="Serve a Python file until Ctrl-C or SIGTERM, then stop without losing a call: the functions it "
                                            "registers with @labc.register at top level, and one instance of each class defined in it that has "
                                            "@labc.register or @labc.subscribe methods (made with the keyword arguments of its [services.<Class>] "
                                            "table in the config, else with none).",
                                epilog="examples:\n  python -m labc serve driver.py\n  python -m labc serve driver.py --threads 4\n"
                                       "  python -m labc serve --list driver.py      (what it would serve, as JSON)",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("file", help="a .py file")
    serve.add_argument("--threads", type=int, metavar="N", help="calls served at once (config server.threads, 16)")
    serve.add_argument("--list", action="store_true", help='print {"name", "classes", "functions"} as JSON and exit, serving nothing')
    serve.add_argument("--as", dest="as_name", metavar="NAME", help="the service's name (as a router's supervisor starts it)")
    serve.set_defaults(run=cmd_serve)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        options = build_parser().parse_args(argv)
        if getattr(options, "run", None) is None:
            build_parser().print_help(sys.stderr)
            return 2
        return options.run(options)
    except UsageError as error:
        print(f"labc: {error}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("labc: interrupted (Ctrl-C)", file=sys.stderr, flush=True)
        return 130
    except CancelledError as error:
        print(f"labc: {error} [{error.code}]", file=sys.stderr, flush=True)
        return 130
    except LabcError as error:
        print(f"labc: {error} [{error.code}]", file=sys.stderr, flush=True)
        return 1
    except BrokenPipeError:
        # `python -m labc call ... | head`: the reader left.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except (OSError, ValueError) as error:
        print(f"labc: {error}", file=sys.stderr, flush=True)
        return 1

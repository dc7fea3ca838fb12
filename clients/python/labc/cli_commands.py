"""The commands of ``python -m labc`` that use the network as a client: call, publish, subscribe,
ls and hosts (serve is cli_serve.py's), each taking the parsed options and returning the exit code."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any, Dict, List, Optional

from .cli_arguments import UsageError, read_arguments, typed_arguments
from .cli_output import table, to_json, to_line, to_text, write_item, write_out
from .errors import LabcError, NoSuchFunctionError
from .signature import format_signature


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


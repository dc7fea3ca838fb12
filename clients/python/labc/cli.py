"""``python -m labc``: call, publish, subscribe, list and serve from the command line, as the
``labc`` command of the TypeScript side does (the same arguments, output and exit codes).

Arguments are JSON when they parse as JSON (``42``, ``true``, ``[1,2]``, ``'"7"'``), else text;
``-`` reads one from stdin and ``@path`` from a file; a function's declared parameter types
convert them (a ``str`` parameter takes ``42`` as the text "42"). A failure prints one line,
``labc: <message> [<code>]``, and exits 1 (2 for a usage mistake, 130 on Ctrl-C).

This module is the parser and ``main``; the arguments are read by cli_arguments.py, the output
written by cli_output.py, the commands run by cli_commands.py and cli_serve.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from .cli_arguments import UsageError
from .cli_commands import cmd_call, cmd_hosts, cmd_ls, cmd_publish, cmd_subscribe
from .cli_serve import cmd_serve
from .errors import CancelledError, LabcError

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

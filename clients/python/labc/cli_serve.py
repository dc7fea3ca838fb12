"""``python -m labc serve FILE``: serves a Python file's decorated classes and functions, by hand or
as a router's supervisor starts it (``--as NAME``: the process named, its output going on to the
service's log once the router that read its pipes is gone)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict

from .cli_arguments import UsageError


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


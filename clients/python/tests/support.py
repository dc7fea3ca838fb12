"""A labc world of its own for each test class: a free root port on loopback, temporary config,
state and cache folders, no discovery, the TypeScript router of this repository, and helpers that
start TypeScript and Python processes in it. Every process a test starts is ended by its PID when
the test ends (those of the class when the class ends), and so is the router the world started.

    class EchoTest(support.WorldTestCase):
        @classmethod
        def setUpWorld(cls):
            cls.echo = cls.world.ts_serve("services/echo.ts")

        def test_echo(self):
            self.assertEqual(labc.call("echo", "hi"), "hi")

In the test process, ``labc`` itself (its default runtime) lives in the class's world: the world
sets the environment labc reads while the class runs, and closes labc when it ends.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
PYTHON_ROOT = HERE.parent  # clients/python
REPO = PYTHON_ROOT.parent.parent
CLI = REPO / "bin" / "labc.js"
DIST = REPO / "dist" / "labc.js"
NODE = shutil.which("node") or "node"

if str(PYTHON_ROOT) not in sys.path:
    sys.path.insert(0, str(PYTHON_ROOT))

import labc  # noqa: E402  (the package under test, from this checkout)

# The router labc starts is meant to outlive the process that started it (it is detached, in a
# session of its own); its Popen object going away while it runs is not a leak here.
warnings.filterwarnings("ignore", r"subprocess \d+ is still running", ResourceWarning)

#: How long a process may take to be ready; generous, as CI runs the suites on a loaded machine.
READY_S = 30.0


def free_port(address: str = "127.0.0.1") -> int:
    """A port nobody listens on, nor on the one after it (a root port's invite port), below
    Linux's ephemeral range: a port the kernel hands out as free may be the next outgoing
    connection's source port, and a router started on it a moment later could not bind (the
    TypeScript tests' freePort does the same)."""
    for _ in range(100):
        port = random.randrange(20000, 32700)
        if _listenable(address, port) and _listenable(address, port + 1):
            return port
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _listenable(address: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((address, port))
            sock.listen()
        except OSError:
            return False
        return True


def in_thread(fn, *args):
    """Runs ``fn`` in a thread; returns a function that joins it and gives (value, error)."""
    result = {}

    def run():
        try:
            result["value"] = fn(*args)
        except BaseException as error:  # noqa: B902 - handed to the test
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join():
        thread.join(10)
        return result.get("value"), result.get("error")

    return join


def within(seconds: float, what: str, check, every: float = 0.05):
    """Polls ``check()`` until it returns something true; that value, or AssertionError."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:g} s")
        time.sleep(every)


def end_pid(pid: int, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; a process already gone is fine."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return
        except ChildProcessError:  # not our child: poll its existence
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _is_router(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return b"labc router" in file.read().replace(b"\0", b" ")
    except OSError:
        return False


class Proc:
    """A process of the world; its stdout and stderr go to one log file (never a pipe left unread)."""

    def __init__(self, world: "World", args: Sequence[str], env: Dict[str, str], label: str) -> None:
        self.world = world
        self.label = label
        self.args = list(args)
        world.started += 1
        self.log_path = os.path.join(world.dir, f"{label}-{world.started}.log")
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(world.prefix + self.args, env=env, cwd=str(REPO), stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.popen.pid

    def output(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as file:
                return file.read()
        except OSError:
            return ""

    def lines(self) -> List[str]:
        return self.output().splitlines()

    def wait_for(self, text: str, timeout: float = READY_S) -> None:
        """Waits until ``text`` is in the output; fails, with the output, if the process ends first."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.popen.poll() is not None and text not in self.output():
                raise AssertionError(f"{self.label} exited ({self.popen.returncode}) before {text!r}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.label}: no {text!r} within {timeout:g} s:\n{self.output()}")
            time.sleep(0.03)

    def wait(self, timeout: float = READY_S) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.label} did not end within {timeout:g} s:\n{self.output()}") from None

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.pid, sig)

    def stop(self) -> None:
        if self.popen.poll() is None:
            end_pid(self.pid)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass

    @property
    def running(self) -> bool:
        return self.popen.poll() is None


class Result:
    def __init__(self, code: int, output: str) -> None:
        self.code, self.output = code, output

    @property
    def stdout(self) -> str:
        return self.output

    def __repr__(self) -> str:
        return f"<exit {self.code}: {self.output!r}>"


class World:
    """One labc host for a test class (on loopback), or one host of a network of namespaces
    (``prefix`` runs every process in it: ``["ip", "netns", "exec", ns]``)."""

    def __init__(self, name: str = "world", env: Optional[Dict[str, str]] = None, prefix: Sequence[str] = (),
                 loopback: bool = True) -> None:
        self.name = name
        self.prefix = list(prefix)
        self.dir = tempfile.mkdtemp(prefix=f"labc-py-{name}-")
        self.port = free_port() if loopback else 55555
        self.procs: List[Proc] = []
        self.started = 0
        self.env: Dict[str, str] = {
            k: v for k, v in os.environ.items() if not k.startswith("LABC_") and k not in ("NODE_DEBUG", "NODE_OPTIONS")
        }
        self.env.update({
            "XDG_CONFIG_HOME": os.path.join(self.dir, "config"),
            "XDG_STATE_HOME": os.path.join(self.dir, "state"),
            "XDG_CACHE_HOME": os.path.join(self.dir, "cache"),
            "LABC_ROUTER_PORT": str(self.port),
            "LABC_ROUTER_LINGER": "0",  # the router stays until the world ends it, by its pid
            "LABC_COMMAND": f"{NODE} {CLI}",
            "PYTHONPATH": str(PYTHON_ROOT),
            "PYTHONUNBUFFERED": "1",
            "LABC_HOST_NAME": name,
        })
        if loopback:
            # Nothing of a loopback world listens, or looks, beyond 127.0.0.0/8.
            self.env.update({"LABC_DISCOVERY_ENABLED": "false", "LABC_SERVER_ADDRESS": "127.0.0.1", "LABC_NETWORK_LISTEN": "127.0.0.1"})
        self.env.update(env or {})
        for sub in ("config", "state", "cache"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self._saved_environ: Optional[Dict[str, str]] = None
        self.router_pids: set = set()

    # --- the test process's own labc ------------------------------------------------------------

    def enter(self) -> None:
        """Makes ``labc`` in this process use this world (its environment), until ``leave``."""
        labc.close()
        self._saved_environ = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)

    def leave(self) -> None:
        labc.close()
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None

    def runtime(self, **config) -> "labc.Runtime":
        """Another labc of this process, in this world (close it, or use it in ``with``)."""
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)
        try:
            return labc.Runtime(config)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    # --- processes ------------------------------------------------------------------------------

    def spawn(self, args: Sequence[str], label: str, env: Optional[Dict[str, str]] = None) -> Proc:
        proc = Proc(self, args, {**self.env, **(env or {})}, label)
        self.procs.append(proc)
        return proc

    def file(self, name: str, text: str) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as out:
            out.write(textwrap.dedent(text))
        return path

    def ts_serve(self, *files: str, env: Optional[Dict[str, str]] = None) -> Proc:
        """``labc serve files...`` (paths relative to the repository, or absolute), once it serves."""
        proc = self.spawn([NODE, str(CLI), "serve", *files], "ts-serve", env)
        proc.wait_for("labc: serving")
        return proc

    def ts_service(self, class_name: str, body: str) -> str:
        """A TypeScript service file: ``body`` is the class's members (decorators included)."""
        return self.file(f"{class_name}.ts", 'import { register, subscribe, context } from "labc";\n'
                         f"export class {class_name} {{\n{textwrap.dedent(body)}\n}}\n")

    def _ts_script_file(self, code: str) -> str:
        head = f"import * as labc from {json.dumps(DIST.as_uri())};\n"
        return self.file(f"script-{os.urandom(4).hex()}.mjs", head + textwrap.dedent(code) + "\nawait labc.close();\n")

    def ts_script(self, code: str, timeout: float = READY_S) -> Result:
        """A TypeScript (JavaScript module) script using dist/labc.js as ``labc``, run to its end."""
        proc = self.spawn([NODE, self._ts_script_file(code)], "ts-script")
        return Result(proc.wait(timeout), proc.output())

    def ts_script_start(self, code: str) -> Proc:
        return self.spawn([NODE, self._ts_script_file(code)], "ts-script")

    def cli(self, *args: str, timeout: float = READY_S) -> Result:
        """One ``labc`` command, run to its end."""
        proc = self.spawn([NODE, str(CLI), *args], "cli")
        return Result(proc.wait(timeout), proc.output())

    def cli_start(self, *args: str) -> Proc:
        return self.spawn([NODE, str(CLI), *args], "cli")

    def python_start(self, code: str, *args: str, ready: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> Proc:
        """``python3 script.py`` with this checkout's labc; waits for the line ``ready`` if given."""
        path = self.file(f"script-{os.urandom(4).hex()}.py", code)
        proc = self.spawn([sys.executable, path, *args], "python", env)
        if ready is not None:
            proc.wait_for(ready)
        return proc

    def python_run(self, code: str, *args: str, timeout: float = READY_S, env: Optional[Dict[str, str]] = None) -> Result:
        proc = self.python_start(code, *args, env=env)
        return Result(proc.wait(timeout), proc.output())

    # --- the router -----------------------------------------------------------------------------

    def router_pid(self) -> Optional[int]:
        """The pid of the router on this world's port: ``labc status --json`` says it."""
        proc = self.spawn([NODE, str(CLI), "status", "--json"], "status")
        try:
            proc.wait(20)
            status = json.loads(proc.output().strip().splitlines()[-1])
        except (ValueError, IndexError, AssertionError):
            return self._listener_pid()
        pid = (status.get("router") or {}).get("pid")
        return pid if isinstance(pid, int) else self._listener_pid()

    def _listener_pid(self) -> Optional[int]:
        if shutil.which("ss") is None:
            return None
        out = subprocess.run(self.prefix + ["ss", "-ltnpH", f"sport = :{self.port}"], capture_output=True, text=True).stdout
        for part in out.split("pid=")[1:]:
            digits = part.split(",")[0]
            if digits.isdigit():
                return int(digits)
        return None

    def note_router(self) -> None:
        """Remembers the router running now, to end it with the world (it may be replaced later)."""
        pid = self._listener_pid()
        if pid:
            self.router_pids.add(pid)

    # --- the end --------------------------------------------------------------------------------

    def end_processes(self, since: int = 0) -> None:
        """Ends the processes started since the ``since``-th, newest first, each by its pid."""
        self.note_router()
        for proc in reversed(self.procs[since:]):
            proc.stop()
        del self.procs[since:]

    def close(self) -> None:
        self.leave()
        self.end_processes()
        pid = self._listener_pid() if shutil.which("ss") else self.router_pid()
        if pid:
            self.router_pids.add(pid)
        for pid in self.router_pids:
            if _is_router(pid):  # not a pid reused since by another process
                end_pid(pid)
        self.router_pids.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


class WorldTestCase(unittest.TestCase):
    """A test class in a world of its own (``cls.world``); ``setUpWorld`` starts what the class
    shares. Processes a test starts end with the test; the class's, and the router, with the class."""

    world: World
    world_env: Dict[str, str] = {}

    @classmethod
    def setUpClass(cls) -> None:
        cls.world = World(cls.__name__.lower()[:20], cls.world_env)
        cls.addClassCleanup(cls.world.close)
        cls.world.enter()
        cls.setUpWorld()

    @classmethod
    def setUpWorld(cls) -> None:
        pass

    def setUp(self) -> None:
        mark = len(self.world.procs)
        self.addCleanup(self.world.end_processes, mark)

"""The Python package against a real router and real TypeScript processes, on one host (loopback).

Each class has a world of its own (support.py): its own root port, folders and router. Python
calls TypeScript; TypeScript (``labc call``, a script) calls Python; publications both ways;
streams with credit; cancellation; a server stopping or dying under a call; the router missing.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import unittest

import support  # noqa: F401  (puts this checkout's labc first on sys.path)
import labc
from labc import (
    BadArgumentsError,
    CallTimeout,
    ClosedError,
    ConnectionLostError,
    NoSuchFunctionError,
    NoSuchHostError,
    RemoteError,
)

#: A TypeScript service with what the Python caller needs beyond services/echo.ts.
PROBE_TS = """
  asked = 0;
  queued = 0;
  heard: unknown[] = [];

  @register()
  fail(message: string) {
    throw new RangeError(message);
  }

  @register()
  failOwn() {
    const error = new Error("the supply tripped") as Error & { code: string; volts: number };
    error.name = "InstrumentError";
    error.code = "E_TRIP";
    error.volts = 12;
    throw error;
  }

  @register()
  async slow(ms: number) {
    await new Promise((done) => setTimeout(done, ms));
    return ms;
  }

  @register()
  async *count(n: number) {
    for (let i = 0; i < n; i++) yield i;
  }

  @register()
  caller() {
    const call = context();
    return { id: call.caller?.id ?? null, host: call.caller?.host ?? null };
  }

  @register()
  stats() {
    return { queued: this.queued, heard: this.heard, asked: this.asked };
  }

  @subscribe("lab.ask")
  ask(n: number) {
    this.asked++;
    return n * 2;
  }

  @subscribe("lab.q", { group: "workers" })
  work(n: number) {
    this.queued++;
  }

  @subscribe("lab.ts.#")
  hear(...args: unknown[]) {
    this.heard.push(args);
  }
"""

#: The Python server TypeScript calls: functions, a class served under its route name, a
#: generator, an exclusive instrument, subscribers.
SERVER_PY = r"""
import threading, time
import labc

state = {"produced": 0, "ticker_closed": False, "hold": None, "heard": [], "queued": 0}

@labc.register
def py_add(a, b):
    return a + b

@labc.register(name="py.whoami")
def whoami():
    call = labc.context()
    return {"id": call.caller.id if call.caller else None, "host": call.caller.host if call.caller else None,
            "pid": call.caller.pid if call.caller else None, "left": call.time_left, "function": call.function}

@labc.register
def py_fail(text):
    raise KeyError(text)

@labc.register
def numbers(n):
    state["produced"] = 0
    for i in range(n):
        state["produced"] = i + 1
        yield i

@labc.register
def produced():
    return state["produced"]

@labc.register
def ticker():
    state["ticker_closed"] = False
    try:
        i = 0
        while True:
            yield i
            i += 1
    finally:
        state["ticker_closed"] = True

@labc.register
def ticker_closed():
    return state["ticker_closed"]

@labc.register
def hold(seconds):
    call = labc.context()
    state["hold"] = {"started": True, "cancelled": False}
    state["hold"]["cancelled"] = call.wait_cancelled(seconds)
    return "held"

@labc.register
def hold_state():
    return state["hold"]

@labc.subscribe("lab.py.*")
def on_py(topic, *args):
    state["heard"].append([topic, *args])

@labc.subscribe("lab.pyask")
def on_ask(n):
    return n + 100

@labc.subscribe("lab.q", group="workers")
def on_queued(n):
    state["queued"] += 1

@labc.register
def heard():
    return {"heard": state["heard"], "queued": state["queued"]}

class PowerSupply:
    def __init__(self):
        self.volts = 0.0
        self.order = []
        self.active = 0
        self.most = 0

    @labc.register(exclusive=True)
    def set_voltage(self, volts):
        self.active += 1
        self.most = max(self.most, self.active)
        time.sleep(0.15)
        self.volts = volts
        self.order.append(volts)
        self.active -= 1
        return volts

    @labc.register
    def voltage(self):
        return self.volts

    @labc.register
    def report(self):
        return {"order": self.order, "most": self.most}

labc.serve(PowerSupply(), block=False)
print("READY", flush=True)
labc.runtime().wait()
"""


def ts_json(result: "support.Result"):
    """The last line of a script's output, as JSON."""
    assert result.code == 0, result
    return json.loads(result.output.strip().splitlines()[-1])


class PythonCallsTypeScript(support.WorldTestCase):
    """The test process (Python) calls TypeScript servers: services/echo.ts and a probe."""

    @classmethod
    def setUpWorld(cls):
        probe = cls.world.ts_service("Probe", PROBE_TS)
        cls.server = cls.world.ts_serve("services/echo.ts", probe)

    def test_calls_by_name_and_by_attribute(self):
        self.assertEqual(labc.call("echo", "hi"), "hi")
        self.assertEqual(labc.call("add", 1, 2), 3)
        self.assertEqual(labc.network.echo.add(2.5, 4), 6.5)
        self.assertEqual(labc.call_with("echo.echo", [{"a": [1, None, True]}], timeout=5), {"a": [1, None, True]})

    def test_bytes_travel_as_bytes(self):
        blob = bytes(range(256)) * 4096  # 1 MiB
        self.assertEqual(labc.call("echo", blob), blob)
        self.assertEqual(labc.call("echo", [b"", b"\x00"]), [b"", b"\x00"])

    def test_no_such_function(self):
        with self.assertRaises(NoSuchFunctionError) as caught:
            labc.call("no.such.thing", 1)
        self.assertIn("no.such.thing", str(caught.exception))
        self.assertEqual(caught.exception.code, "LABC_NO_SUCH_FUNCTION")

    def test_bad_arguments_name_the_signature(self):
        with self.assertRaises(BadArgumentsError) as caught:
            labc.call("echo.add", 1, 2, 3)
        self.assertIn("add(a: number, b: number) takes 2 arguments, not 3", str(caught.exception))

    def test_remote_errors_keep_their_class(self):
        with self.assertRaises(RemoteError) as caught:
            labc.call("probe.fail", "out of range")
        error = caught.exception
        self.assertEqual(error.remote_name, "RangeError")
        self.assertIn("out of range", str(error))
        self.assertIn("probe.fail", str(error))
        with self.assertRaises(RemoteError) as caught:
            labc.call("probe.failOwn")
        error = caught.exception
        self.assertEqual((error.remote_name, error.remote_code, error.volts), ("InstrumentError", "E_TRIP", 12))

    def test_timeout(self):
        start = time.monotonic()
        with self.assertRaises(CallTimeout) as caught:
            labc.call_with("probe.slow", [3000], timeout=0.3)
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertIsInstance(caught.exception, TimeoutError)
        self.assertTrue(caught.exception.retryable)
        self.assertEqual(labc.call_with("probe.slow", [10], timeout=5), 10)

    def test_stream_from_typescript_in_order(self):
        items = list(labc.stream("probe.count", 20000, window=32))
        self.assertEqual(items, list(range(20000)))

    def test_the_caller_as_typescript_sees_it(self):
        seen = labc.call("probe.caller")
        self.assertEqual(seen["host"], self.world.name)
        self.assertTrue(seen["id"].startswith("py-"), seen)

    def test_hosts_servers_get_host_call_all(self):
        hosts = labc.hosts()
        self.assertEqual([h["name"] for h in hosts], [self.world.name])
        servers = labc.servers()
        self.assertIn(self.server.pid, [s["pid"] for s in servers])
        named = [f["name"] for s in servers for f in s["functions"]]
        self.assertIn("probe.slow", named)
        here = labc.get_host(self.world.name)
        self.assertEqual(here.call("echo", 7), 7)
        self.assertEqual(here.echo.add(1, 1), 2)
        with self.assertRaises(NoSuchHostError):
            labc.get_host("no-such-host").call("echo", 1)
        results = labc.call_all("echo", "all")
        self.assertEqual([(r["pid"], r["value"]) for r in results], [(self.server.pid, "all")])

    def test_publish_and_reqpub_to_typescript(self):
        before = labc.call("probe.stats")
        self.assertEqual(labc.publish("lab.ts.a", 1, "two", b"\x03"), 1)
        self.assertEqual(labc.get_host(self.world.name).publish("lab.ts.b", 4), 1)
        self.assertEqual(labc.reqpub("lab.ask", 21), 42)
        # reqpub went after the publications, on the same connection: they were heard before it.
        after = labc.call("probe.stats")
        self.assertEqual(after["heard"][len(before["heard"]):], [[1, "two", b"\x03"], [4]])
        self.assertEqual(after["asked"], before["asked"] + 1)

    def test_publications_arrive_in_order(self):
        before = len(labc.call("probe.stats")["heard"])
        for i in range(200):
            labc.publish("lab.ts.n", i)
        support.within(5, "200 publications heard", lambda: len(labc.call("probe.stats")["heard"]) >= before + 200)
        heard = labc.call("probe.stats")["heard"][before:]
        self.assertEqual(heard, [[i] for i in range(200)])

    def test_a_runtime_as_context_manager_then_closed(self):
        with self.world.runtime(**{"call.timeout": 5}) as rt:
            self.assertEqual(rt.call("echo", "own"), "own")
        with self.assertRaises(ClosedError):
            rt.call("echo", "again")
        with self.assertRaises(ClosedError):
            rt.publish("lab.ts.x", 1)

    def test_close_then_use(self):
        labc.call("echo", 1)
        old = labc.runtime()
        labc.close()
        with self.assertRaises(ClosedError):
            old.call("echo", 1)
        # The package's functions make a new one after close(), as a notebook expects.
        self.assertEqual(labc.call("echo", 2), 2)


class TypeScriptCallsPython(support.WorldTestCase):
    """A Python server (SERVER_PY) called by `labc call`, TypeScript scripts and the test process."""

    @classmethod
    def setUpWorld(cls):
        cls.server = cls.world.python_start(SERVER_PY, ready="READY")
        cls.queue_member = cls.world.ts_serve(cls.world.ts_service("QueueMember", """
          queued = 0;
          @subscribe("lab.q", { group: "workers" })
          work(n: number) { this.queued++; }
          @register()
          tsQueued() { return this.queued; }
        """))

    def cli_json(self, *args):
        result = self.world.cli(*args)
        self.assertEqual(result.code, 0, result)
        return result.output.strip()

    def test_labc_call_reaches_functions_and_methods(self):
        self.assertEqual(self.cli_json("call", "py_add", "2", "40"), "42")
        self.assertEqual(self.cli_json("call", "power_supply.set_voltage", "3.3"), "3.3")
        self.assertEqual(self.cli_json("call", "power_supply.voltage"), "3.3")

    def test_labc_call_reads_a_python_generator(self):
        self.assertEqual(self.cli_json("call", "numbers", "5").splitlines(), ["0", "1", "2", "3", "4"])

    def test_labc_call_gets_a_python_error(self):
        result = self.world.cli("call", "py_fail", '"missing"')
        self.assertNotEqual(result.code, 0)
        self.assertIn("'missing' [LABC_REMOTE_ERROR]", result.output)

    def test_typescript_script_calls_python(self):
        seen = ts_json(self.world.ts_script("""
            const sum = await labc.call("py_add", 1.5, 2);
            const who = await labc.callWith("py.whoami", [], { timeoutMs: 7000 });
            const items = [];
            for await (const item of labc.stream("numbers", 1000)) items.push(item);
            let error = null;
            try { await labc.call("py_fail", "k"); } catch (e) { error = { name: e.name, remoteName: e.remoteName, code: e.code, message: e.message }; }
            const bytes = await labc.call("py_add", new Uint8Array([1, 2]), new Uint8Array([3]));
            console.log(JSON.stringify({ sum, who, items: items.length, ordered: items.every((v, i) => v === i), error,
                                         bytes: Array.from(bytes), pid: process.pid }));
        """))
        self.assertEqual(seen["sum"], 3.5)
        self.assertEqual((seen["who"]["host"], seen["who"]["pid"]), (self.world.name, seen["pid"]))
        self.assertEqual(seen["who"]["function"], "py.whoami")
        self.assertTrue(5 < seen["who"]["left"] <= 7, seen["who"])
        self.assertEqual((seen["items"], seen["ordered"]), (1000, True))
        self.assertEqual((seen["error"]["name"], seen["error"]["remoteName"]), ("RemoteError", "KeyError"))
        self.assertIn("k", seen["error"]["message"])
        self.assertEqual(seen["bytes"], [1, 2, 3])

    def test_context_of_a_python_caller(self):
        seen = labc.call_with("py.whoami", [], timeout=4)
        self.assertEqual((seen["pid"], seen["host"]), (os.getpid(), self.world.name))
        self.assertEqual(seen["id"], labc.runtime().identity["id"])
        self.assertTrue(2 < seen["left"] <= 4, seen)
        with self.assertRaises(labc.NoCallContextError):
            labc.context()

    def test_exclusive_runs_one_at_a_time_in_order_while_others_answer(self):
        seen = ts_json(self.world.ts_script("""
            const calls = [1, 2, 3, 4, 5].map((v) => labc.call("power_supply.set_voltage", v));
            await new Promise((done) => setTimeout(done, 100));
            const t = Date.now();
            const quick = await labc.call("py_add", 1, 1);
            const other = await labc.call("power_supply.voltage");
            const quickMs = Date.now() - t;
            const results = await Promise.all(calls);
            const report = await labc.call("power_supply.report");
            console.log(JSON.stringify({ results, report, quick, quickMs, other }));
        """))
        self.assertEqual(seen["results"], [1, 2, 3, 4, 5])
        self.assertEqual(seen["report"]["order"][-5:], [1, 2, 3, 4, 5])
        self.assertEqual(seen["report"]["most"], 1)
        self.assertEqual(seen["quick"], 2)
        # The exclusive calls take 5 x 150 ms; the others answered while they ran.
        self.assertLess(seen["quickMs"], 400)
        self.assertLess(seen["other"], 5)

    def test_typescript_publishes_python_hears(self):
        before = len(labc.call("heard")["heard"])
        self.assertEqual(self.world.cli("publish", "lab.py.cli", '{"x":1}').code, 0)
        seen = ts_json(self.world.ts_script("""
            const reached = await labc.publish("lab.py.script", 2, "three");
            const answer = await labc.reqpub("lab.pyask", 5);
            console.log(JSON.stringify({ reached, answer }));
        """))
        self.assertEqual(seen, {"reached": 1, "answer": 105})
        heard = support.within(5, "both publications heard", lambda: (lambda h: h if len(h) >= before + 2 else None)(labc.call("heard")["heard"]))
        self.assertEqual(heard[before:], [["lab.py.cli", {"x": 1}], ["lab.py.script", 2, "three"]])

    def test_queue_group_across_languages(self):
        py0, ts0 = labc.call("heard")["queued"], labc.call("queue_member.tsQueued")
        for i in range(20):
            self.assertEqual(labc.publish("lab.q", i), 1)
        result = self.world.ts_script("for (let i = 0; i < 20; i++) await labc.publish('lab.q', i);")
        self.assertEqual(result.code, 0, result)

        def counts():
            py, ts = labc.call("heard")["queued"] - py0, labc.call("queue_member.tsQueued") - ts0
            return (py, ts) if py + ts >= 40 else None

        py, ts = support.within(5, "40 queued publications", counts)
        self.assertEqual(py + ts, 40)  # each went to one member only
        self.assertGreater(py, 5)
        self.assertGreater(ts, 5)

    def test_reqpub_from_python_to_python(self):
        self.assertEqual(labc.reqpub("lab.pyask", 1), 101)

    def test_stream_of_100000_in_order_with_a_slow_reader(self):
        window = 64
        expected = 0
        checked = []
        with labc.stream("numbers", 100_000, window=window) as items:
            for item in items:
                self.assertEqual(item, expected)
                expected += 1
                if expected in (10, 1000, 50_000, 99_990):
                    time.sleep(0.3)  # a slow reader: the producer must wait for it
                    produced = labc.call("produced")
                    checked.append(produced - expected)
                    self.assertLessEqual(produced, expected + window, f"the producer ran {produced - expected} items ahead")
        self.assertEqual(expected, 100_000)
        # It was held back by the reader, not done long before.
        self.assertLess(checked[0], window + 1)
        self.assertGreater(checked[0], 0)

    def test_break_cancels_the_producer(self):
        for item in labc.stream("ticker"):
            if item == 50:
                break
        support.within(3, "the generator's finally ran", lambda: labc.call("ticker_closed"))

    def test_ctrl_c_cancels_the_call_on_the_server(self):
        caller = self.world.python_start("""
            import labc, sys
            labc.call("py_add", 0, 0)
            print("CALLING", flush=True)
            try:
                labc.call("hold", 20)
            except KeyboardInterrupt:
                print("INTERRUPTED", flush=True)
        """, ready="CALLING")
        support.within(10, "the call is running", lambda: (labc.call("hold_state") or {}).get("started"))
        caller.signal(signal.SIGINT)
        caller.wait_for("INTERRUPTED", 5)
        support.within(2, "the server saw the cancel", lambda: labc.call("hold_state")["cancelled"])

    def test_a_timeout_cancels_the_call_on_the_server(self):
        with self.assertRaises(CallTimeout):
            labc.call_with("hold", [20], timeout=0.5)
        support.within(2, "the server saw the cancel", lambda: labc.call("hold_state")["cancelled"])

    def test_publish_then_exit_delivers(self):
        before = len(labc.call("heard")["heard"])
        done = self.world.python_run("""
            import labc
            print(labc.publish("lab.py.last", list(range(1000)), b"x" * 100000))
        """)
        self.assertEqual((done.code, done.output.strip()), (0, "1"))
        heard = support.within(5, "the last publication heard", lambda: (lambda h: h if len(h) > before else None)(labc.call("heard")["heard"]))
        self.assertEqual(heard[before], ["lab.py.last", list(range(1000)), b"x" * 100000])


#: A server of its own for the tests that stop or kill it.
WORKER_PY = r"""
import time, labc

started = 0

@labc.register
def work_started():
    return started

@labc.register
def slow_work(seconds):
    global started
    started += 1
    time.sleep(seconds)
    return f"slept {seconds}"

print("READY", flush=True)
labc.serve()
print("STOPPED", flush=True)
"""


class ServersThatStop(support.WorldTestCase):
    def setUp(self):
        super().setUp()
        self.worker = self.world.python_start(WORKER_PY, ready="READY")
        support.within(10, "the worker serves", lambda: self._offers("slow_work"))

    def _offers(self, name):
        return any(name in [f["name"] for f in s["functions"]] and s["pid"] == self.worker.pid for s in labc.servers())

    def _call_in_background(self, *args):
        outcome = {}

        def run():
            try:
                outcome["value"] = labc.call(*args)
            except BaseException as error:  # noqa: BLE001 - what the caller got is the test's subject
                outcome["error"] = error
            outcome["at"] = time.monotonic()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        support.within(10, "the call started", lambda: labc.call("work_started") >= 1)
        return thread, outcome

    def test_killed_mid_call_the_caller_knows_within_a_second(self):
        thread, outcome = self._call_in_background("slow_work", 20)
        killed_at = time.monotonic()
        self.worker.signal(signal.SIGKILL)
        thread.join(5)
        self.assertIsInstance(outcome.get("error"), ConnectionLostError, outcome)
        self.assertLess(outcome["at"] - killed_at, 1.0)

    def test_sigterm_answers_the_call_in_flight(self):
        thread, outcome = self._call_in_background("slow_work", 1.5)
        self.worker.signal(signal.SIGTERM)
        thread.join(10)
        self.assertEqual(outcome.get("value"), "slept 1.5", outcome)
        self.assertEqual(self.worker.wait(10), 0, self.worker.output())
        self.assertIn("STOPPED", self.worker.output())
        # It left the pool: nothing offers the function any more.
        support.within(5, "the function withdrawn", lambda: not self._offers("slow_work"))
        with self.assertRaises(NoSuchFunctionError):
            labc.call("slow_work", 0)


class RouterRestarts(support.WorldTestCase):
    """The router goes away under a Python server: the server starts another and registers again."""

    def test_a_python_server_outlives_its_router(self):
        server = self.world.python_start("""
            import os, labc
            @labc.register
            def served_by():
                return os.getpid()
            labc.serve(block=False)
            print("READY", flush=True)
            labc.runtime().wait()
        """, ready="READY")
        self.assertEqual(labc.call("served_by"), server.pid)
        router = self.world.router_pid()
        self.assertIsInstance(router, int)
        support.end_pid(router)
        # The server's link notices, starts a router with LABC_COMMAND, and registers again.
        def new_router():
            pid = self.world._listener_pid()
            return pid if pid and pid != router else None

        support.within(10, "a new router", new_router)
        self.world.note_router()
        cli = support.within(15, "the server registered again", lambda: (lambda r: r if r.code == 0 else None)(self.world.cli("call", "served_by")))
        self.assertEqual(cli.output.strip(), str(server.pid))
        self.assertEqual(support.within(10, "this process's link again", lambda: labc.call("served_by")), server.pid)


class WithoutRouter(unittest.TestCase):
    """No router runs and none can be started: one line says how to install it."""

    def check(self, env):
        world = support.World("norouter", env)
        self.addCleanup(world.close)
        path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                               if p and not os.path.exists(os.path.join(p, "labc")))
        result = world.python_run("""
            import labc
            try:
                labc.call("echo", 1)
            except labc.RouterUnavailableError as error:
                print("ERROR", error)
        """, env={"PATH": path, **env})
        self.assertEqual(result.code, 0, result)
        self.assertIn("ERROR", result.output)
        self.assertIn("npm install -g labc", result.output)
        self.assertEqual(result.output.count("\n"), 1, result.output)

    def test_no_labc_on_the_path(self):
        self.check({"LABC_COMMAND": ""})

    def test_labc_command_pointing_nowhere(self):
        self.check({"LABC_COMMAND": "/nonexistent/bin/labc"})


if __name__ == "__main__":
    unittest.main()

"""labc.aio against a real router and a TypeScript server (services/echo.ts and
tests/fixtures/aio_probe.ts), on loopback: concurrent calls, streams with async for, cancellation,
an async def served on the test's own event loop, and an event loop that is never blocked."""

import asyncio
import gc
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from support import free_port  # below the ephemeral range: a router started there can bind

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

import labc  # noqa: E402
import labc.aio  # noqa: E402

CLI = os.path.join(REPO, "bin", "labc.js")
PROBE = os.path.join(REPO, "clients", "python", "tests", "fixtures", "aio_probe.ts")
_host = {}


def setUpModule():
    folder = tempfile.mkdtemp(prefix="labc-aio-")
    _host["dir"] = folder
    _host["saved"] = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "LABC_ROUTER_PORT",
                                                     "LABC_DISCOVERY_ENABLED", "LABC_COMMAND", "LABC_ROUTER_LINGER")}
    os.environ.update({"XDG_CONFIG_HOME": folder, "XDG_STATE_HOME": folder, "XDG_CACHE_HOME": folder,
                       "LABC_ROUTER_PORT": str(free_port()), "LABC_DISCOVERY_ENABLED": "false",
                       "LABC_COMMAND": f"node {CLI}", "LABC_ROUTER_LINGER": "1"})
    served = subprocess.Popen(["node", CLI, "serve", os.path.join(REPO, "services", "echo.ts"), PROBE], cwd=folder,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _host["served"] = served
    line = served.stdout.readline()
    found = re.search(r"router on port \d+, pid (\d+)", line)
    if not found:
        served.kill()
        raise RuntimeError(f"labc serve did not start: {line!r} {served.stderr.read()}")
    _host["router_pid"] = int(found.group(1))
    # The rest of its output is read, so that it never blocks on a full pipe.
    threading.Thread(target=lambda: served.stdout.read(), daemon=True).start()
    threading.Thread(target=lambda: served.stderr.read(), daemon=True).start()


def tearDownModule():
    labc.close()
    served = _host.get("served")
    if served is not None:
        served.send_signal(signal.SIGTERM)
        try:
            served.wait(10)
        except subprocess.TimeoutExpired:
            served.kill()
            served.wait()
    router = _host.get("router_pid")
    if router:
        try:
            os.kill(router, signal.SIGTERM)
        except ProcessLookupError:
            pass  # it lingered out already
    for key, value in _host.get("saved", {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    shutil.rmtree(_host.get("dir", ""), ignore_errors=True)


async def cli(*args: str, timeout: float = 20) -> tuple:
    """Runs the labc CLI without blocking the loop: (exit code, stdout, stderr)."""
    child = await asyncio.create_subprocess_exec("node", CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                 cwd=_host["dir"])
    out, err = await asyncio.wait_for(child.communicate(), timeout)
    return child.returncode, out.decode(), err.decode()


async def until(predicate, seconds: float = 3.0):
    """Awaits ``predicate()`` (a coroutine function) until true; returns its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = await predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.02)


class Calls(unittest.IsolatedAsyncioTestCase):
    async def test_a_call_and_its_options(self):
        self.assertEqual(await labc.aio.call("echo", "hi"), "hi")
        self.assertEqual(await labc.aio.call_with("add", [1, 2], timeout=5), 3)
        self.assertEqual(await labc.aio.call("echo", {"b": b"\x00\xff", "n": [1, 2.5, None]}), {"b": b"\x00\xff", "n": [1, 2.5, None]})
        with self.assertRaises(labc.NoSuchFunctionError):
            await labc.aio.call("no_such_function")
        with self.assertRaises(labc.NoSuchHostError):
            await labc.aio.call_with("echo", ["x"], host="no-such-host")

    async def test_1000_concurrent_calls(self):
        started = time.perf_counter()
        results = await asyncio.gather(*(labc.aio.call("echo", i) for i in range(1000)))
        self.assertEqual(results, list(range(1000)))
        print(f"\n  1000 concurrent aio calls: {(time.perf_counter() - started) * 1000:.0f} ms", file=sys.stderr)

    async def test_a_cancelled_task_cancels_its_call_on_the_server(self):
        before = await labc.aio.call("aio_probe.callsCancelled")
        task = asyncio.ensure_future(labc.aio.call("aio_probe.sleep", 10_000))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertLess(time.monotonic() - started, 0.1)

        async def told():
            return await labc.aio.call("aio_probe.callsCancelled") == before + 1

        self.assertTrue(await until(told), "the server's call was not cancelled")

    async def test_a_timeout_raises_CallTimeout_and_cancels_the_call(self):
        before = await labc.aio.call("aio_probe.callsCancelled")
        started = time.monotonic()
        with self.assertRaises(labc.CallTimeout) as raised:
            await labc.aio.call_with("aio_probe.sleep", [10_000], timeout=0.3)
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertIn('call to "aio_probe.sleep"', str(raised.exception))

        async def told():
            return await labc.aio.call("aio_probe.callsCancelled") > before

        self.assertTrue(await until(told))

    async def test_the_loop_is_never_blocked(self):
        # unittest runs the loop in debug mode, which costs every task far more than labc does.
        asyncio.get_running_loop().set_debug(False)
        await labc.aio.call("echo", "warm")  # connected: no call below leaves the loop's thread
        gaps = []
        running = True

        async def ticker():
            last = time.perf_counter()
            while running:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        # A full collection of this test process's heap (tens of ms, whoever allocated last) is
        # not labc holding the loop: collected before, and not during, the ~100 ms measured.
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)
        ticking = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.02)
        for _ in range(3):
            results = await asyncio.gather(*(labc.aio.call("echo", i) for i in range(100)))
            self.assertEqual(results, list(range(100)))
        # 100 calls of 100 ms each: if a call held the loop until its answer, they would take 10 s,
        # and the ticker would miss 100 ms at a time.
        started = time.perf_counter()
        slept = await asyncio.gather(*(labc.aio.call("aio_probe.sleep", 100) for _ in range(100)))
        elapsed = time.perf_counter() - started
        self.assertEqual(slept, ["slept"] * 100)
        running = False
        await ticking
        gc.enable()
        worst, median = max(gaps) * 1000, sorted(gaps)[len(gaps) // 2] * 1000
        print(f"\n  ticker during 3 x 100 echo calls and 100 calls of 100 ms ({elapsed * 1000:.0f} ms): {len(gaps)} ticks, "
              f"median gap {median:.1f} ms, worst {worst:.1f} ms", file=sys.stderr)
        self.assertLess(elapsed, 2.0)
        # asyncio.sleep(0.001) itself takes ~1.1 ms. Starting 100 calls in one loop step is a few
        # ms of Python work (sharing the GIL with the I/O thread), not a wait; the rest of the
        # worst gap is the machine's scheduler (on 2 cores shared with other suites' tests, up to
        # ~40 ms was seen). A call that held the loop would show 100 ms at least.
        self.assertLess(median, 3.0)
        self.assertLess(worst, 80.0)

    async def test_publish_reqpub_hosts(self):
        self.assertEqual(await labc.aio.publish("lab.print", "from asyncio"), 1)
        self.assertEqual(await labc.aio.publish("nobody.listens", 1), 0)
        hosts = await labc.aio.hosts()
        self.assertEqual([h["state"] for h in hosts], ["self"])
        self.assertEqual(hosts[0]["hostId"], labc.runtime().link.host_id)
        self.assertEqual(await labc.aio.reqpub("lab.print", "answer me"), None)


class Streams(unittest.IsolatedAsyncioTestCase):
    async def test_every_item_in_order_with_a_small_window(self):
        got = [item async for item in labc.aio.stream("aio_probe.count", 1000, window=8)]
        self.assertEqual(got, list(range(1000)))

    async def test_break_cancels_the_producer(self):
        before = await labc.aio.call("aio_probe.streamsClosed")
        got = []
        async for item in labc.aio.stream("aio_probe.count", 10_000_000, window=16):
            got.append(item)
            if item == 9:
                break
        self.assertEqual(got, list(range(10)))

        async def closed():
            return await labc.aio.call("aio_probe.streamsClosed") == before + 1

        self.assertTrue(await until(closed), "the producer was not cancelled by break")

    async def test_aclose_and_async_with_cancel_the_producer(self):
        before = await labc.aio.call("aio_probe.streamsClosed")
        items = labc.aio.stream("aio_probe.count", 10_000_000)
        self.assertEqual([await items.__anext__() for _ in range(3)], [0, 1, 2])
        await items.aclose()
        with self.assertRaises(StopAsyncIteration):
            await items.__anext__()
        async with labc.aio.stream("aio_probe.count", 10_000_000) as other:
            async for item in other:
                if item == 2:
                    break

        async def closed():
            return await labc.aio.call("aio_probe.streamsClosed") == before + 2

        self.assertTrue(await until(closed))

    async def test_a_cancelled_reader_cancels_the_producer(self):
        before = await labc.aio.call("aio_probe.callsCancelled")
        came = []

        async def read():
            async for item in labc.aio.stream("aio_probe.sleep", 10_000):  # one value, after 10 s
                came.append(item)

        task = asyncio.ensure_future(read())
        await asyncio.sleep(0.3)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertEqual(came, [])

        async def told():
            return await labc.aio.call("aio_probe.callsCancelled") == before + 1

        self.assertTrue(await until(told), "the producer was not cancelled with its reader")


class Serving(unittest.IsolatedAsyncioTestCase):
    async def test_an_async_def_served_runs_on_this_loop_and_typescript_calls_it(self):
        loop = asyncio.get_running_loop()
        ran_on = []
        slow_started = asyncio.Event()

        @labc.register
        async def py_async_add(a: float, b: float) -> float:
            ran_on.append((asyncio.get_running_loop(), threading.current_thread()))
            await asyncio.sleep(0.01)
            return a + b

        @labc.register
        async def py_async_caller() -> str:
            return labc.context().caller.host if labc.context().caller else ""

        @labc.register
        async def py_async_ticks(n: int):
            for i in range(n):
                await asyncio.sleep(0)
                yield i

        @labc.register
        async def py_async_slow() -> str:
            slow_started.set()
            await asyncio.sleep(0.5)
            return "done"

        serving = asyncio.ensure_future(labc.aio.serve())

        async def offered():
            code, out, _ = await cli("ls")
            return "py_async_add" in out

        self.assertTrue(await until(offered, 10), "the Python server did not register")
        code, out, err = await cli("call", "py_async_add", "2", "3")
        self.assertEqual((code, out), (0, "5\n"), err)
        self.assertEqual(ran_on, [(loop, threading.current_thread())])
        code, out, err = await cli("call", "py_async_caller")
        self.assertEqual((code, out.strip()), (0, socket.gethostname()), err)
        code, out, err = await cli("call", "py_async_ticks", "3")
        self.assertEqual((code, out), (0, "0\n1\n2\n"), err)
        # Cancelling serve stops it without losing a call: the one running is answered first.
        slow = asyncio.ensure_future(cli("call", "py_async_slow"))
        await asyncio.wait_for(slow_started.wait(), 10)
        serving.cancel()
        self.assertIsNone(await serving)
        self.assertEqual((await slow)[:2], (0, "done\n"))
        code, out, err = await cli("call", "py_async_add", "2", "3")
        self.assertNotEqual(code, 0)
        self.assertIn("LABC_NO_SUCH_FUNCTION", err)
        # labc goes on after serve: a fresh runtime.
        self.assertEqual(await labc.aio.call("echo", "after"), "after")

    def test_a_script_serving_with_asyncio_run_stops_cleanly_on_sigterm_and_ctrl_c(self):
        script = (
            "import asyncio, labc, labc.aio\n"
            "@labc.register\n"
            "async def py_script_{n}(x):\n"
            "    return x * 2\n"
            "asyncio.run(labc.aio.serve())\n"
            "print('served and returned', flush=True)\n"
        )
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "clients", "python"))
        for n, sig in enumerate((signal.SIGTERM, signal.SIGINT)):
            with self.subTest(signal=sig.name):
                child = subprocess.Popen([sys.executable, "-c", script.format(n=n)], env=env, cwd=_host["dir"],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                try:
                    deadline = time.monotonic() + 15
                    while True:
                        done = subprocess.run(["node", CLI, "call", f"py_script_{n}", "21"], capture_output=True, text=True, timeout=20, cwd=_host["dir"])
                        if done.returncode == 0 or time.monotonic() > deadline:
                            break
                        time.sleep(0.1)
                    self.assertEqual(done.stdout, "42\n", done.stderr)
                    child.send_signal(sig)
                    out, err = child.communicate(timeout=20)
                finally:
                    if child.poll() is None:
                        child.kill()
                        child.wait()
                self.assertEqual((child.returncode, out), (0, "served and returned\n"), err)


class Jupyter(unittest.TestCase):
    def test_top_level_await_in_a_running_loop(self):
        """What a notebook cell does, in `python -m asyncio` (a loop running in the main thread,
        top-level await typed at it)."""
        code = "import labc.aio\nprint('got', await labc.aio.call('echo', 'from a cell'))\n"
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "clients", "python"))
        done = subprocess.run([sys.executable, "-m", "asyncio"], input=code, capture_output=True, text=True, timeout=30, env=env, cwd=_host["dir"])
        self.assertIn("got from a cell", done.stdout + done.stderr, done.stderr)


if __name__ == "__main__":
    unittest.main()

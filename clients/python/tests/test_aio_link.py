"""labc.aio's calls read by the event loop itself (labc/aio_link.py), against real processes on
loopback: many calls in flight, streams and calls mixed on one connection, cancelling some of
many, a server killed or leaving with calls in flight, a blocking call made from the loop's own
thread or another while the loop reads, and loops that end leaving no descriptor behind."""

import asyncio
import gc
import os
import signal
import threading
import time
import unittest
import weakref
from unittest import mock

import support

import labc  # noqa: E402  (support put this checkout's labc first)
import labc.aio  # noqa: E402
from labc.aio_deadlines import PRUNE_AT, Deadlines  # noqa: E402
from labc.aio_inbox import Expired  # noqa: E402
from labc.aio_link import link_of  # noqa: E402

PROBE = str(support.PYTHON_ROOT / "tests" / "fixtures" / "aio_probe.ts")

#: A Python server of its own, for the tests that kill it or make it leave.
WORKER_PY = r"""
import time, labc

@labc.register
def nap(seconds, tag):
    time.sleep(seconds)
    return tag

@labc.register
def refuse(why):
    raise ValueError(why)

print("READY", flush=True)
labc.serve()
print("STOPPED", flush=True)
"""


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def the_link(name: str):
    """The LoopLink of the connection ``name``'s calls go on, for the running loop."""
    plan = labc.runtime().calls.plan_now(name)
    return link_of(asyncio.get_running_loop(), plan.route.connection)


class LoopReads(support.WorldTestCase):
    @classmethod
    def setUpWorld(cls):
        cls.served = cls.world.ts_serve("services/echo.ts", PROBE)

    def test_many_calls_in_flight_then_the_reading_is_given_back(self):
        async def main():
            await labc.aio.call("echo", "warm")
            link = the_link("echo")
            connection = link.connection
            seen = []

            async def task(n):
                got = []
                for i in range(50):
                    got.append(await labc.aio.call("echo", [n, i]))
                    seen.append(connection._loop_holder is link)
                return got

            results = await asyncio.gather(*(task(n) for n in range(200)))
            self.assertEqual(results, [[[n, i] for i in range(50)] for n in range(200)])
            self.assertGreater(sum(seen) / len(seen), 0.9, "the loop did not read its answers itself")
            self.assertEqual((link.waiting, connection._loop_holder), (0, None))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            self.assertEqual(link._fd, -1, "the loop still watches the socket once idle")
            # labc's I/O thread reads the connection again (a blocking call, a notice).
            self.assertEqual(await asyncio.get_running_loop().run_in_executor(None, labc.call, "echo", "threaded"), "threaded")

        asyncio.run(main())

    def test_streams_and_calls_mixed_on_one_connection(self):
        async def main():
            async def read(n):
                return [item async for item in labc.aio.stream("aio_probe.count", n, window=4)]

            async def calls(n):
                return [await labc.aio.call("echo", i) for i in range(n)]

            got = await asyncio.gather(read(300), calls(300), read(50), calls(100), *(labc.aio.call("echo", i) for i in range(500)))
            self.assertEqual(got[:4], [list(range(300)), list(range(300)), list(range(50)), list(range(100))])
            self.assertEqual(got[4:], list(range(500)))

        asyncio.run(main())

    def test_cancelling_some_of_many_calls(self):
        async def main():
            before = await labc.aio.call("aio_probe.callsCancelled")
            slow = [asyncio.ensure_future(labc.aio.call("aio_probe.sleep", 10_000)) for _ in range(20)]
            fast = [asyncio.ensure_future(labc.aio.call("aio_probe.sleep", 200)) for _ in range(20)]
            await asyncio.sleep(0.05)
            for task in slow:
                task.cancel()
            self.assertEqual(await asyncio.gather(*fast), ["slept"] * 20)
            for task in slow:
                with self.assertRaises(asyncio.CancelledError):
                    await task

            async def told():
                return await labc.aio.call("aio_probe.callsCancelled") == before + 20

            deadline = time.monotonic() + 5
            while not await told() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            self.assertTrue(await told(), "the server's calls were not all cancelled")
            self.assertEqual(the_link("echo").waiting, 0)

        asyncio.run(main())

    def test_a_blocking_call_from_the_loops_own_thread_while_it_reads(self):
        async def main():
            await labc.aio.call("aio_probe.sleep", 1)
            slow = [asyncio.ensure_future(labc.aio.call("aio_probe.sleep", 300)) for _ in range(10)]
            await asyncio.sleep(0.05)  # sent: the loop holds the reading
            started = time.monotonic()
            self.assertEqual(labc.call("aio_probe.sleep", 1), "slept")  # blocks this very loop
            self.assertLess(time.monotonic() - started, 1.0)
            self.assertEqual(await asyncio.gather(*slow), ["slept"] * 10)
            self.assertEqual(await labc.aio.call("echo", "after"), "after")

        asyncio.run(main())

    def test_blocking_calls_from_other_threads_while_the_loop_reads(self):
        results = []

        def calls():
            results.extend(labc.call("echo", i) for i in range(300))

        async def main():
            await labc.aio.call("echo", "warm")
            thread = threading.Thread(target=calls)
            thread.start()
            got = await asyncio.gather(*(labc.aio.call("echo", i) for i in range(3000)))
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 20)
            return got

        self.assertEqual(asyncio.run(main()), list(range(3000)))
        self.assertEqual(results, list(range(300)))

    def test_timeouts_and_arguments_that_cannot_be_sent(self):
        async def main(face):
            before = await face.call("aio_probe.callsCancelled")
            started = time.monotonic()
            with self.assertRaises(labc.CallTimeout) as raised:
                await face.call("aio_probe.sleep", 10_000)  # the planned way, with call.timeout
            self.assertLess(time.monotonic() - started, 1.0)
            self.assertIn('call to "aio_probe.sleep"', str(raised.exception))
            with self.assertRaises(labc.CallTimeout):
                await face.call_with("aio_probe.sleep", [10_000], timeout=0.2)  # with options
            with self.assertRaises(labc.BadArgumentsError):
                await face.call("echo", object())
            with self.assertRaises(labc.BadArgumentsError):
                await face.call_with("echo", [object()], timeout=5)
            self.assertEqual(await face.call("echo", "still fine"), "still fine")
            link = link_of(asyncio.get_running_loop(), face.rt.calls.plan_now("echo").route.connection)
            self.assertEqual((link.waiting, link.connection._pending), (0, {}))
            deadline = time.monotonic() + 5
            while await face.call("aio_probe.callsCancelled") < before + 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            self.assertEqual(await face.call("aio_probe.callsCancelled"), before + 2)

        with self.world.runtime(**{"call.timeout": 0.3}) as rt:
            asyncio.run(main(labc.aio.AioRuntime(rt)))

    def test_a_loop_that_cannot_watch_the_socket_is_answered_by_the_io_thread(self):
        async def main():
            await labc.aio.call("echo", "connected")
            with mock.patch("labc.aio_link.os.dup", side_effect=OSError(24, "Too many open files")):
                got = await asyncio.wait_for(asyncio.gather(*(labc.aio.call("echo", i) for i in range(200))), 10)
                link = the_link("echo")
                self.assertEqual((link._fd, link.connection._loop_holder), (-1, None))
            return got

        self.assertEqual(asyncio.run(main()), list(range(200)))

    def test_loops_that_end_leave_no_descriptor_and_are_collected(self):
        async def main():
            await asyncio.gather(*(labc.aio.call("echo", i) for i in range(50)))
            return weakref.ref(asyncio.get_running_loop())

        asyncio.run(main())  # connected, the first descriptors opened
        before = open_fds()
        loops = [asyncio.run(main()) for _ in range(20)]
        gc.collect()
        self.assertLessEqual(open_fds(), before)
        self.assertEqual([ref for ref in loops if ref() is not None], [])


class DeadlinesOnOneTimer(unittest.TestCase):
    def test_calls_expire_in_time_on_one_timer_or_their_own(self):
        async def main():
            loop = asyncio.get_running_loop()
            deadlines = Deadlines()
            futures = [loop.create_future() for _ in range(4)]
            started = loop.time()
            timers = [deadlines.add(loop, future, 0.15) for future in futures[:3]]
            self.assertEqual(timers, [None, None, None])  # in order: on the shared timer
            futures[1].set_result("answered")
            own = deadlines.add(loop, futures[3], 0.05)  # due before the last queued
            self.assertIsNotNone(own)
            expired_at = {}
            for i, future in enumerate(futures):
                future.add_done_callback(lambda f, i=i: expired_at.setdefault(i, loop.time() - started))
            await asyncio.wait(futures)
            self.assertEqual([type(f.exception()) if i != 1 else f.result() for i, f in enumerate(futures)],
                             [Expired, "answered", Expired, Expired])
            self.assertLess(expired_at[3], 0.12)
            for i in (0, 2):
                self.assertGreaterEqual(expired_at[i], 0.149)
                self.assertLess(expired_at[i], 0.5)
            self.assertIsNone(deadlines._timer)

        asyncio.run(main())

    def test_answered_calls_do_not_pile_up_behind_one_that_waits(self):
        async def main():
            loop = asyncio.get_running_loop()
            deadlines = Deadlines()
            slow = loop.create_future()
            deadlines.add(loop, slow, 30)
            for _ in range(20 * PRUNE_AT):
                future = loop.create_future()
                deadlines.add(loop, future, 30)
                future.set_result(None)
            self.assertLessEqual(len(deadlines._queue), PRUNE_AT + 1)
            deadlines.clear()
            self.assertEqual((len(deadlines._queue), deadlines._timer), (0, None))
            slow.cancel()

        asyncio.run(main())


class ServersThatGo(support.WorldTestCase):
    def setUp(self):
        super().setUp()
        self.worker = self.world.python_start(WORKER_PY, ready="READY")
        support.within(10, "the worker serves", lambda: any(s["pid"] == self.worker.pid for s in labc.servers()))

    def test_a_python_exception_comes_back_as_a_remote_error(self):
        async def main():
            calls = [labc.aio.call("refuse", f"no {i}") if i % 2 else labc.aio.call("nap", 0, i) for i in range(100)]
            return await asyncio.gather(*calls, return_exceptions=True)

        outcomes = asyncio.run(main())
        self.assertEqual(outcomes[::2], list(range(0, 100, 2)))
        for i, error in list(enumerate(outcomes))[1::2]:
            self.assertIsInstance(error, labc.RemoteError)
            self.assertEqual((error.remote_name, str(error).endswith(f"no {i}")), ("ValueError", True), str(error))

    def test_killed_with_calls_in_flight_every_call_fails_within_a_second(self):
        async def main():
            self.assertEqual(await labc.aio.call("nap", 0, "warm"), "warm")
            calls = [asyncio.ensure_future(labc.aio.call("nap", 20, i)) for i in range(50)]
            await asyncio.sleep(0.3)
            killed_at = time.monotonic()
            self.worker.signal(signal.SIGKILL)
            outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
            return outcomes, time.monotonic() - killed_at

        outcomes, took = asyncio.run(main())
        self.assertEqual([type(o) for o in outcomes], [labc.ConnectionLostError] * 50)
        self.assertLess(took, 1.0)

    def test_leaving_with_calls_in_flight_answers_them(self):
        async def main():
            self.assertEqual(await labc.aio.call("nap", 0, "warm"), "warm")
            calls = [asyncio.ensure_future(labc.aio.call("nap", 1, i)) for i in range(8)]
            await asyncio.sleep(0.3)
            self.worker.signal(signal.SIGTERM)  # its death notice comes while the loop reads
            return await asyncio.wait_for(asyncio.gather(*calls), 20)

        self.assertEqual(asyncio.run(main()), list(range(8)))
        self.assertEqual(self.worker.wait(10), 0, self.worker.output())
        self.assertIn("STOPPED", self.worker.output())


if __name__ == "__main__":
    unittest.main()

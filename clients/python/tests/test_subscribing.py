"""A Python subscriber under a flood, with real processes on loopback: 50 000 publications from a
TypeScript and from a Python publisher at once, every one heard, each publisher's in order, the
subscriber never running two at a time (server_publications.py's kept matches, in_order.py's
hand-off without a lock); a subscriber that raises, logged, the others going on; a slow
subscriber slowing its publisher (the reading paused: backpressure); the kept matches following
a subscriber added later. Unit checks of InOrder at the end.
"""

from __future__ import annotations

import json
import os
import threading
import time
import unittest

import support  # noqa: F401  (puts this checkout's labc first on sys.path)
from labc.in_order import InOrder

FLOOD = 50000

#: Hears lab.sub.flood from publishers named by args[0] ("ts", "py"), args[1] counting from 0;
#: every 10 000th raises (logged, not fatal). Prints SERVED, COUNT every 1000, then a summary once
#: it heard `want`; adds a second subscriber of the topic once the file argv[2] (if any) exists.
PY_SUBSCRIBER = """
import json, os, sys, threading, time, labc

want = int(sys.argv[1])
seen, done = {}, threading.Event()
state = {"running": 0, "overlap": 0, "count": 0, "late": 0}

@labc.subscribe("lab.sub.flood")
def heard(source, n):
    if n < 0:
        return  # a publisher's probe
    state["running"] += 1
    if state["running"] > 1:
        state["overlap"] += 1
    seen.setdefault(source, []).append(n)
    state["count"] += 1
    state["running"] -= 1
    if state["count"] % 1000 == 0:
        print("COUNT", state["count"], flush=True)
    if state["count"] == want:
        done.set()
    if n % 10000 == 9999:
        raise ValueError(f"the subscriber fails on {n}, on purpose")

labc.serve(block=False)
print("SERVED", flush=True)
flag = sys.argv[2] if len(sys.argv) > 2 else None
deadline = time.monotonic() + 60
while not done.is_set() and time.monotonic() < deadline:
    if flag and os.path.exists(flag):
        # A subscriber of the same topic, added once the flood's topic was matched.
        @labc.subscribe("lab.sub.*")
        def also(source, n):
            if n >= 0:
                state["late"] += 1
        print("ADDED", flush=True)
        flag = None
    done.wait(0.05)
summary = {source: {"count": len(ns), "inOrder": ns == list(range(len(ns)))} for source, ns in seen.items()}
print("HEARD " + json.dumps({"sources": summary, "overlap": state["overlap"], "late": state["late"]}), flush=True)
"""

PY_PUBLISHER = """
import sys, time, labc

count, first = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 20
while labc.publish("lab.sub.flood", "py", -1) < 1 and time.monotonic() < deadline:
    time.sleep(0.05)
reached = sum(labc.publish("lab.sub.flood", "py", n) for n in range(first, count))
print("REACHED", reached, flush=True)
labc.close()
"""

TS_PUBLISHER = """
const deadline = Date.now() + 20000;
while ((await labc.publish("lab.sub.flood", "ts", -1)) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
let reached = 0;
for (let n = 0; n < COUNT; n++) reached += await labc.publish("lab.sub.flood", "ts", n);
console.log("REACHED " + reached);
"""

#: Sleeps 1 ms per publication of 16 KiB; prints when it heard each (CLOCK_MONOTONIC, as the
#: publisher's), once it heard `want`.
SLOW_SUBSCRIBER = """
import json, sys, threading, time, labc

want = int(sys.argv[1])
times, done = [], threading.Event()

@labc.subscribe("lab.sub.slow")
def heard(n, payload):
    if n < 0:
        return
    time.sleep(0.001)
    times.append(time.monotonic())
    if len(times) == want:
        done.set()

labc.serve(block=False)
print("READY", flush=True)
done.wait(60)
print("TIMES " + json.dumps(times), flush=True)
"""

SLOW_PUBLISHER = """
import sys, time, labc

count = int(sys.argv[1])
deadline = time.monotonic() + 20
while labc.publish("lab.sub.slow", -1, "") < 1 and time.monotonic() < deadline:
    time.sleep(0.05)
payload = "x" * 16384
for n in range(count):
    labc.publish("lab.sub.slow", n, payload)
print("PUBLISHED", time.monotonic(), flush=True)
labc.close()
"""


def line_after(proc, prefix, timeout=60):
    """The rest of the line that says ``prefix``: stdout and stderr share one file, and a
    subscriber's failure may be logged (in more than one write) from another thread as the main
    thread prints, so the line may start with the log's end; the print itself is one write."""
    proc.wait_for(prefix, timeout)
    line = next(line for line in proc.lines() if prefix in line)
    return line[line.index(prefix) + len(prefix):]


class PythonSubscribes(support.WorldTestCase):
    def test_floods_from_typescript_and_python_are_heard_in_order_once_each(self):
        sub = self.world.python_start(PY_SUBSCRIBER, str(2 * FLOOD), ready="SERVED")
        ts = self.world.ts_script_start(TS_PUBLISHER.replace("COUNT", str(FLOOD)))
        py = self.world.python_run(PY_PUBLISHER, str(FLOOD), "0", timeout=90)
        self.assertEqual(py.code, 0, py.output)
        self.assertIn(f"REACHED {FLOOD}", py.output)
        ts.wait_for("REACHED ", 90)
        self.assertIn(f"REACHED {FLOOD}", ts.output())
        got = json.loads(line_after(sub, "HEARD "))
        self.assertEqual(got["sources"], {"ts": {"count": FLOOD, "inOrder": True}, "py": {"count": FLOOD, "inOrder": True}})
        self.assertEqual(got["overlap"], 0)  # one at a time
        # Each failure logged (not fatal: the flood went on), naming the subscriber and the topic.
        failures = [line for line in sub.lines() if "fails on" in line]
        self.assertEqual(len(failures), 2 * FLOOD // 10000, sub.output())
        self.assertIn('"lab.sub.flood"', failures[0])

    def test_a_slow_subscriber_slows_its_publisher(self):
        count = 3000  # 48 MB; held at most: limits.unsent at the subscriber and at the publisher, and the sockets'
        sub = self.world.python_start(SLOW_SUBSCRIBER, str(count), ready="READY")
        pub = self.world.python_run(SLOW_PUBLISHER, str(count), timeout=90)
        self.assertEqual(pub.code, 0, pub.output)
        published = float(pub.output.split("PUBLISHED ")[1].split()[0])
        times = json.loads(line_after(sub, "TIMES "))
        self.assertEqual(len(times), count)
        heard_by_then = sum(1 for t in times if t <= published)
        # Without backpressure the publisher would be done after a few dozen (1 ms each).
        self.assertGreater(heard_by_then, count // 3, f"{heard_by_then} of {count} heard when the publisher was done")


class KeptMatches(support.WorldTestCase):
    def test_a_subscriber_added_later_hears_a_topic_matched_before(self):
        flag = os.path.join(self.world.dir, "add-a-subscriber")
        sub = self.world.python_start(PY_SUBSCRIBER, "2000", flag, ready="SERVED")
        first = self.world.python_run(PY_PUBLISHER, "1000", "0", timeout=60)
        self.assertIn("REACHED 1000", first.output)
        sub.wait_for("COUNT 1000", 20)
        open(flag, "w").close()
        sub.wait_for("ADDED", 20)
        second = self.world.python_run(PY_PUBLISHER, "2000", "1000", timeout=60)
        self.assertEqual(second.code, 0, second.output)
        got = json.loads(line_after(sub, "HEARD "))
        self.assertEqual(got["sources"], {"py": {"count": 2000, "inOrder": True}})
        self.assertEqual(got["late"], 1000)  # the second half, each heard by both


class InOrderUnit(unittest.TestCase):
    def test_items_from_several_threads_all_run_in_each_threads_order(self):
        runner = InOrder("test in order")
        seen = {}
        done = threading.Event()
        total = 4 * 20000

        def note(source, n):
            seen.setdefault(source, []).append(n)
            if sum(map(len, seen.values())) == total:
                done.set()

        def submit(source):
            for n in range(20000):
                runner.submit(note, source, n)
                if n % 997 == 0:
                    time.sleep(0.0005)  # the worker catches up and waits: woken again each time

        threads = [threading.Thread(target=submit, args=(s,)) for s in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertTrue(done.wait(10), {s: len(v) for s, v in seen.items()})
        self.assertEqual(seen, {s: list(range(20000)) for s in range(4)})
        runner.shutdown()

    def test_what_was_given_runs_after_shutdown_then_nothing_more_is_taken(self):
        runner = InOrder("test in order")
        ran = []
        gate = threading.Event()
        runner.submit(gate.wait, 5)
        for n in range(100):
            runner.submit(ran.append, n)
        runner.shutdown()
        with self.assertRaises(RuntimeError):
            runner.submit(ran.append, 100)
        gate.set()
        support.within(5, "the given items ran", lambda: len(ran) == 100)
        self.assertEqual(ran, list(range(100)))


if __name__ == "__main__":
    unittest.main()

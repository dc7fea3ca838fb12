"""A Python publisher's publications with real processes on loopback: a flood from a script that
exits the moment its last ``labc.publish`` returns, every one heard, in order, by a TypeScript and
a Python subscriber at once; plain and non-plain arguments in one stream (the kept plan and the
long way, publications.py); the plan following subscribers that come and go; ``labc.aio``.
"""

from __future__ import annotations

import asyncio
import json
import unittest

import support  # noqa: F401  (puts this checkout's labc first on sys.path)
import labc
import labc.aio
from labc.body_checks import body_problem
from labc.frames import MAX_FRAME, Kind, PublicationHead, encode_publication

#: How many the flood publishes: enough for MSG_MORE to hold bytes at the moment the script exits.
FLOOD = 20000

#: A subscriber (TypeScript) of lab.flood: prints READY, then once it heard FLOOD (or 20 s went
#: by) a summary of what it heard: each number (args[0]) and the extras of the non-plain ones.
TS_SUBSCRIBER = """
const want = Number(process.argv[2]);
const seen = [];
const extras = [];
let done;
const all = new Promise((resolve) => (done = resolve));
setTimeout(() => done(), 20000);
await labc.subscribe((n, extra) => {
  if (n < 0) return; // the publisher's probe
  seen.push(n);
  if (extra !== undefined) extras.push([n, extra instanceof Uint8Array ? Array.from(extra) : extra]);
  if (seen.length === want) done();
}, "lab.flood");
console.log("READY");
await all;
const inOrder = seen.every((n, i) => n === i);
console.log("HEARD " + JSON.stringify({ count: seen.length, inOrder, extras }));
"""

PY_SUBSCRIBER = """
import json, sys, threading, labc

want = int(sys.argv[1])
seen, extras, done = [], [], threading.Event()

@labc.subscribe("lab.flood")
def heard(n, extra=None):
    if n < 0:
        return  # the publisher's probe
    seen.append(n)
    if extra is not None:
        extras.append([n, list(extra) if isinstance(extra, bytes) else extra])
    if len(seen) == want:
        done.set()

labc.serve(block=False)
print("READY", flush=True)
done.wait(20)
in_order = all(n == i for i, n in enumerate(seen))
print("HEARD " + json.dumps({"count": len(seen), "inOrder": in_order, "extras": extras}), flush=True)
"""

#: Publishes FLOOD numbers once both subscribers are listed; every 5000th with bytes, every
#: 5000th + 1 with a float that is not plain JSON (1.0: JS writes 1), both the long way. It ends
#: with os._exit: what labc.publish returned for must have left the process by then.
PUBLISHER = """
import os, sys, time, labc

count, subscribers = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 20
while labc.publish("lab.flood", -1) < subscribers and time.monotonic() < deadline:
    time.sleep(0.05)
reached = 0
for n in range(count):
    if n % 5000 == 0:
        reached += labc.publish("lab.flood", n, bytes([1, 2, n % 256]))
    elif n % 5000 == 1:
        reached += labc.publish("lab.flood", n, 1.0)
    else:
        reached += labc.publish("lab.flood", n)
print("REACHED", reached, flush=True)
os._exit(0)
"""


def expected_extras(count):
    extras = []
    for n in range(count):
        if n % 5000 == 0:
            extras.append([n, [1, 2, n % 256]])
        elif n % 5000 == 1:
            extras.append([n, 1])
    return extras


def heard(proc):
    proc.wait_for("HEARD ", 30)
    # Anywhere in its line: stdout and stderr share one file (see test_subscribing.line_after).
    line = next(line for line in proc.lines() if "HEARD " in line)
    return json.loads(line[line.index("HEARD ") + len("HEARD "):])


class PublicationFrames(unittest.TestCase):
    def test_the_kept_head_makes_encode_publications_bytes(self):
        for topic, args in [("bench.msg", ({"s": 1, "b": "hello"},)), ("a.b", [1.5, "é", None, True, {"x": [1, -2]}]),
                            ("ü.日本", []), ("t", ("\U0001F600", 2 ** 53 - 1))]:
            self.assertEqual(PublicationHead(topic).frame(args, MAX_FRAME), encode_publication(topic, list(args)), (topic, args))

    def test_what_the_long_way_must_word_is_left_to_it(self):
        head = PublicationHead("t")
        for args in ([1.0], [b"x"], [2 ** 53], ["\ud800"], [{1: 2}], [float("nan")]):
            self.assertIsNone(head.frame(args, MAX_FRAME), args)
        self.assertIsNone(head.frame(["x" * 100], 100))  # too large: encode says so


class PublicationBodies(unittest.TestCase):
    def test_a_topic_and_arguments_only_are_checked_as_every_field_is(self):
        cases = [({"topic": "a.b", "args": [1]}, None), ({"topic": "a", "args": ()}, None),
                 ({"topic": "", "args": []}, "topic must not be empty"), ({"topic": "x" * 1025, "args": []}, "topic is over 1024 characters"),
                 ({"topic": 1, "args": []}, "topic must be a string"), ({"topic": "a", "args": {}}, "args must be an array"),
                 ({"topic": "a", "x": 1}, "args is missing"), ({"args": [], "x": 1}, "topic is missing"),
                 ({"topic": "a", "args": [], "groups": "g"}, "groups must be an array")]
        for body, problem in cases:
            self.assertEqual(body_problem(Kind.PUB, body), problem, body)


class PythonPublishes(support.WorldTestCase):
    """The test process and scripts publish; TypeScript and Python subscribers hear."""

    def test_a_flood_then_exit_is_heard_in_order_by_typescript_and_python(self):
        ts = self.world.ts_script_start(TS_SUBSCRIBER.replace("process.argv[2]", str(FLOOD)))
        py = self.world.python_start(PY_SUBSCRIBER, str(FLOOD), ready="READY")
        ts.wait_for("READY")
        done = self.world.python_run(PUBLISHER, str(FLOOD), "2", timeout=60)
        self.assertEqual(done.code, 0, done.output)
        self.assertIn(f"REACHED {2 * FLOOD}", done.output)
        for proc in (ts, py):
            got = heard(proc)
            self.assertEqual((got["count"], got["inOrder"]), (FLOOD, True), proc.label)
            self.assertEqual(got["extras"], expected_extras(FLOOD), proc.label)

    def test_the_plan_follows_subscribers_that_come_and_go(self):
        # Each subscriber ends once it heard its count: the second leaves before the first.
        first = self.world.python_start(PY_SUBSCRIBER, "400", ready="READY")
        support.within(10, "one subscriber listed", lambda: labc.publish("lab.flood", -1) == 1)
        for n in range(100):
            self.assertEqual(labc.publish("lab.flood", n), 1)
        second = self.world.python_start(PY_SUBSCRIBER, "200", ready="READY")
        support.within(10, "two subscribers listed", lambda: labc.publish("lab.flood", -1) == 2)
        for n in range(100, 300):
            self.assertEqual(labc.publish("lab.flood", n), 2)
        self.assertEqual(heard(second)["count"], 200)  # from 100 on
        self.assertEqual(second.wait(10), 0)
        support.within(10, "the first listed alone", lambda: labc.publish("lab.flood", -1) == 1)
        for n in range(300, 400):
            self.assertEqual(labc.publish("lab.flood", n), 1)
        got = heard(first)
        self.assertEqual((got["count"], got["inOrder"]), (400, True))
        self.assertEqual(first.wait(10), 0)
        support.within(10, "no subscriber listed", lambda: labc.publish("lab.flood", -1) == 0)

    def test_aio_publishes_in_order(self):
        py = self.world.python_start(PY_SUBSCRIBER, "2000", ready="READY")
        support.within(10, "the subscriber listed", lambda: labc.publish("lab.flood", -1) == 1)

        async def flood():
            reached = 0
            for n in range(2000):
                extra = (bytes([1, 2, 0]),) if n == 0 else ()
                reached += await labc.aio.publish("lab.flood", n, *extra)
            await labc.aio.close()
            return reached

        self.assertEqual(asyncio.run(flood()), 2000)
        got = heard(py)
        self.assertEqual((got["count"], got["inOrder"], got["extras"]), (2000, True, [[0, [1, 2, 0]]]))


if __name__ == "__main__":
    unittest.main()

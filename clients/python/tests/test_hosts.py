"""Python and TypeScript on two hosts: network namespaces joined by a bridge (as test/netns/lan.ts
builds them), each host with its own router, finding the other by discovery on its eth0 only.

A Python server on host A called from TypeScript and Python on host B, and the other way round;
publications both ways; a stream across; a server killed mid-call. Needs root and iproute2.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import textwrap
import time
import unittest
from typing import List, Optional

import support
from test_loopback import PROBE_TS, SERVER_PY

SUBNET = "10.78.0"


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def lan_unavailable() -> Optional[str]:
    """Why these tests cannot run here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2 (`ip`)"
    probe = f"labcpyprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class Lan:
    """``count`` hosts (host1, host2...), each a namespace with an eth0 whose other end is on a
    bridge in one more namespace. ``close()`` ends every process in them and deletes them."""

    def __init__(self, count: int = 2) -> None:
        tag = os.urandom(3).hex()
        bridge = f"pb{tag}"
        self.namespaces: List[str] = []
        self.hosts: List[support.World] = []
        try:
            ip("netns", "add", bridge)
            self.namespaces.append(bridge)
            ip("-n", bridge, "link", "set", "lo", "up")
            ip("-n", bridge, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
            ip("-n", bridge, "link", "set", "br0", "up")
            for i in range(1, count + 1):
                ns, cable, address = f"ph{tag}{i}", f"c{i}", f"{SUBNET}.{10 + i}"
                ip("netns", "add", ns)
                self.namespaces.append(ns)
                ip("-n", ns, "link", "set", "lo", "up")
                ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", cable, "netns", bridge)
                ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
                ip("-n", ns, "link", "set", "eth0", "up")
                ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
                ip("-n", bridge, "link", "set", cable, "master", "br0")
                ip("-n", bridge, "link", "set", cable, "up")
                name = f"host{i}"
                world = support.World(name, {
                    "LABC_HOST_ID": f"id-{name}",
                    # Discovery only here, inside namespaces nobody else reaches.
                    "LABC_DISCOVERY_ENABLED": "true",
                    "LABC_DISCOVERY_INTERFACES": "eth0",
                }, prefix=["ip", "netns", "exec", ns], loopback=False)
                world.ns, world.address = ns, address  # type: ignore[attr-defined]
                self.hosts.append(world)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for world in self.hosts:
            try:
                world.close()
            except Exception:  # noqa: BLE001 - the namespaces must go whatever happened
                pass
        for ns in self.namespaces:
            # Whatever still runs in our namespaces is ours: each ended by its pid.
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
            for pid in (int(p) for p in out.split() if p.isdigit()):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()
        self.hosts.clear()


#: Python lines that wait for a function of the other host (discovery takes a moment).
UNTIL_PY = """
import json, time, labc

def until(fn, *args, seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn(*args)
        except (labc.NoSuchFunctionError, labc.NoSuchHostError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
"""

def with_until(code: str) -> str:
    return UNTIL_PY + textwrap.dedent(code)


UNTIL_TS = """
async function until(fn) {
  const deadline = Date.now() + 20000;
  for (;;) {
    try { return await fn(); } catch (e) {
      if (!["NoSuchFunctionError", "NoSuchHostError"].includes(e.name) || Date.now() > deadline) throw e;
      await new Promise((done) => setTimeout(done, 200));
    }
  }
}
"""


def last_json(result: support.Result):
    assert result.code == 0, result
    return json.loads(result.output.strip().splitlines()[-1])


#: host2's Python server: a class of its own, so that what host1 calls is host2's for sure.
B_SERVER_PY = r"""
import labc

class Bench:
    @labc.register
    def where(self):
        call = labc.context()
        return {"caller_host": call.caller.host, "from_other_host": call.from_other_host}

    @labc.register
    def squares(self, n):
        for i in range(n):
            yield i * i

    @labc.register
    def far(self):
        return labc.context().from_other_host

labc.serve(Bench(), block=False)
print("READY", flush=True)
labc.runtime().wait()
"""


WHY_NOT = lan_unavailable()


@unittest.skipIf(WHY_NOT, WHY_NOT or "")
class TwoHosts(unittest.TestCase):
    """host1 runs a Python server; host2 a TypeScript one (services/echo.ts and a probe)."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.lan = Lan(2)
        cls.addClassCleanup(cls.lan.close)
        cls.a, cls.b = cls.lan.hosts
        cls.py_server = cls.a.python_start(SERVER_PY, ready="READY")
        cls.ts_server = cls.b.ts_serve("services/echo.ts", cls.b.ts_service("Probe", PROBE_TS))
        cls.b_server = cls.b.python_start(B_SERVER_PY, ready="READY")

    def setUp(self) -> None:
        for world in (self.a, self.b):
            self.addCleanup(world.end_processes, len(world.procs))

    def test_typescript_and_python_on_b_call_python_on_a(self):
        seen = last_json(self.b.ts_script(UNTIL_TS + """
            const sum = await until(() => labc.call("py_add", 20, 22));
            const who = await labc.call("py.whoami");
            const volts = await labc.call("power_supply.set_voltage", 1.5);
            const items = [];
            for await (const item of labc.stream("numbers", 500)) items.push(item);
            console.log(JSON.stringify({ sum, who, volts, items: items.length, ordered: items.every((v, i) => v === i) }));
        """))
        self.assertEqual((seen["sum"], seen["volts"], seen["items"], seen["ordered"]), (42, 1.5, 500, True))
        self.assertEqual(seen["who"]["host"], "host2")
        cli = self.b.cli("call", "py_add", "1", "2")
        self.assertEqual((cli.code, cli.output.strip()), (0, "3"), cli)
        seen = last_json(self.b.python_run(with_until("""
            who = until(labc.call, "py.whoami")
            named = labc.get_host("host1").call("py_add", 2, 3)
            print(json.dumps({"who": who, "named": named, "hosts": sorted(h["name"] for h in labc.hosts())}))
        """)))
        self.assertEqual((seen["who"]["host"], seen["named"]), ("host2", 5))
        self.assertEqual(seen["hosts"], ["host1", "host2"])

    def test_typescript_and_python_on_a_call_python_on_b(self):
        seen = last_json(self.a.ts_script(UNTIL_TS + """
            const where = await until(() => labc.call("bench.where"));
            const items = [];
            for await (const item of labc.stream("bench.squares", 100)) items.push(item);
            console.log(JSON.stringify({ where, items }));
        """))
        self.assertEqual(seen["where"], {"caller_host": "host1", "from_other_host": True})
        self.assertEqual(seen["items"], [i * i for i in range(100)])
        cli = self.a.cli("call", "bench.squares", "4")
        self.assertEqual((cli.code, cli.output.split()), (0, ["0", "1", "4", "9"]), cli)
        seen = last_json(self.a.python_run(with_until("""
            until(labc.call, "bench.where")
            print(json.dumps({"where": labc.get_host("host2").call("bench.where"),
                              "squares": list(labc.get_host("host2").stream("bench.squares", 1000))}))
        """)))
        self.assertEqual(seen["where"], {"caller_host": "host1", "from_other_host": True})
        self.assertEqual(seen["squares"], [i * i for i in range(1000)])

    def test_python_on_a_calls_typescript_on_b(self):
        seen = last_json(self.a.python_run(with_until("""
            echoed = until(labc.call, "echo", b"\\x00" * 70000)
            try:
                labc.call("probe.fail", "far")
                error = None
            except labc.RemoteError as e:
                error = [e.remote_name, str(e)]
            items = list(labc.stream("probe.count", 3000))
            caller = labc.call("probe.caller")
            results = labc.call_all("add", 1, 2)
            print(json.dumps({"echoed": len(echoed), "error": error, "ordered": items == list(range(3000)),
                              "caller": caller, "all": [r["host"] for r in results if r.get("value") == 3]}))
        """)))
        self.assertEqual(seen["echoed"], 70000)
        self.assertEqual(seen["error"][0], "RangeError")
        self.assertIn("far", seen["error"][1])
        self.assertTrue(seen["ordered"])
        self.assertEqual(seen["caller"]["host"], "host1")
        self.assertEqual(seen["all"], ["host2"])

    def test_stream_of_100000_across_hosts_in_order_with_a_slow_reader(self):
        seen = last_json(self.b.python_run(with_until("""
            until(labc.call, "produced")
            expected, ahead = 0, []
            for item in labc.stream("numbers", 100000, window=64):
                assert item == expected, (item, expected)
                expected += 1
                if expected in (100, 60000):
                    time.sleep(0.3)
                    ahead.append(labc.call("produced") - expected)
            print(json.dumps({"count": expected, "ahead": ahead}))
        """), timeout=120))
        self.assertEqual(seen["count"], 100000)
        for ahead in seen["ahead"]:
            self.assertLessEqual(ahead, 64)

    def test_publications_both_ways(self):
        # host2's Python publishes to host1's Python subscriber; host2's `labc publish` too;
        # host1's Python publishes to host2's TypeScript subscriber.
        before = last_json(self.a.python_run(with_until("print(json.dumps(until(labc.call, 'heard')))")))
        reached = last_json(self.b.python_run(with_until("""
            until(labc.call, "heard")
            print(json.dumps(labc.publish("lab.py.far", "from host2", [1, 2])))
        """)))
        self.assertEqual(reached, 1)
        self.assertEqual(self.b.cli("publish", "lab.py.cli", "7").code, 0)
        seen = last_json(self.a.python_run(with_until("""
            import sys
            until(labc.call, "probe.stats")
            before = labc.call("probe.stats")["heard"]
            reached = labc.publish("lab.ts.far", "from host1")
            answer = labc.reqpub("lab.ask", 4)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and (len(labc.call("probe.stats")["heard"]) == len(before)
                                                   or len(labc.call("heard")["heard"]) < int(sys.argv[1]) + 2):
                time.sleep(0.05)
            print(json.dumps({"reached": reached, "answer": answer, "new": labc.call("probe.stats")["heard"][len(before):],
                              "heard": labc.call("heard")}))
        """), str(len(before["heard"]))))
        self.assertEqual((seen["reached"], seen["answer"], seen["new"]), (1, 8, [["from host1"]]))
        heard = seen["heard"]["heard"][len(before["heard"]):]
        self.assertEqual(heard, [["lab.py.far", "from host2", [1, 2]], ["lab.py.cli", 7]])

    def test_server_killed_mid_call_the_other_host_knows_within_a_second(self):
        started = os.path.join(self.a.dir, "doomed-started")
        victim = self.a.python_start("""
            import labc, sys, time
            @labc.register
            def doomed(seconds):
                open(sys.argv[1], "w").close()
                time.sleep(seconds)
            labc.serve(block=False)
            print("READY", flush=True)
            labc.runtime().wait()
        """, started, ready="READY")
        caller = self.b.python_start(with_until("""
            until(labc.call, "py_add", 0, 0)
            print("CALLING", flush=True)
            try:
                until(labc.call, "doomed", 30)
            except labc.ConnectionLostError as error:
                print(json.dumps({"lost_at": time.time(), "error": str(error)}), flush=True)
        """), ready="CALLING")
        support.within(25, "doomed runs", lambda: os.path.exists(started))
        killed_at = time.time()
        victim.signal(signal.SIGKILL)
        caller.wait(10)
        seen = json.loads(caller.output().strip().splitlines()[-1])
        self.assertLess(seen["lost_at"] - killed_at, 1.0, seen)


#: A secret both hosts hold (test_tls.py's).
SECRET = "labc1_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"


@unittest.skipIf(WHY_NOT, WHY_NOT or "")
class TwoHostsWithASecret(unittest.TestCase):
    """A network with a secret: host1 runs a Python server, host2 a TypeScript one. On its own
    host Python proves the secret without TLS (the local proof); across hosts, where a Python
    before 3.13 cannot do TLS, what it calls and what calls it goes through the routers."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.lan = Lan(2)
        cls.addClassCleanup(cls.lan.close)
        cls.a, cls.b = cls.lan.hosts
        for world in (cls.a, cls.b):
            world.env["LABC_SECRET"] = SECRET
        cls.py_server = cls.a.python_start(B_SERVER_PY, ready="READY")
        cls.ts_server = cls.b.ts_serve("services/echo.ts")

    def test_python_and_typescript_call_each_other_across_hosts(self):
        seen = last_json(self.b.ts_script(UNTIL_TS + """
            const far = await until(() => labc.call("bench.far"));
            console.log(JSON.stringify({ far }));
        """))
        self.assertEqual(seen["far"], True)
        seen = last_json(self.a.python_run(with_until("""
            echoed = until(labc.call, "echo", "across")
            print(json.dumps({"echoed": echoed, "squares": list(labc.get_host("host1").stream("bench.squares", 50))}))
        """)))
        self.assertEqual(seen, {"echoed": "across", "squares": [i * i for i in range(50)]})
        # Without the secret, host2's processes are refused.
        stranger = self.b.spawn([support.NODE, str(support.CLI), "call", "echo", "x"], "cli", {"LABC_SECRET": ""})
        self.assertNotEqual(stranger.wait(30), 0)


if __name__ == "__main__":
    unittest.main()

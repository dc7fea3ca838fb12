"""The Python benchmark (issue 29): labc from Python against Python's own baselines, in one run.

    npm run bench:python                     # from the repository (builds first)
    python3 clients/python/bench/run.py [--reps 3] [--quick] [--only raw,labc-py-ts,...]

Every role runs in a process of its own, on 127.0.0.1: servers and subscribers started first,
each caller or publisher a fresh process per measurement. labc runs on a root port of its own
(a free one), with temporary XDG folders and discovery off; the router the first labc process
starts is ended by this script (found by its port's listener). Systems:

- raw: a plain Python socket echo and publisher/subscriber with labc's frame layout (the limit);
  W2 pipelines 100 requests on one socket from one thread; raw-threads (W2 only): 100 threads,
  each with a socket of its own to the same server (a thread each there too), as a threaded
  program written without labc would;
- xmlrpc: SimpleXMLRPCServer (threading, keep-alive) and ServerProxy;
- mp: multiprocessing.connection's Listener and Client (pickles);
- labc-py-ts: a Python caller of ``labc serve services/echo.ts`` (TypeScript), blocking API;
- labc-aio-py-ts: the same with ``labc.aio`` (W2: 100 tasks on one event loop);
- labc-py-py: a Python caller of a Python labc server;
- labc-ts-py: a TypeScript caller of the Python server; labc-ts-ts: TypeScript both sides (reference).

Workloads: W1 one call of ``echo("hello")`` at a time (p50, p99 µs); W2 100 calls in flight
(calls/s; the blocking API from 100 threads; the baselines that can pipeline do so on one
socket); W3 publications 1 -> 1 of ``{"s": n, "b": "hello"}`` (msgs/s, from the publisher's
clock before its first to the subscriber's at the last, CLOCK_MONOTONIC in both). Each figure
is taken ``--reps`` times, the order of the systems rotating; ratios to raw are per rep, and
the table gives their median.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
# The labc package measured: this checkout's, or (--labc DIR, passed on to the roles by the
# environment) another copy's, to measure a change against the code before it.
PYTHON_DIR = os.environ.get("LABC_BENCH_PACKAGE_DIR") or os.path.dirname(HERE)
sys.path.insert(0, PYTHON_DIR)
sys.path.insert(0, HERE)

TS_ROLES = os.path.join(HERE, "ts-roles.mjs")
CALLERS = ["raw", "raw-threads", "xmlrpc", "mp", "labc-py-ts", "labc-aio-py-ts", "labc-py-py", "labc-ts-py", "labc-ts-ts"]
PUBLISHERS = ["raw", "labc-py-py", "labc-py-ts"]


def emit(value: Any) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


# ---- roles (each in a process of its own) -------------------------------------------------------

def role_serve(system: str, port: int) -> None:
    import baselines

    if system == "raw":
        baselines.raw_server(port)
    elif system == "xmlrpc":
        baselines.xmlrpc_server(port)
    elif system == "mp":
        baselines.mp_server(port)
    elif system == "labc":
        import labc

        @labc.register(name="pyecho")
        def echo(x):
            return x

        labc.serve(block=False)
    emit("ready")
    sys.stdin.read()  # until the benchmark closes our stdin (or ends us)
    if system == "labc":
        import labc

        labc.close()


def role_call(system: str, workload: str, port: int, count: int, warmup: int) -> None:
    import baselines

    if system in ("raw", "raw-threads"):
        client = baselines.RawClient(port)
        one = client.call
    elif system == "xmlrpc":
        proxy = baselines.xmlrpc_client(port)
        one = lambda: proxy.echo("hello")  # noqa: E731
    elif system == "mp":
        conn = baselines.mp_client(port)

        def one() -> Any:
            conn.send("hello")
            return conn.recv()
    elif system == "labc-aio-py-ts":
        return aio_call(workload, count, warmup)
    else:
        import labc

        fn = "pyecho" if system == "labc-py-py" else "echo"
        one = lambda: labc.call(fn, "hello")  # noqa: E731
    for _ in range(warmup):
        assert one() == "hello"
    if workload == "w1":
        took = []
        clock = time.perf_counter_ns
        for _ in range(count):
            started = clock()
            one()
            took.append(clock() - started)
        took.sort()
        emit({"p50": took[count // 2] / 1000, "p99": took[int(count * 0.99)] / 1000})
        return
    started = time.perf_counter()
    if system == "raw":
        client.in_flight(count, 100)
    elif system == "mp":
        baselines.mp_in_flight(conn, count, 100)
    else:
        # The blocking API (and xmlrpc): 100 threads, each with its own proxy for xmlrpc.
        left = [count]
        lock = threading.Lock()

        def loop() -> None:
            call = one
            if system == "raw-threads":
                call = baselines.RawClient(port).call  # a socket per thread, as a threaded program would
            if system == "xmlrpc":
                proxy = baselines.xmlrpc_client(port)
                call = lambda: proxy.echo("hello")  # noqa: E731
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                call()

        threads = [threading.Thread(target=loop) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    emit({"perSecond": count / (time.perf_counter() - started)})
    if system.startswith("labc"):
        import labc

        labc.close()


def aio_call(workload: str, count: int, warmup: int) -> None:
    """labc.aio from one event loop: W1 awaited one at a time, W2 100 tasks."""
    import asyncio

    import labc
    import labc.aio

    async def main() -> None:
        for _ in range(warmup):
            assert await labc.aio.call("echo", "hello") == "hello"
        if workload == "w1":
            took = []
            clock = time.perf_counter_ns
            for _ in range(count):
                started = clock()
                await labc.aio.call("echo", "hello")
                took.append(clock() - started)
            took.sort()
            emit({"p50": took[count // 2] / 1000, "p99": took[int(count * 0.99)] / 1000})
            return
        left = [count]

        async def loop() -> None:
            while left[0] > 0:
                left[0] -= 1
                await labc.aio.call("echo", "hello")

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(100)))
        emit({"perSecond": count / (time.perf_counter() - started)})

    asyncio.run(main())
    labc.close()


def role_sub(system: str, port: int, count: int) -> None:
    got = [0]
    last = [0]
    done = threading.Event()

    def on_message(message: Any) -> bool:
        if message["s"] < 0:
            return True
        got[0] += 1
        if got[0] == count:
            last[0] = time.monotonic_ns()
            done.set()
            return False
        return True

    if system == "raw":
        import baselines

        listener = baselines.raw_listen(port)
        emit("ready")
        threading.Thread(target=baselines.raw_read_publications, args=(listener, on_message), daemon=True).start()
    else:
        import labc

        labc.subscribe("bench.msg")(on_message)
        labc.serve(block=False)
        emit("ready")
    done.wait(120)
    emit({"count": got[0], "lastNs": last[0]})
    os._exit(0)


def role_pub(system: str, port: int, count: int) -> None:
    start = [0]

    def on_start() -> None:
        start[0] = time.monotonic_ns()

    if system == "raw":
        import baselines

        baselines.raw_publish(port, count, on_start)
    else:
        import labc

        # The subscriber registered before we started; wait until our replica lists it.
        for _ in range(200):
            if labc.publish("bench.msg", {"s": -1, "b": "probe"}) > 0:
                break
            time.sleep(0.05)
        publish = labc.publish
        on_start()
        for s in range(count):
            publish("bench.msg", {"s": s, "b": "hello"})
        labc.close()
    emit({"startNs": start[0]})


# ---- the benchmark ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="labc-pybench-")
        self.root_port = free_port()
        self.env = dict(os.environ)
        self.env.update({
            "XDG_CONFIG_HOME": os.path.join(self.tmp, "config"),
            "XDG_STATE_HOME": os.path.join(self.tmp, "state"),
            "XDG_RUNTIME_DIR": os.path.join(self.tmp, "run"),
            "LABC_ROUTER_PORT": str(self.root_port),
            "LABC_DISCOVERY_ENABLED": "false",
            "LABC_COMMAND": f"node {os.path.join(REPO, 'bin', 'labc.js')}",
            "PYTHONPATH": PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""),
        })
        for folder in ("config", "state", "run"):
            os.makedirs(os.path.join(self.tmp, folder), mode=0o700, exist_ok=True)
        self.children: List[subprocess.Popen] = []
        self.ports: Dict[str, int] = {}

    def spawn(self, command: List[str], stdin: bool = False, quiet: bool = False) -> subprocess.Popen:
        child = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=subprocess.DEVNULL if quiet else subprocess.PIPE,
                                 stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, text=True)
        self.children.append(child)
        return child

    def py(self, *role: Any, stdin: bool = False) -> subprocess.Popen:
        return self.spawn([sys.executable, os.path.abspath(__file__), *map(str, role)], stdin)

    def line(self, child: subprocess.Popen, timeout: float = 60.0) -> Any:
        got: List[str] = []
        reader = threading.Thread(target=lambda: got.append(child.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not got or not got[0]:
            raise RuntimeError(f"{child.args} gave no answer within {timeout} s (exit {child.poll()})")
        return json.loads(got[0])

    def finish(self, child: subprocess.Popen, timeout: float = 120.0) -> Any:
        value = self.line(child, timeout)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        self.children.remove(child)
        return value

    def start_servers(self) -> None:
        for system in ("raw", "xmlrpc", "mp"):
            self.ports[system] = free_port()
            if system == "raw":
                self.ports["raw-threads"] = self.ports["raw"]
            child = self.py("serve", system, self.ports[system], stdin=True)
            assert self.line(child) == "ready"
        self.spawn(["node", os.path.join(REPO, "bin", "labc.js"), "serve", "services/echo.ts"], quiet=True)  # ready once a call succeeds
        child = self.py("serve", "labc", 0, stdin=True)
        assert self.line(child) == "ready"
        for attempt in range(100):
            probe = self.py("call", "labc-py-ts", "w1", 0, 1, 1)
            try:
                self.finish(probe, 20)
                break
            except (RuntimeError, json.JSONDecodeError):
                time.sleep(0.2)

    def caller(self, system: str, workload: str, count: int, warmup: int) -> Dict[str, Any]:
        if system in ("labc-ts-py", "labc-ts-ts"):
            fn = "pyecho" if system == "labc-ts-py" else "echo"
            child = self.spawn(["node", TS_ROLES, "call", fn, workload, str(count), str(warmup)])
        else:
            child = self.py("call", system, workload, self.ports.get(system, 0), count, warmup)
        return self.finish(child, 180)

    def publication(self, system: str, count: int) -> float:
        port = free_port()
        if system == "labc-py-ts":
            sub = self.spawn(["node", TS_ROLES, "sub", str(count)])
        else:
            sub = self.py("sub", "raw" if system == "raw" else "labc", port, count)
        assert self.line(sub) == "ready"
        pub = self.py("pub", "raw" if system == "raw" else "labc", port, count)
        started = self.finish(pub, 180)["startNs"]
        got = self.finish(sub, 180)
        if got["count"] != count:
            raise RuntimeError(f"{system}: {got['count']} of {count} publications arrived")
        return count / ((got["lastNs"] - started) / 1e9)

    def close(self) -> None:
        for child in list(self.children):
            if child.poll() is None:
                try:
                    if child.stdin:
                        child.stdin.close()
                    child.wait(3)
                except (subprocess.TimeoutExpired, OSError):
                    os.kill(child.pid, signal.SIGTERM)
                    try:
                        child.wait(5)
                    except subprocess.TimeoutExpired:
                        os.kill(child.pid, signal.SIGKILL)
                        child.wait()
        # The router the first labc process started (detached): found by its port's listener.
        router = router_pid(self.root_port)
        if router is not None:
            os.kill(router, signal.SIGTERM)
            for _ in range(50):
                if router_pid(self.root_port) is None:
                    break
                time.sleep(0.1)


def router_pid(port: int) -> Optional[int]:
    try:
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else None


def median(values: List[float]) -> float:
    return statistics.median(values)


def run(args: argparse.Namespace) -> None:
    bench = Bench(args)
    only = set(args.only.split(",")) if args.only else None
    callers = [s for s in CALLERS if only is None or s in only]
    publishers = [s for s in PUBLISHERS if only is None or s in only]
    workloads = set(args.workloads.split(","))
    scale = 0.1 if args.quick else 1.0
    w1_count, w1_warmup = int(3000 * scale) or 1, int(500 * scale) or 1
    w2_count = int(20000 * scale)
    w3_count = int(100000 * scale)
    results: Dict[str, Dict[str, List[float]]] = {}

    def keep(system: str, figure: str, value: float) -> None:
        results.setdefault(system, {}).setdefault(figure, []).append(value)

    try:
        bench.start_servers()
        # A round not counted: the servers' first thousands of calls are slower (V8 compiles the
        # TypeScript server's path as it runs; without this the first rep's W1 was 1.5x the others).
        for system in callers:
            if system.startswith("labc"):
                bench.caller(system, "w1", w1_count, w1_warmup)
        for rep in range(args.reps):
            turn = rep % max(1, len(callers))
            order = callers[turn:] + callers[:turn]
            for system in [s for s in order if s != "raw-threads"] if "w1" in workloads else []:
                count = w1_count // 3 if system == "xmlrpc" else w1_count
                got = bench.caller(system, "w1", count, w1_warmup)
                keep(system, "w1_p50", got["p50"])
                keep(system, "w1_p99", got["p99"])
            for system in order if "w2" in workloads else []:
                count = w2_count // 4 if system == "xmlrpc" else w2_count
                got = bench.caller(system, "w2", count, 200)
                keep(system, "w2", got["perSecond"])
            turn = rep % max(1, len(publishers))
            for system in publishers[turn:] + publishers[:turn] if "w3" in workloads else []:
                keep(system, "w3", bench.publication(system, w3_count))
            print(f"rep {rep + 1} of {args.reps} done", file=sys.stderr, flush=True)
    finally:
        bench.close()
    report(results, args)


def report(results: Dict[str, Dict[str, List[float]]], args: argparse.Namespace) -> None:
    raw = results.get("raw", {})
    xml = results.get("xmlrpc", {})

    def ratios(system: str, figure: str, base: Dict[str, List[float]]) -> Optional[List[float]]:
        mine, theirs = results.get(system, {}).get(figure), base.get(figure)
        if not mine or not theirs:
            return None
        return [a / b for a, b in zip(mine, theirs)]

    def cell(system: str, figure: str, unit: str) -> str:
        values = results.get(system, {}).get(figure)
        if not values:
            return "–"
        text = f"{median(values):,.0f}{unit}" if median(values) >= 100 else f"{median(values):.1f}{unit}"
        spread = (max(values) - min(values)) / median(values) if len(values) > 1 else 0
        if system != "raw":
            r = ratios(system, figure, raw)
            if r:
                text += f" ({median(r):.2f}x)"
        if spread > 0.2:
            text += f" ±{spread * 50:.0f} %"
        return text

    systems = [s for s in CALLERS if s in results]
    print()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.reps} reps; median, (ratio to raw, median of the reps' ratios)")
    print()
    print("| figure | " + " | ".join(systems) + " |")
    print("|---|" + "---|" * len(systems))
    for figure, label, unit in (("w1_p50", "W1 p50", " µs"), ("w1_p99", "W1 p99", " µs"), ("w2", "W2 100 in flight, calls/s", ""), ("w3", "W3 publications 1 → 1, msgs/s", "")):
        print(f"| {label} | " + " | ".join(cell(s, figure, unit) for s in systems) + " |")
    print()
    w3_names = {"raw": "raw", "labc-py-py": "labc Python → Python", "labc-py-ts": "labc Python → TypeScript"}
    for system in PUBLISHERS:
        if system in results and system != "raw":
            print(f"W3 {w3_names[system]}: {cell(system, 'w3', ' msgs/s')}")
    print()
    checks = []
    r = ratios("labc-py-ts", "w1_p50", raw)
    if r:
        checks.append(("W1 p50 Python → TypeScript ≤ 1.3x raw", median(r), median(r) <= 1.3))
    for system in ("labc-py-ts", "labc-aio-py-ts", "labc-py-py"):
        r = ratios(system, "w2", raw)
        x = ratios(system, "w2", xml)
        if r:
            checks.append((f"W2 {system} ≥ 0.5x raw", median(r), median(r) >= 0.5))
        if x:
            checks.append((f"W2 {system} ≥ 5x xmlrpc", median(x), median(x) >= 5))
    for system in ("labc-py-py", "labc-py-ts"):
        r = ratios(system, "w3", raw)
        if r:
            checks.append((f"W3 {system} ≥ 0.5x raw", median(r), median(r) >= 0.5))
    threads = results.get("raw-threads", {})
    for system in ("labc-py-ts", "labc-aio-py-ts", "labc-py-py"):
        r = ratios(system, "w2", threads)
        if r:
            print(f"W2 {system} ÷ raw-threads (100 threads, a socket each): {median(r):.2f}x")
    print()
    print("| target | figure | |")
    print("|---|---|---|")
    for label, value, met in checks:
        print(f"| {label} | {value:.2f}x | {'met' if met else 'missed'} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("serve", "call", "sub", "pub"):
        role, rest = sys.argv[1], sys.argv[2:]
        if role == "serve":
            role_serve(rest[0], int(rest[1]))
        elif role == "call":
            role_call(rest[0], rest[1], int(rest[2]), int(rest[3]), int(rest[4]))
        elif role == "sub":
            role_sub(rest[0], int(rest[1]), int(rest[2]))
        else:
            role_pub(rest[0], int(rest[1]), int(rest[2]))
        return
    parser = argparse.ArgumentParser(description="labc's Python benchmark")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tenth of the counts, to see that it runs")
    parser.add_argument("--only", default="", help="systems to measure, by name (raw is needed for ratios)")
    parser.add_argument("--workloads", default="w1,w2,w3", help="workloads to run (w1,w2,w3)")
    parser.add_argument("--labc", default="", help="the folder holding the labc package to measure (default: this checkout's clients/python)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    if args.labc:
        global PYTHON_DIR
        PYTHON_DIR = os.environ["LABC_BENCH_PACKAGE_DIR"] = os.path.abspath(args.labc)
    run(args)


if __name__ == "__main__":
    main()

"""``python -m labc`` against a real router (the TypeScript one, started as a user's would be):
call, publish, subscribe, ls, serve, their help, output and exit codes.

Everything runs on 127.0.0.1 with a port of its own and temporary config folders; every process
started here (the router too) is ended by its PID."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

from support import free_port  # below the ephemeral range: a router started there can bind

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PACKAGE))
NODE = shutil.which("node")
CLI_JS = os.path.join(REPO, "bin", "labc.js")
BUILT = os.path.exists(os.path.join(REPO, "dist", "cli.js"))

SERVICE = textwrap.dedent('''
    import datetime
    import time

    import labc


    @labc.register
    def add(a: float, b: float) -> float:
        return a + b


    @labc.register
    def say(text: str) -> str:
        return text


    @labc.register
    def count(n: int):
        for i in range(n):
            yield i


    @labc.register
    def blob() -> bytes:
        return bytes([0, 1, 254, 255])


    @labc.register
    def data():
        return {"tags": {"a"}, "at": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), "big": 2 ** 60, "n": 1.5}


    @labc.register
    def slow(seconds: float) -> str:
        time.sleep(seconds)
        return f"slept {seconds}"


    class Overheated(Exception):
        code = "OVERHEATED"


    @labc.register
    def fail():
        raise Overheated("too hot")


    class Thermometer:
        def __init__(self):
            self.readings = []

        @labc.register
        def read(self) -> float:
            return 21.5

        @labc.subscribe("lab.temp.*")
        def heard(self, value):
            self.readings.append(value)
''')


class Formatting(unittest.TestCase):
    """Arguments and output as the TypeScript CLI reads and writes them (cli/format.ts), no router needed."""

    def test_arguments_are_json_when_they_parse_else_text(self):
        from labc.cli_arguments import parse_arg

        for text, value in [("42", 42), ("true", True), ("[1,2]", [1, 2]), ('"7"', "7"), ("hello", "hello"), ("{bad", "{bad"), ("", "")]:
            with self.subTest(text):
                self.assertEqual(parse_arg(text), value)

    def test_declared_types_convert_typed_text(self):
        from labc.cli_arguments import UsageError, typed_arguments

        entry = {"name": "f", "params": [{"name": "s", "type": "string"}, {"name": "n", "type": "number"},
                                         {"name": "rest", "type": "boolean[]", "rest": True}]}
        self.assertEqual(typed_arguments([{"text": "42"}, {"text": "1.5"}, {"text": "true"}, {"text": "false"}], entry), ["42", 1.5, True, False])
        self.assertEqual(typed_arguments([{"value": b"\x00"}, {"text": "3"}], entry), [b"\x00", 3])
        with self.assertRaisesRegex(UsageError, r"^f\(s: string, n: number, \.\.\.rest: boolean\[\]\): n must be a number, not \"x\"$"):
            typed_arguments([{"text": "a"}, {"text": "x"}], entry)
        with self.assertRaisesRegex(UsageError, r"takes at least 2 arguments, not 1$"):
            typed_arguments([{"text": "a"}], entry)
        self.assertEqual(typed_arguments([{"text": "[1]"}, {"text": "x"}], None), [[1], "x"])

    def test_json_output_says_what_json_cannot(self):
        import array
        import datetime
        import re

        from labc.cli_output import to_json, to_line, to_text
        from labc.values import BigInt, Map

        cases = [
            (b"\x00\xff", '{"$binary":"AP8="}'), (BigInt(5), '{"$bigint":"5"}'), (2 ** 60, '{"$bigint":"1152921504606846976"}'),
            ({1: "a"}, '{"$map":[[1,"a"]]}'), (Map(a=1), '{"$map":[["a",1]]}'), ({3}, '{"$set":[3]}'),
            (float("nan"), '{"$number":"NaN"}'), (float("-inf"), '{"$number":"-Infinity"}'),
            (datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc), '"2024-01-02T03:04:05.678Z"'),
            (array.array("f", [1.5]), '{"$Float32Array":[1.5]}'), (re.compile("a+"), '{"$regexp":"/a+/"}'),
            (ValueError("boom"), '{"$error":{"name":"ValueError","message":"boom"}}'), (None, "null"), ("é", '"é"'),
        ]
        for value, shown in cases:
            with self.subTest(shown):
                self.assertEqual(to_json(value), shown)
        self.assertEqual(to_text({"a": b"xyz"}), '{\n  "a": "<3 bytes>"\n}')
        self.assertEqual(to_text("as is\n"), "as is\n")
        self.assertEqual(to_text(b"raw"), b"raw")
        self.assertEqual(to_line("two\nlines"), '"two\\nlines"')
        self.assertEqual(to_line([1, "a"]), '[1,"a"]')


@unittest.skipUnless(NODE and BUILT, "needs node and a built labc (npm run build) for the router")
class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="labc-py-cli-")
        cls.env = dict(os.environ)
        cls.env.update({
            "XDG_CONFIG_HOME": cls.dir, "XDG_STATE_HOME": cls.dir, "XDG_CACHE_HOME": cls.dir,
            "LABC_ROUTER_PORT": str(free_port()), "LABC_ROUTER_LINGER": "1", "LABC_DISCOVERY_ENABLED": "false",
            "LABC_COMMAND": f"{NODE} {CLI_JS}", "PYTHONPATH": PACKAGE, "PYTHONUNBUFFERED": "1",
        })
        cls.env.pop("LABC_STATE", None)
        cls.file = os.path.join(cls.dir, "lab_service.py")
        with open(cls.file, "w") as f:
            f.write(SERVICE)
        cls.server = cls.start_serve(cls.file)
        cls.router_pid = json.loads(cls.labc("call", "--json", "core.info").stdout)["pid"]

    @classmethod
    def tearDownClass(cls):
        cls.end(cls.server)
        try:
            os.kill(cls.router_pid, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
        shutil.rmtree(cls.dir, ignore_errors=True)

    # --- helpers ------------------------------------------------------------------------------

    @classmethod
    def labc(cls, *args, input=None, timeout=30):
        return subprocess.run([sys.executable, "-m", "labc", *args], env=cls.env, cwd=cls.dir, input=input,
                              capture_output=True, timeout=timeout)

    def text(self, *args, **kw):
        done = self.labc(*args, **kw)
        done.stdout, done.stderr = done.stdout.decode(), done.stderr.decode()
        return done

    def ok(self, *args, **kw) -> str:
        done = self.text(*args, **kw)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    @classmethod
    def start_serve(cls, *args):
        process = subprocess.Popen([sys.executable, "-m", "labc", "serve", *args], env=cls.env, cwd=cls.dir,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = process.stdout.readline()
        if not line.startswith("labc: serving"):
            cls.end(process)
            raise AssertionError(f"serve did not serve: {line!r} {process.stderr.read()}")
        process.serving = line  # type: ignore[attr-defined]
        return process

    @staticmethod
    def end(process, sig=signal.SIGKILL):
        if process.poll() is None:
            os.kill(process.pid, sig)
        process.wait(20)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()

    # --- call ---------------------------------------------------------------------------------

    def test_call_prints_a_result_converted_by_the_declared_types(self):
        self.assertEqual(self.ok("call", "add", "1", "2"), "3\n")
        self.assertEqual(self.ok("call", "add", "--", "-1", "2.5"), "1.5\n")
        self.assertEqual(self.ok("call", "say", "42"), "42\n")  # a str parameter takes the text
        self.assertEqual(self.ok("call", "say", "hello world"), "hello world\n")
        self.assertEqual(self.ok("call", "thermometer.read"), "21.5\n")

    def test_call_json_shows_what_json_cannot_say(self):
        self.assertEqual(json.loads(self.ok("call", "--json", "data")),
                         {"tags": {"$set": ["a"]}, "at": "2024-01-02T03:04:05.000Z", "big": {"$bigint": str(2 ** 60)}, "n": 1.5})
        self.assertEqual(json.loads(self.ok("call", "--json", "blob")), {"$binary": "AAH+/w=="})
        self.assertEqual(self.labc("call", "blob").stdout, bytes([0, 1, 254, 255]))  # raw bytes: > file works

    def test_a_stream_prints_each_item_on_its_line(self):
        self.assertEqual(self.ok("call", "count", "3"), "0\n1\n2\n")
        self.assertEqual(self.ok("call", "--json", "count", "2"), "0\n1\n")

    def test_an_argument_from_stdin_or_a_file(self):
        self.assertEqual(self.ok("call", "say", "-", input=b"from stdin\n"), "from stdin\n")
        path = os.path.join(self.dir, "arg.txt")
        with open(path, "w") as f:
            f.write("from a file\n")
        self.assertEqual(self.ok("call", "say", f"@{path}"), "from a file\n")

    def test_errors_are_one_line_with_their_code_and_exit_codes_tell_them_apart(self):
        missing = self.text("call", "nothing_here")
        self.assertEqual(missing.returncode, 1)
        self.assertEqual(missing.stderr, 'labc: no function "nothing_here" in network scope (no server offers it) [LABC_NO_SUCH_FUNCTION]\n')
        failed = self.text("call", "fail")
        self.assertEqual(failed.returncode, 1)
        self.assertRegex(failed.stderr, r"^labc: fail on server \S+ .*: too hot \[LABC_REMOTE_ERROR\]\n$")
        wrong = self.text("call", "add", "1")
        self.assertEqual((wrong.returncode, wrong.stderr), (2, "labc: add(a: number, b: number) takes 2 arguments, not 1\n"))
        typed = self.text("call", "add", "one", "2")
        self.assertEqual((typed.returncode, typed.stderr), (2, 'labc: add(a: number, b: number): a must be a number, not "one"\n'))
        usage = self.text("call")
        self.assertEqual(usage.returncode, 2)
        self.assertTrue(usage.stderr.startswith("labc: the following arguments are required: name"), usage.stderr)
        timeout = self.text("call", "--timeout", "0.3", "slow", "2")
        self.assertEqual(timeout.returncode, 1)
        self.assertRegex(timeout.stderr, r"^labc: call to \"slow\" .*timed out after 300 ms \[LABC_TIMEOUT\]\n$")

    def test_ctrl_c_cancels_a_call_and_exits_130(self):
        process = subprocess.Popen([sys.executable, "-m", "labc", "call", "slow", "5"], env=self.env, cwd=self.dir,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.5)
            os.kill(process.pid, signal.SIGINT)
            out, err = process.communicate(timeout=10)
        finally:
            self.end(process)
        self.assertEqual((process.returncode, out, err), (130, "", "labc: interrupted (Ctrl-C)\n"))

    def test_call_all_and_host(self):
        host = json.loads(self.ok("call", "--json", "core.info"))["host"]
        self.assertEqual(self.ok("call", "--host", host, "add", "2", "2"), "4\n")
        answers = json.loads(self.ok("call", "--all", "--json", "add", "1", "1"))
        self.assertEqual([a["value"] for a in answers], [2])

    # --- publish and subscribe ----------------------------------------------------------------

    def test_subscribe_prints_publications_until_its_count(self):
        process = subprocess.Popen([sys.executable, "-m", "labc", "subscribe", "lab.#", "--count", "2"], env=self.env, cwd=self.dir,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(process.stderr.readline(), "labc: subscribed to lab.#; stops after 2 publication(s) or on Ctrl-C\n")
            published = self.text("publish", "lab.temp.room1", "21.5", '{"unit": "C"}')
            self.assertEqual(published.stderr, "labc: published on lab.temp.room1 to 2 server(s)\n")  # the service's class too
            self.ok("publish", "lab.note", "hello there")
            out, _ = process.communicate(timeout=10)
        finally:
            self.end(process)
        self.assertEqual(process.returncode, 0)
        self.assertEqual(out, 'lab.temp.room1 21.5 {"unit":"C"}\nlab.note hello there\n')

    def test_subscribe_json_and_publish_to_a_host(self):
        process = subprocess.Popen([sys.executable, "-m", "labc", "subscribe", "json.*", "--json", "--count", "1"], env=self.env,
                                   cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            process.stderr.readline()
            host = json.loads(self.ok("call", "--json", "core.info"))["host"]
            self.assertEqual(self.text("publish", "--host", host, "json.x", "[1,2]").stderr, f"labc: published on json.x to 1 server(s) on {host}\n")
            out, _ = process.communicate(timeout=10)
        finally:
            self.end(process)
        self.assertEqual(json.loads(out), {"topic": "json.x", "args": [[1, 2]]})

    # --- ls -----------------------------------------------------------------------------------

    def test_ls_lists_functions_and_subscriptions(self):
        out = self.ok("ls")
        self.assertRegex(out, r"^FUNCTION\s+SCOPE\s+VISIBILITY\s+HOST\s+PID\s+ADDRESS\s+STATE\n")
        self.assertRegex(out, rf"\nadd\s+network\s+public\s+\S+\s+{self.server.pid}\s+127\.0\.0\.1:\d+\s+ok\n")
        self.assertRegex(out, rf"\n\nSUBSCRIPTION\s+HOST\s+PID\s+ADDRESS\s+STATE\nlab\.temp\.\*\s+\S+\s+{self.server.pid}\s")
        self.assertIn("add(a: number, b: number)", self.ok("ls", "--long"))
        servers = json.loads(self.ok("ls", "--json"))
        ours = next(s for s in servers if s["pid"] == self.server.pid)
        self.assertIn({"name": "say", "scope": "network", "visibility": "public", "params": [{"name": "text", "type": "string"}]}, ours["functions"])
        self.assertEqual(ours["topics"], ["lab.temp.*"])

    # --- serve --------------------------------------------------------------------------------

    def test_serve_says_what_it_serves_with_the_files_state_id(self):
        self.assertRegex(self.server.serving, r"^labc: serving Thermometer, add, say, count, blob, data, slow, fail on 0\.0\.0\.0:\d+ "
                                              rf"\(router on port {self.env['LABC_ROUTER_PORT']}, pid {self.router_pid}, state [0-9a-f]{{12}}\); Ctrl-C stops\n$")
        listed = json.loads(self.ok("serve", "--list", self.file))
        self.assertEqual(listed, {"name": "Thermometer", "classes": ["Thermometer"], "functions": ["add", "say", "count", "blob", "data", "slow", "fail"],
                                  "subscriptions": []})

    def test_serve_stops_on_sigterm_answering_the_call_in_flight(self):
        path = os.path.join(self.dir, "slowpoke.py")
        with open(path, "w") as f:
            f.write("import time, labc\n\n@labc.register\ndef slowpoke(s: float) -> str:\n    time.sleep(s)\n    return 'done'\n")
        server = self.start_serve(path, "--threads", "2")
        call = subprocess.Popen([sys.executable, "-m", "labc", "call", "slowpoke", "1.5"], env=self.env, cwd=self.dir,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.8)
            os.kill(server.pid, signal.SIGTERM)
            out, err = call.communicate(timeout=15)
            self.assertEqual((call.returncode, out, err), (0, "done\n", ""))
            self.assertEqual(server.wait(15), 0)
        finally:
            self.end(call)
            self.end(server)
        gone = self.text("call", "slowpoke", "0")
        self.assertIn('no function "slowpoke"', gone.stderr)

    def test_serve_refuses_a_file_with_nothing_to_serve_or_that_does_not_load(self):
        empty = os.path.join(self.dir, "empty.py")
        with open(empty, "w") as f:
            f.write("x = 1\n")
        refused = self.text("serve", empty)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("has no class with @labc.register or @labc.subscribe methods", refused.stderr)
        self.assertTrue(refused.stderr.endswith("[LABC_SERVICE_LOAD]\n"))
        broken = os.path.join(self.dir, "broken.py")
        with open(broken, "w") as f:
            f.write("import labc\nraise RuntimeError('no instrument')\n")
        self.assertEqual(self.text("serve", broken).stderr, f"labc: {broken}: does not load: RuntimeError: no instrument [LABC_SERVICE_LOAD]\n")
        self.assertEqual(self.text("serve", os.path.join(self.dir, "nowhere.py")).stderr,
                         f"labc: {os.path.join(self.dir, 'nowhere.py')}: no such file [LABC_SERVICE_LOAD]\n")

    # --- help ---------------------------------------------------------------------------------

    def test_help_on_each_command(self):
        self.assertIn("call", self.ok("--help"))
        for command, says in [("call", "--timeout"), ("publish", "--host"), ("subscribe", "--count"), ("ls", "--long"),
                              ("serve", "--threads"), ("hosts", "--json")]:
            with self.subTest(command):
                self.assertIn(says, self.ok(command, "--help"))
        nothing = self.text()
        self.assertEqual(nothing.returncode, 2)
        self.assertIn("usage: python -m labc", nothing.stderr)


if __name__ == "__main__":
    unittest.main()

"""The package's parts that need no network: topics, the pool's choice of a server, signatures,
route names, configuration and errors (the same rules as the TypeScript side's unit tests)."""

import os
import stat
import tempfile
import unittest

from labc import errors
from labc.config import load_config
from labc.decorators import is_method, route_name
from labc.pool import Perspective, Pool
from labc.signature import count_problem, params_of
from labc.topics import check_pattern, check_topic, parse_subscription, pattern_matches


class Topics(unittest.TestCase):
    def test_wildcards(self):
        self.assertTrue(pattern_matches("lab.#", "lab"))
        self.assertTrue(pattern_matches("lab.#", "lab.temp.room1"))
        self.assertTrue(pattern_matches("lab.*", "lab.temp"))
        self.assertFalse(pattern_matches("lab.*", "lab.temp.room1"))
        self.assertFalse(pattern_matches("lab.*", "lab"))
        self.assertTrue(pattern_matches("lab/temp", "lab.temp"))

    def test_refusals(self):
        with self.assertRaisesRegex(errors.BadArgumentsError, "wildcards belong in subscriptions"):
            check_topic("lab.*")
        with self.assertRaisesRegex(errors.BadArgumentsError, "empty word"):
            check_topic("lab..temp")
        with self.assertRaisesRegex(errors.BadArgumentsError, '"#" may only be the last word'):
            check_pattern("lab.#.x")
        with self.assertRaisesRegex(errors.BadArgumentsError, "whole words"):
            check_pattern("lab.te*")

    def test_groups(self):
        self.assertEqual(parse_subscription("jobs.resize #workers"), ("jobs.resize", "workers"))
        self.assertEqual(parse_subscription("jobs.#"), ("jobs.#", None))


def entry(id, host_id, functions, topics=(), **extra):
    return {"id": id, "host": f"name-{host_id}", "hostId": host_id, "address": "127.0.0.1", "port": 1, "pid": 1,
            "functions": [{"name": n, "scope": s, "visibility": v} for n, s, v in functions], "topics": list(topics), **extra}


class PoolChoice(unittest.TestCase):
    def setUp(self):
        self.pool = Pool()
        self.pool.replace([
            entry("here", "h1", [("f", "network", "public"), ("loc", "network", "local"), ("priv", "network", "private")]),
            entry("there", "h2", [("f", "network", "public"), ("loc", "network", "local"), ("priv", "network", "private"), ("hosty", "host", "public")]),
            entry("secretive", "h1", [("s", "network", "secret")]),
        ])

    def test_the_most_local_first(self):
        for _ in range(20):
            self.assertEqual(self.pool.resolve("f", "network", Perspective("h1")).id, "here")
            self.assertEqual(self.pool.resolve("f", "network", Perspective("h2")).id, "there")

    def test_visibility(self):
        at = Perspective("h1")
        self.assertIsNone(self.pool.resolve("s", "network", at))
        self.assertEqual(self.pool.resolve("loc", "network", Perspective("h3")), None)
        self.assertIsNone(self.pool.resolve("hosty", "network", at))
        # A private function of a host named with get_host is callable; a local one is not.
        named = Perspective("h2", None, "h3", None, named=True)
        self.assertEqual(self.pool.resolve("priv", "network", named).id, "there")
        self.assertIsNone(self.pool.resolve("loc", "network", named))

    def test_suspects_only_when_nothing_else(self):
        self.pool.set_suspect("here", True)
        self.assertEqual(self.pool.resolve("f", "network", Perspective("h1")).id, "there")
        self.pool.set_suspect("there", True)
        self.assertIn(self.pool.resolve("f", "network", Perspective("h1")).id, ("here", "there"))

    def test_notices(self):
        self.pool.apply_withdraw({"server": "here", "functions": ["f"], "topics": []})
        self.assertEqual(self.pool.resolve("f", "network", Perspective("h1")).id, "there")
        self.pool.remove("there")
        self.assertIsNone(self.pool.resolve("f", "network", Perspective("h1")))
        self.pool.apply_announce({"server": entry("new", "h1", [("f", "network", "public")], ["a.*", "b #g"])})
        self.assertEqual(self.pool.resolve("f", "network", Perspective("h1")).id, "new")
        self.assertEqual([s.id for s in self.pool.subscribers("a.x", None)], ["new"])
        self.assertEqual([s.id for s in self.pool.subscribers("a.x", "new")], [])
        self.assertEqual({g: [s.id for s in m] for g, m in self.pool.group_members("b").items()}, {"g": ["new"]})


class Signatures(unittest.TestCase):
    def test_params_and_counts(self):
        def add(a: float, b: float = 1, *rest: int, key=None):
            return a

        params = params_of(add)
        self.assertEqual(params, [{"name": "a", "type": "number"}, {"name": "b", "type": "number", "optional": True}, {"name": "rest", "rest": True, "type": "number[]"}])
        entry = {"name": "add", "params": params}
        self.assertEqual(count_problem(entry, 0), "add(a: number, b?: number, ...rest: number[]) takes at least 1 argument, not 0")

        class Psu:
            def set_voltage(self, volts: float):
                pass

        self.assertEqual(params_of(Psu().set_voltage), [{"name": "volts", "type": "number"}])
        self.assertEqual(count_problem({"name": "psu.set_voltage", "params": params_of(Psu().set_voltage)}, 2),
                         "psu.set_voltage(volts: number) takes 1 argument, not 2")

    def test_route_names(self):
        self.assertEqual(route_name("PowerSupply"), "power_supply")
        self.assertEqual(route_name("HTTPServer"), "http_server")
        self.assertEqual(route_name("Camera2D"), "camera2_d")

        class Thing:
            def method(self):
                pass

        def plain():
            pass

        self.assertTrue(is_method(Thing.method))
        self.assertFalse(is_method(plain))


try:
    import tomllib  # noqa: F401
except ImportError:
    tomllib = None


class Configuration(unittest.TestCase):
    @unittest.skipIf(tomllib is None, "config files are read with tomllib, Python 3.11 and newer (older ones read the environment only)")
    def test_order_and_errors(self):
        with tempfile.TemporaryDirectory() as home:
            os.makedirs(os.path.join(home, "labc"))
            with open(os.path.join(home, "labc", "config.toml"), "w") as file:
                file.write('[router]\nport = 6001\n[call]\ntimeout = 5\n[services.X]\nspeed = 3\n')
            env = {"XDG_CONFIG_HOME": home, "LABC_CALL_TIMEOUT": "7"}
            config = load_config(env=env, cwd=home)
            self.assertEqual(config["router.port"], 6001)
            self.assertEqual(config["call.timeout"], 7.0)
            self.assertEqual(config.sources["call.timeout"], "env LABC_CALL_TIMEOUT")
            self.assertEqual(load_config({"router.port": 6002}, env=env, cwd=home)["router.port"], 6002)
            with self.assertRaisesRegex(errors.ConfigError, "LABC_ROUTER_PORT: router.port must be a number"):
                load_config(env={"XDG_CONFIG_HOME": home, "LABC_ROUTER_PORT": "lots"}, cwd=home)
            with self.assertRaisesRegex(errors.ConfigError, "unknown configuration key"):
                load_config({"router.portt": 1}, env=env, cwd=home)

    def test_a_secret_file_others_may_read_is_refused(self):
        with tempfile.TemporaryDirectory() as home:
            os.makedirs(os.path.join(home, "labc"))
            path = os.path.join(home, "labc", "secret")
            with open(path, "w") as file:
                file.write("labc1_" + "A" * 43 + "\n")
            os.chmod(path, 0o600)
            self.assertEqual(load_config(env={"XDG_CONFIG_HOME": home}, cwd=home)["network.secret"], "labc1_" + "A" * 43)
            os.chmod(path, 0o644)
            with self.assertRaisesRegex(errors.ConfigError, "chmod 600"):
                load_config(env={"XDG_CONFIG_HOME": home}, cwd=home)
            self.assertFalse(os.stat(path).st_mode & stat.S_IWOTH)


class Errors(unittest.TestCase):
    def test_labc_errors_come_back_as_their_class(self):
        for cls in errors.BY_WIRE_NAME.values():
            if cls is errors.RemoteError:
                continue
            error = errors.error_from_exc({"name": cls.wire_name, "code": cls.code, "message": "m"}, "f", "s")
            self.assertIs(type(error), cls)
            self.assertEqual(error.code, cls.code)
        self.assertTrue(errors.error_from_exc({"name": "TimeoutError", "code": "LABC_TIMEOUT", "message": "m"}, "f", "s").retryable)
        self.assertIsInstance(errors.CallTimeout("x"), TimeoutError)

    def test_anything_else_is_a_remote_error(self):
        error = errors.error_from_exc({"name": "TypeError", "code": "E_INPUT", "message": "bad input", "data": {"field": "x"}}, "f", "server 1")
        self.assertIsInstance(error, errors.RemoteError)
        self.assertEqual((error.remote_name, error.remote_code, error.field), ("TypeError", "E_INPUT", "x"))
        self.assertEqual(str(error), "f on server 1: bad input")
        # A name of labc's with another code is not taken for labc's own.
        forged = errors.error_from_exc({"name": "NotTrustedError", "message": "m"}, "f", "s")
        self.assertIsInstance(forged, errors.RemoteError)

    def test_what_a_served_function_raises_travels(self):
        class QuotaError(Exception):
            def __init__(self):
                super().__init__("over quota")
                self.code = "E_QUOTA"
                self.limit = 3

        try:
            try:
                raise KeyError("k")
            except KeyError as cause:
                raise QuotaError() from cause
        except QuotaError as error:
            body = errors.exc_body(error)
        self.assertEqual(body["name"], "QuotaError")
        self.assertEqual(body["code"], "E_QUOTA")
        self.assertEqual(body["data"], {"limit": 3})
        self.assertIsInstance(body["cause"], KeyError)
        self.assertEqual(errors.exc_body(errors.NoSuchFunctionError("no", data={"function": "f"})),
                         {"name": "NoSuchFunctionError", "code": "LABC_NO_SUCH_FUNCTION", "message": "no", "data": {"function": "f"}})


if __name__ == "__main__":
    unittest.main()

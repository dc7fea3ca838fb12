"""Runs every Python suite of this folder (what ``python3 -m unittest discover -s
clients/python/tests`` runs) and writes the counts for CI: ``{"passed", "failed", "skipped"}``
as JSON, to the file given as argument (or $LABC_PY_RESULTS), for .ci/summary.mjs to add to the
TypeScript suite's. A class whose setUpClass failed counts as one failed test, as does a module
that did not import. Exits 1 when anything failed.

    python3 clients/python/tests/report.py .ci/python-results.json
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv) -> int:
    # Run in the background (`cmd &` in a script), this process may start with SIGINT ignored,
    # which every child would inherit: the tests that press Ctrl-C on a child would then find it
    # deaf. A handler of our own is reset to the default in each child at exec, so they hear it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    out = argv[1] if len(argv) > 1 else os.environ.get("LABC_PY_RESULTS")
    sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the tests' support.py, then this checkout's labc
    started = time.monotonic()
    suite = unittest.defaultTestLoader.discover(HERE, top_level_dir=HERE)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - len(result.failures) - len(result.unexpectedSuccesses) - skipped
    # An error outside a test (setUpClass, a class cleanup) is not one of testsRun.
    passed -= sum(1 for test, _ in result.errors if isinstance(test, unittest.TestCase))
    # Secured links need Python 3.13's ssl: when this Python is older and a newer one is on the
    # machine, the suites of secured links run there too (their tests here skip, saying so).
    newer = None
    if sys.version_info < (3, 13):
        newer = newer_python()
        if newer:
            more = run_on(newer, "test_tls", "test_tls_socket", "test_rotation")
            passed, failed, skipped = passed + more["passed"], failed + more["failed"], skipped + more["skipped"]
    # Named for .ci/summary.mjs, which repeats them at the end: CI shows only the output's tail.
    names = [f"{test}: {last_line(trace)}" for test, trace in result.failures + result.errors]
    names += [f"{test}: an unexpected success" for test in result.unexpectedSuccesses]
    if sys.version_info < (3, 13) and newer:
        names += more["names"]
    counts = {"passed": max(0, passed), "failed": failed, "skipped": skipped, "seconds": round(time.monotonic() - started, 1), "names": names}
    if out:
        with open(out, "w", encoding="utf-8") as file:
            json.dump(counts, file)
    print(f"python: {counts['passed']} passed, {failed} failed, {skipped} skipped in {counts['seconds']} s")
    return 0 if failed == 0 else 1


def newer_python():
    """A Python 3.13 or newer of this machine that runs: $LABC_PYTHON_TLS, pyenv's, or python3.13
    on the PATH (a pyenv shim there may lead nowhere: each candidate is asked its version)."""
    candidates = [os.environ.get("LABC_PYTHON_TLS")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[3-9]*/bin/python3")), reverse=True)
    candidates += [shutil.which("python3.14"), shutil.which("python3.13")]
    for python in filter(None, candidates):
        try:
            asked = subprocess.run([python, "-c", "import sys; print(sys.version_info >= (3, 13))"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if asked.stdout.strip() == "True":
            return python
    return None


def run_on(python: str, *modules: str) -> dict:
    """Runs suites on another Python; their counts, read off unittest's summary."""
    print(f"python: {' '.join(modules)} on {python}", flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.path.dirname(HERE)]))
    done = subprocess.run([python, "-m", "unittest", "-v", *modules], cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(done.stdout)
    names = [f"{kind}: {name} on {python}" for kind, name in re.findall(r"^(FAIL|ERROR): (.+)$", done.stdout, re.M)]
    ran = re.search(r"^Ran (\d+) tests?", done.stdout, re.M)
    if not ran:
        return {"passed": 0, "failed": 1, "skipped": 0, "names": names or [f"{' '.join(modules)} on {python}: no summary"]}
    total = int(ran.group(1))
    found = {key: int(n) for key, n in re.findall(r"(failures|errors|skipped|unexpected successes)=(\d+)", done.stdout.splitlines()[-1])}
    failed = found.get("failures", 0) + found.get("errors", 0) + found.get("unexpected successes", 0)
    if done.returncode != 0 and failed == 0:
        failed = 1
    skipped = found.get("skipped", 0)
    return {"passed": max(0, total - failed - skipped), "failed": failed, "skipped": skipped, "names": names}


def last_line(trace: str) -> str:
    """The line of a traceback that says what went wrong (its last)."""
    lines = [line for line in trace.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else ""


if __name__ == "__main__":
    sys.exit(main(sys.argv))

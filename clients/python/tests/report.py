"""Runs every Python suite of this folder (what ``python3 -m unittest discover -s
clients/python/tests`` runs) and writes the counts for CI: ``{"passed", "failed", "skipped"}``
as JSON, to the file given as argument (or $LABC_PY_RESULTS), for .ci/summary.mjs to add to the
TypeScript suite's. A class whose setUpClass failed counts as one failed test, as does a module
that did not import. Exits 1 when anything failed.

    python3 clients/python/tests/report.py .ci/python-results.json
"""

from __future__ import annotations

import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv) -> int:
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
    counts = {"passed": max(0, passed), "failed": failed, "skipped": skipped, "seconds": round(time.monotonic() - started, 1)}
    if out:
        with open(out, "w", encoding="utf-8") as file:
            json.dump(counts, file)
    print(f"python: {counts['passed']} passed, {failed} failed, {skipped} skipped in {counts['seconds']} s")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

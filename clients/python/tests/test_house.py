"""The layout of the Python package held, as test/unit/house.test.ts holds lib/ and cli/: no
module of clients/python/labc is over 400 lines, and its modules import one another without a
circle.

Every import of one module of the package by another counts, wherever it stands: at the top,
inside a function or a method, under ``if TYPE_CHECKING:``. An import moved into a function
only delays the circle to the first call; it still means neither module can be read (or loaded)
without the other, so it is no way out here: the shared part moves to a module both import.
``import labc`` (or ``from labc import ...``) inside the package is an import of its
``__init__.py``, and counts too.
"""

import ast
import os
import unittest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "labc")
MAX_LINES = 400


def modules():
    return sorted(name[:-3] for name in os.listdir(PACKAGE) if name.endswith(".py"))


def imports_of(module, known):
    """The package's modules that ``module`` imports, anywhere in its text."""
    with open(os.path.join(PACKAGE, module + ".py"), encoding="utf-8") as file:
        tree = ast.parse(file.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .errors import X, from .a.b import X
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import service_file
                found.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.split(".")[0] == "labc":
                parts = node.module.split(".")
                found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "labc":
                    # import labc.aio loads labc first, then labc.aio.
                    found.add("__init__")
                    if len(parts) > 1:
                        found.add(parts[1])
    found.discard(module)
    return sorted(target for target in found if target in known)


class House(unittest.TestCase):
    def test_no_module_over_400_lines(self):
        big = {}
        for module in modules():
            with open(os.path.join(PACKAGE, module + ".py"), encoding="utf-8") as file:
                lines = len(file.read().splitlines())
            if lines > MAX_LINES:
                big[module + ".py"] = lines
        self.assertEqual(big, {})

    def test_no_import_circle(self):
        known = set(modules())
        graph = {module: imports_of(module, known) for module in known}
        circles = []
        state = {}
        path = []

        def visit(module):
            state[module] = "open"
            path.append(module)
            for target in graph[module]:
                if state.get(target) == "open":
                    circles.append(" -> ".join(path[path.index(target):] + [target]))
                elif target not in state:
                    visit(target)
            path.pop()
            state[module] = "done"

        for module in sorted(known):
            if module not in state:
                visit(module)
        self.assertEqual(circles, [])

    def test_the_checks_see_the_whole_package(self):
        known = set(modules())
        self.assertGreater(len(known), 20)
        self.assertIn("runtime", imports_of("__init__", known))
        self.assertIn("errors", imports_of("frames", known))


if __name__ == "__main__":
    unittest.main()

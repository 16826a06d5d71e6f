"""The test suite's layout rule: shared harness code lives in stratum.testing, so no test
module imports another test module (nor conftest); `from tests import ...` is only for the
repository paths that tests/__init__.py names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _paths_named_by_the_package() -> set[str]:
    tree = ast.parse((TESTS / "__init__.py").read_text())
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _imports_of_test_code(path: Path, allowed: set[str]) -> Iterator[str]:
    """Each import in `path` (at any depth) that reaches into the test suite."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(TESTS.parent)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "tests" or alias.name.startswith("tests."):
                    yield f"{where}: import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level > 0:
                yield f"{where}: from {'.' * node.level}{module} import ..."
            elif module.startswith("tests."):
                yield f"{where}: from {module} import ..."
            elif module == "tests":
                for alias in node.names:
                    if alias.name not in allowed:
                        yield f"{where}: from tests import {alias.name} (not a path)"


def test_no_test_module_imports_another() -> None:
    allowed = _paths_named_by_the_package()
    assert {"REPO", "EXAMPLES"} <= allowed
    found = [
        problem
        for path in sorted(TESTS.rglob("*.py"))
        for problem in _imports_of_test_code(path, allowed)
    ]
    assert found == [], "move shared code to stratum.testing:\n" + "\n".join(found)

"""The engine must stay pure: no I/O, no event loop, no clock, no randomness.

That is what lets a month of nights replay in a second and every rule be
tested at simulated time. This walks the engine's own import graph.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("alerts", "gateway", "device_profiles", "simulator")
FORBIDDEN_MODULES = {
    "asyncio", "socket", "time", "os", "io", "sys", "threading", "subprocess", "pathlib",
    "random", "secrets", "logging", "sqlite3", "urllib", "http", "json", "yaml", "aiomqtt",
    "paho", "apprise", "psycopg", "psycopg_pool", "fastapi", "uvicorn", "pydantic",
    "device_profiles", "gateway", "simulator", "concurrent", "selectors", "signal",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "sleep"}


def _module_path(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, name
    return Path(spec.origin)


def _imports(tree: ast.AST) -> set[str]:
    """Module-level imports only: TYPE_CHECKING blocks and function bodies are not run."""
    names: set[str] = set()
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _engine_closure() -> dict[str, ast.Module]:
    seen: dict[str, ast.Module] = {}
    todo = ["alerts.engine"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = tree = ast.parse(_module_path(name).read_text())
        todo += [m for m in _imports(tree) if m.split(".")[0] == "alerts"]
    return seen


def test_engine_imports_nothing_that_does_io_or_reads_time() -> None:
    for name, tree in _engine_closure().items():
        for imported in _imports(tree):
            top = imported.split(".")[0]
            assert top not in FORBIDDEN_MODULES, f"{name} imports {imported}"


def test_engine_never_calls_a_clock() -> None:
    for name, tree in _engine_closure().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in FORBIDDEN_CALLS, (
                    f"{name} line {node.lineno} calls .{node.func.attr}()"
                )


def test_closure_covers_the_rule_modules() -> None:
    closure = set(_engine_closure())
    assert {"alerts.engine", "alerts.rules", "alerts.lifecycle", "alerts.state"} <= closure
    assert "alerts.homeconfig" not in closure

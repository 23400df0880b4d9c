"""The shape of the code, checked on every run: steps are thin adapters over a library that
never imports a step, there is no import cycle, and each DVC stage depends on exactly the
modules its step runs.

A small AST walk over flows/ and tasks/ (imports inside functions count: they run too).
"""

from __future__ import annotations

import ast
import statistics
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
MAX_MODULE_LINES = 400
MAX_MEDIAN_FUNCTION_LINES = 12


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {  # the packages' __init__ files are empty: not modules of their own here
    _module_name(p): p
    for folder in ("flows", "tasks")
    for p in sorted((ROOT / folder).glob("*.py"))
    if p.name != "__init__.py"
}


def _owner(name: str) -> str | None:
    """The known module a dotted import resolves to (`tasks.train` for `tasks.train.run`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text())


def imports_of(module: str) -> set[str]:
    """The flows/ and tasks/ modules that `module` imports, anywhere in its body."""
    found: set[str | None] = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            found |= {_owner(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(_owner(node.module))
            found |= {_owner(f"{node.module}.{alias.name}") for alias in node.names}
    return {name for name in found if name and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def closure(module: str) -> set[str]:
    """`module` and everything it imports, directly or not."""
    seen, todo = {module}, [module]
    while todo:
        for imported in GRAPH[todo.pop()] - seen:
            seen.add(imported)
            todo.append(imported)
    return seen


def is_entry_point(module: str) -> bool:
    """A command (`python -m tasks.<name>`): a DVC stage's step, or predict/promote."""
    return any(
        isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
        for node in _tree(module).body
    )


def test_the_graph_sees_the_steps_and_the_library() -> None:
    assert {f"tasks.{stage}" for stage in DVC} <= set(MODULES)
    assert GRAPH["tasks.train"] >= {"tasks.fitting", "tasks.bundle", "tasks.config"}
    assert "tasks.preprocessing" in GRAPH["tasks.bundle"]  # a lazy import is seen too


def test_no_import_cycle() -> None:
    cycles = [sorted(closure(m) & {n for n in MODULES if m in closure(n)}) for m in MODULES]
    assert not [c for c in cycles if len(c) > 1], cycles


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("tasks.")))
def test_no_tasks_module_imports_a_command_or_a_flow(module: str) -> None:
    """Steps never import steps, the library never imports a step, tasks never import flows."""
    commands = {m for m in GRAPH[module] if m.startswith("tasks.") and is_entry_point(m)}
    flows = {m for m in GRAPH[module] if m.startswith("flows.")}
    assert not commands | flows, f"{module} imports {sorted(commands | flows)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_too_long(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{MODULES[module]}: {lines} lines"


def test_functions_stay_short() -> None:
    lengths = [
        node.end_lineno - node.lineno + 1
        for module in MODULES
        for node in ast.walk(_tree(module))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
    ]
    assert statistics.median(lengths) <= MAX_MEDIAN_FUNCTION_LINES


@pytest.mark.parametrize("stage", sorted(DVC))
def test_each_stage_depends_on_exactly_the_code_it_runs(stage: str) -> None:
    """Changing a library module reruns the stages that use it, and only those."""
    runs = {str(MODULES[m].relative_to(ROOT)) for m in closure(f"tasks.{stage}")}
    listed = {d for d in DVC[stage]["deps"] if d.startswith("tasks/")}
    assert listed == runs, f"missing {sorted(runs - listed)}, extra {sorted(listed - runs)}"

"""The package's structure: no import cycles between modules, and no torch behind the DAG."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "parzc"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """parzc modules imported when `path` is imported (not inside functions or TYPE_CHECKING)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n in modules}
    return found


def test_no_import_cycles():
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: top_level_imports(p, set(paths)) - {m} for m, p in paths.items()}
    # importing a.b.c runs a/__init__ and a/b/__init__ first
    for m in list(graph):
        graph[m] |= {".".join(m.split(".")[:i]) for i in range(1, m.count(".") + 1)} - {m}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1 and not _is_package_of(nxt, node):
                cycles.append(stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def _is_package_of(package: str, module: str) -> bool:
    """A package's __init__ importing its own submodule is how registries load, not a cycle."""
    return module.startswith(package + ".")


def test_parsing_the_workflow_imports_no_torch():
    code = (
        "import sys, yaml\n"
        "from parzc.config import check_names, validate_schema\n"
        "from parzc.dag import Plan\n"
        "config = validate_schema(yaml.safe_load(open('config/full.yaml')))\n"
        "check_names(config)\n"
        "plan = Plan(config)\n"
        "plan.all_targets(); plan.search_files(); plan.metrics_files()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"

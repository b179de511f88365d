"""The house stays as drawn: imports run down the layers only (`skills` <- `agent` <- `gateway`;
`adapters` knows its platforms and its own base), and no two of our modules import each other,
directly or round a loop, counting imports inside functions too (a lazy import does not break a
cycle, it hides one). `if TYPE_CHECKING:` blocks are left out: they never run."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("skills", "agent", "adapters", "gateway")
MAY_IMPORT = {"skills": {"skills"}, "agent": {"agent", "skills"}, "adapters": {"adapters"},
              "gateway": {"gateway", "agent", "skills", "adapters"}}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "bundled" in path.relative_to(ROOT).parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Our modules that `name` imports anywhere in its body."""
    raw: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                raw.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    package = package[:len(package) - child.level + 1]
                    base = ".".join(package + ([base] if base else []))
                submodules = {f"{base}.{alias.name}" for alias in child.names} & MODULES.keys()
                raw.update(submodules)
                if len(submodules) < len(child.names):
                    raw.add(base)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    ours: set[str] = set()
    for target in raw:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != name:
            ours.add(target)
    return ours


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_imports_run_down_the_layers() -> None:
    wrong = sorted(f"{name} imports {target}" for name, targets in GRAPH.items() for target in targets
                   if target.split(".")[0] not in MAY_IMPORT[name.split(".")[0]])
    assert wrong == []


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strong(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                strong(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            strong(node)
    assert [_loop(component) for component in cycles] == []


def _loop(component: list[str]) -> str:
    """One import loop through a strongly connected component, as a path `a -> b -> ... -> a`."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(GRAPH[node] & members):
            if target == start:
                return " -> ".join([*paths[node], start])
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return " -> ".join(component)


def test_the_check_sees_an_import_inside_a_function() -> None:
    # the CLI imports its subcommands lazily: those imports must be in the graph
    assert "gateway.cli.skill_access" in GRAPH["gateway.cli.hub_cmd"]

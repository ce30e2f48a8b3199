"""The shape of the package: no import cycle, no service type named in code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from hbsdeploy.load.schemaset import package_schemas

PACKAGE = Path(__file__).resolve().parent.parent / "hbsdeploy"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.Module, module: str, is_package: bool, *, deferred: bool) -> set[str]:
    """The names a module imports: at load time, or (deferred) also inside functions; never under TYPE_CHECKING."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and not deferred:
            return
        else:
            for nested in ast.iter_child_nodes(node):
                visit(nested)

    visit(tree)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_graph(*, deferred: bool = False) -> dict[str, set[str]]:
    """Module -> the hbsdeploy modules it imports at load time (with `deferred`, also in function bodies);
    importing `a.b.c` also loads `a.b` and `a`."""
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        imported = _imports(tree, module, path.name == "__init__.py", deferred=deferred)
        edges = {name for name in imported if name in known}
        for target in list(edges):
            parts = target.split(".")
            edges.update(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in known)
        edges.discard(module)
        # a package's own parents load before it and are not an edge that can close a cycle through it
        edges = {e for e in edges if not module.startswith(e + ".")}
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                cycle = walk(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = walk(start)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle_at_load_time() -> None:
    graph = import_graph()
    assert "hbsdeploy.load.settings" in graph["hbsdeploy.plan.model"], "the graph must see the package's imports"
    assert "hbsdeploy.tools.importer" not in graph["hbsdeploy.cli.main"], "a deferred import is not a load-time edge"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_package_has_no_import_cycle_counting_deferred_imports() -> None:
    """A lazy import inside a function is still a dependency: the layers stay acyclic with those too."""
    graph = import_graph(deferred=True)
    assert "hbsdeploy.tools.importer" in graph["hbsdeploy.cli.main"], "the graph must see the CLI's deferred imports"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the string constants that are docstrings (of the module, a class or a function)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def service_type_names_in_code(names: set[str]) -> list[str]:
    """Every string literal in hbsdeploy/ (outside docstrings) that names one of `names` as a word."""
    pattern = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, sorted(names))) + r")(?![A-Za-z0-9])")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                match = pattern.search(node.value)
                if match:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {match.group(1)!r}")
    return found


def test_no_module_names_a_service_type() -> None:
    """Service types are data (schemas/partner.schema.json): roles, required_for and rule ids come from there."""
    names = set(package_schemas().service_types)
    assert {"authorization", "reservation"} <= names
    assert service_type_names_in_code(names) == []


def test_the_service_type_check_sees_a_literal() -> None:
    assert service_type_names_in_code({"cpo-broadcast"}) != []  # a rule id written in hbsdeploy/check/rules.py


# Each folder imports only the folders before it here (docs/architecture.md); the top-level modules (errors,
# atomic, text, paths) import no folder. render comes after portal because it checks payloads against the
# portal's contract.
LAYERS = ("load", "check", "portal", "render", "plan", "apply", "tools", "cli")


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return len(LAYERS)  # the package itself and `python -m hbsdeploy` sit on top
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else -1  # the top-level modules: below every folder


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a module into a layer above its own (a folder is one layer; the top-level modules share
    the lowest)."""
    return sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                  if _layer(target) > _layer(module) and target != "hbsdeploy")


def test_each_folder_imports_only_the_folders_below_it() -> None:
    graph = import_graph(deferred=True)
    folders = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert folders == set(LAYERS), "every folder has its place in LAYERS"
    assert upward_imports(graph) == []
    assert upward_imports({"hbsdeploy.load.config": {"hbsdeploy.plan.model"}}) == [
        "hbsdeploy.load.config -> hbsdeploy.plan.model"]
    assert upward_imports({"hbsdeploy.errors": {"hbsdeploy.load.config"}}) == [
        "hbsdeploy.errors -> hbsdeploy.load.config"]

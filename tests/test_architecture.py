"""Package architecture: the modules of keras_lakehouse import each other without cycles.

A static check over the source (``ast``), so that an import hidden in a function body, or under
``if TYPE_CHECKING:``, counts as much as one at the top of a module: a cycle that only works
because one side imports lazily is still a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "keras_lakehouse"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE


def module_name(path: Path, root: Path = SOURCE) -> str:
    """``<root>/a/b.py`` → ``keras_lakehouse.a.b``; a package is its folder's name."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(root: Path = SOURCE) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name."""
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def imported_names(path: Path, module: str) -> Iterator[str]:
    """Every dotted name ``module`` imports, anywhere in its body (relative imports resolved).

    ``from a import b`` yields ``a.b``: the module ``a.b`` when there is one, else a name
    defined in ``a`` (``resolve`` tells which). Importing ``a.b`` also runs ``a/__init__.py``;
    that implicit edge to the parent package is left out, as import linters do.
    """
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield from (
                base if alias.name == "*" else f"{base}.{alias.name}" for alias in node.names
            )


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package, if any."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph(root: Path = SOURCE) -> dict[str, set[str]]:
    """Module → the package's modules it imports (no self-edges)."""
    modules = package_modules(root)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {resolve(name, modules) for name in imported_names(path, module)}
        graph[module] = {target for target in targets if target and target != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    """The edges inside one cycle, ``a → b`` each."""
    members = set(component)
    edges = [
        f"{source} → {target}" for source in component for target in sorted(graph[source] & members)
    ]
    return "; ".join(edges)


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, (
        "Expected the keras_lakehouse modules to import each other without cycles (function-level "
        "and TYPE_CHECKING imports included). Received cycles: "
        + " | ".join(describe(component, graph) for component in found)
    )


def test_the_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    root = tmp_path / PACKAGE
    source = root / "pkg"
    source.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (source / "__init__.py").write_text("from .a import run\n")
    (source / "a.py").write_text("def run():\n    from keras_lakehouse.pkg import b\n")
    (source / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    graph = import_graph(root)
    assert graph == {
        "keras_lakehouse": set(),
        "keras_lakehouse.pkg": {"keras_lakehouse.pkg.a"},
        "keras_lakehouse.pkg.a": {"keras_lakehouse.pkg.b"},
        "keras_lakehouse.pkg.b": {"keras_lakehouse.pkg.a"},
    }
    assert cycles(graph) == [["keras_lakehouse.pkg.a", "keras_lakehouse.pkg.b"]]


# ---- the layout a newcomer reads -----------------------------------------------------------------
MAX_MODULE_LINES = 300
README = SOURCE.parents[1] / "README.md"


def test_no_module_is_over_300_lines() -> None:
    long = {
        str(path.relative_to(SOURCE)): lines
        for path in SOURCE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"Split these modules (at most {MAX_MODULE_LINES} lines): {long}"


def readme_layout(text: str) -> set[str]:
    """The folder names of the fenced block under ``## Project layout``."""
    section = text.split("\n## Project layout\n", 1)[1]
    block = section.split("```", 2)[1]
    return {line.split()[0].rstrip("/") for line in block.splitlines() if line.strip()}


def test_the_readme_layout_names_every_package_folder_and_no_other() -> None:
    folders = {
        str(init.parent.relative_to(SOURCE))
        for init in SOURCE.rglob("__init__.py")
        if init.parent != SOURCE
    }
    assert readme_layout(README.read_text()) == folders

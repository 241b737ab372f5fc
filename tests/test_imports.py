"""Imports run one way: a package imports only packages of lower layers, and no modules import
each other in a circle.

The layer order is written once, in :data:`LAYERS` (lowest first). Each layer lists its peers:
packages (or top-level modules) of one level, which must not import each other at all (models
and metrics know nothing of one another). Within a package, modules may import each other, but
never in a circle. Every import counts, wherever it stands: module level, inside a function, or
under ``if TYPE_CHECKING:`` (the source is read with ``ast``, nothing is imported). Names given
as strings to ``importlib`` (the generator and family registries, ``plugins``) are late-bound
on purpose and are not imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import xtalgen

LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("crystal", "plugins", "parallel"),
    ("xtalgen", "io", "matching", "disorder"),  # "xtalgen": the package root (xtalgen/__init__.py)
    ("data", "checkpoints"),
    ("representations",),
    ("conditions",),
    ("nn",),
    ("models", "metrics", "relax", "diffraction"),
    ("search", "properties", "train", "defects"),
    ("pipelines", "screen"),
    ("benchmark",),
    ("cli",),
]
"""Lowest first; the names of one tuple are peers that do not import each other."""

PACKAGE = Path(xtalgen.__file__).parent
LEVEL = {unit: level for level, units in enumerate(LAYERS) for unit in units}


def _module_name(path: Path) -> str:
    parts = ["xtalgen", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The xtalgen modules that ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = name.split(".") if is_package else name.split(".")[:-1]
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            # ``from package import module`` imports the module, ``from module import name`` it
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            if target != "xtalgen" and not target.startswith("xtalgen."):
                continue
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _unit(module: str) -> str:
    """``xtalgen.models.iterative.flow`` -> ``models``; the package root is ``xtalgen``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "xtalgen"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through every strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)

    circles = []
    for group in groups:  # the shortest circle back to the group's first module
        start = min(group)
        paths = {start: [start]}
        queue = [start]
        while queue:
            node = queue.pop(0)
            for target in sorted(graph[node] & group):
                if target == start:
                    circles.append(paths[node] + [start])
                    queue = []
                    break
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    queue.append(target)
    return sorted(circles)


def test_every_package_has_a_layer() -> None:
    units = {_unit(module) for module in _modules()}
    assert not units - set(LEVEL), f"add these to LAYERS in {__file__}: {sorted(units - set(LEVEL))}"
    assert not set(LEVEL) - units, f"LAYERS names what does not exist: {sorted(set(LEVEL) - units)}"


def test_no_import_runs_against_the_layers() -> None:
    wrong = []
    for module, targets in sorted(_graph().items()):
        source = _unit(module)
        for target in sorted(targets):
            destination = _unit(target)
            if source == destination or source not in LEVEL or destination not in LEVEL:
                continue
            if LEVEL[destination] > LEVEL[source]:
                wrong.append(f"{module} imports {target} ({source} is below {destination})")
            elif LEVEL[destination] == LEVEL[source]:
                wrong.append(f"{module} imports {target} ({source} and {destination} are peers)")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_modules_import_each_other() -> None:
    circles = _cycles(_graph())
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_checks_see_what_they_should(tmp_path: Path) -> None:
    """The reader finds imports in functions and under TYPE_CHECKING, relative ones too, and
    the cycle finder finds circles of two and three."""
    source = tmp_path / "flow.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import diffusion\n"
        "if TYPE_CHECKING:\n"
        "    from xtalgen.metrics.core import Metric\n"
        "def f():\n"
        "    from xtalgen.relax import relax\n"
        "    import xtalgen.cli.main\n"
    )
    modules = dict.fromkeys(["xtalgen.models.iterative.flow", "xtalgen.models.iterative.diffusion",
                             "xtalgen.metrics.core", "xtalgen.relax", "xtalgen.cli.main"])
    assert _imports("xtalgen.models.iterative.flow", source, modules) == set(modules) - {
        "xtalgen.models.iterative.flow"}
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b", "a"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []

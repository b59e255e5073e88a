"""The package's imports point one way: no import cycle inside ``personalab/``, and no module imports a layer above
its own (README, "For developers", has the map). Every import counts, including the ones inside functions, and
importing ``a.b.c`` also runs ``a/b/__init__.py``, so it counts as importing the package ``a.b`` too.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "personalab"

#: Layers from the bottom up, by a module's first name under ``personalab``. A module may import its own layer
#: and the layers below it, never one above.
LAYERS: dict[int, tuple[str, ...]] = {
    0: ("errors", "io", "config", "cache", "plots", "persona", "tokens", "costs", "results", "sandbox",
        "colab", "rates"),
    1: ("models", "embedded", "server", "smollm", "backends"),
    2: ("quality", "dataset", "finetune", "evaluate", "arena", "steering", "latency", "hybrid", "widgets",
        "report_figures", "evidence", "decision", "report", "course", "doctor", "notebook", "budget", "fewshot",
        "general", "learning_curve", "requestlog"),
    3: ("checks", "grading", "authoring", "release"),
    4: ("commands", "cli"),
}
LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}


def module_files() -> dict[str, Path]:
    """``personalab.x.y`` -> its file, for every module and package of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file (with the packages those imports run)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # "personalab.x.Name" -> "personalab.x"
                target = target.rpartition(".")[0]
            # importing personalab.a.b also runs personalab/a/__init__.py (unless name is already inside personalab.a)
            while target and target != "personalab" and target != name and not name.startswith(target + "."):
                found.add(target)
                target = target.rpartition(".")[0]
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported_modules(name, path, set(files)) for name, path in files.items()}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYER_OF.get(parts[1]) if len(parts) > 1 else None


def test_the_graph_sees_relative_and_lazy_imports():
    graph = import_graph()
    assert "personalab.errors" in graph["personalab.io"]  # from .errors import ...
    assert "personalab.config" in graph["personalab.embedded.build"]  # from ..config import ...
    assert "personalab.server" in graph["personalab.backends"]  # imported inside a function


def test_every_module_has_a_layer():
    missing = sorted({m.split(".")[1] for m in import_graph() if m != "personalab" and layer(m) is None})
    assert not missing, f"add these modules to LAYERS in {Path(__file__).name} (and to the README's map): {missing}"


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other, directly or through others (sorted, each sorted)."""
    reach = {m: reachable(graph, m) for m in graph}
    groups = {tuple(sorted(n for n in graph if n in reach[m] and m in reach[n])) for m in graph if m in reach[m]}
    return sorted(list(g) for g in groups)


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    graph = import_graph()
    found = cycles(graph)
    if found:
        example = ""
        try:
            TopologicalSorter(graph).prepare()
        except CycleError as exc:
            example = " -> ".join(m.removeprefix("personalab.") for m in exc.args[1])
        groups = "\n".join(", ".join(m.removeprefix("personalab.") for m in g) for g in found)
        pytest.fail(f"import cycles inside personalab/ (e.g. {example}); modules that import each other:\n{groups}")


def test_imports_point_down_the_layers():
    upward = sorted(
        f"{m.removeprefix('personalab.')} (layer {layer(m)}) imports {t.removeprefix('personalab.')} (layer {layer(t)})"
        for m, targets in import_graph().items() for t in targets
        if layer(m) is not None and layer(t) is not None and layer(t) > layer(m)  # type: ignore[operator]
    )
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_the_readme_maps_every_layer():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    unmapped = [name for name in LAYER_OF if f"`{name}`" not in readme and f"`{name}/`" not in readme]
    assert not unmapped, f"name these modules in the README's package map: {unmapped}"

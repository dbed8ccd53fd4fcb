"""Handlers, services, cards and the dialog engine never import the runtime (issue 10 §4): the runtime imports the
handlers, handlers get what they use of it as ``bot.core.routing.Services``, services take settings, clock, session and
a channel-choice function."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["bot/services", "handlers", "cards", "bot/dialogs", "bot/core/routing.py"]
RUNTIME = re.compile(r"bot\.runtime|from bot import runtime")


def test_no_layer_below_the_runtime_names_it() -> None:
    files = [p for layer in LAYERS for p in ([ROOT / layer] if layer.endswith(".py") else (ROOT / layer).rglob("*.py"))]
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in files
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if RUNTIME.search(line)
    ]
    assert found == []


def test_importing_the_handlers_does_not_import_the_runtime() -> None:
    modules = "handlers, bot.core.routing, bot.dialogs.engine, bot.services.recipients"
    code = f"import sys, {modules}; print('bot.runtime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- no import circles among the packages (issue 10 acceptance) ------------------------------------------------

PACKAGES = ("bot", "handlers", "cards", "storage")


def _package_of(module: str) -> str:
    """``bot.core.routing`` → ``bot.core``; a module directly in ``bot/`` (the composition root) → ``bot``."""
    parts = module.split(".")
    if parts[0] == "bot" and len(parts) > 1 and (ROOT / "bot" / parts[1]).is_dir():
        return ".".join(parts[:2])
    return parts[0]


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            # Migrations, and the build script of the bundled font (bot/assets/fonts/make_subset.py): not the app.
            if "migrations" in path.parts or "assets" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def _imports(path: Path, module: str, modules: dict[str, Path]) -> set[str]:
    """Every module of ours that ``path`` imports, wherever the import stands (inside functions and
    ``TYPE_CHECKING`` blocks too: a circle through a lazy import is still a circle)."""
    import ast

    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()

    def ours(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        out.update(m for m in map(ours, names) if m is not None)
    return out


def _package_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(_package_of(module), set())
        for target in _imports(path, module, modules):
            if _package_of(target) != _package_of(module):
                edges.add(_package_of(target))
                graph.setdefault(_package_of(target), set())
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of packages if there is one (depth-first search), else None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_packages_import_each_other_without_a_circle() -> None:
    graph = _package_graph()
    # The layers the tree shows (docs/architecture.md, "Layout"): each package imports only packages below it.
    assert {"bot", "bot.core", "bot.channels", "bot.services", "handlers", "cards", "storage"} <= set(graph)
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])
    assert "bot" not in set().union(*(deps for package, deps in graph.items() if package != "bot"))


# Top to bottom, as README.md ("Layout") and docs/architecture.md list them.
LAYERS_TOP_DOWN = [
    "bot",
    "bot.imports",
    "handlers",
    "bot.channels",
    "bot.dialogs",
    "bot.services",
    "bot.core",
    "bot.parsing",
    "cards",
    "bot.config",
    "bot.calendar",
    "bot.infra",
    "storage",
]


def test_each_package_imports_only_the_layers_below_it() -> None:
    graph = _package_graph()
    assert set(graph) == set(LAYERS_TOP_DOWN)
    upward = [
        f"{package} -> {target}"
        for package, targets in graph.items()
        for target in targets
        if LAYERS_TOP_DOWN.index(target) < LAYERS_TOP_DOWN.index(package)
    ]
    assert upward == []


def test_the_circle_check_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None

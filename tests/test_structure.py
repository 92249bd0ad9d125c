"""The structure anyone can check: plugins import only the core and their own package, and the first-party
packages have no import cycle (module-level imports; imports inside functions run later and cannot deadlock)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ("reconstruct", "capture")  # the host and its libraries; capture is the on-set half of the same core
FIRST_PARTY = CORE + ("deage_plugins", "plugins")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "plugins":
        parts[0] = "deage_plugins"
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _files(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


def _imports(path: Path, module_level_only: bool = False) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import in ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    if module_level_only:  # also imports under module-level if/try (not TYPE_CHECKING: never executed)
        flat = []
        for n in nodes:
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                continue
            flat.extend([n] + (list(ast.walk(n)) if isinstance(n, (ast.If, ast.Try)) else []))
        nodes = flat
    out = []
    for n in nodes:
        if isinstance(n, ast.Import):
            out += [(a.name, n.lineno) for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = package.split(".")
                base = base[: len(base) - (n.level - 1)] if n.level > 1 else base
                name = ".".join(base + ([n.module] if n.module else []))
                # ``from . import x``: x may be a submodule
                out += [(f"{name}.{a.name}" if not n.module else name, n.lineno) for a in n.names]
            else:
                out += [(n.module, n.lineno)]
    return out


def _own_package(path: Path) -> str:
    """A plugin's own package: ``deage_plugins.fran`` for plugins/fran/*.py, the module itself for a one-file
    plugin."""
    rel = path.relative_to(ROOT / "plugins").parts
    return "deage_plugins." + (rel[0] if len(rel) > 1 else Path(rel[0]).stem)


@pytest.mark.parametrize("path", _files("plugins"), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_plugin_imports_only_the_core_and_its_own_package(path):
    if path == ROOT / "plugins" / "__init__.py":
        return
    own = _own_package(path)
    bad = [(name, line) for name, line in _imports(path)
           if name.split(".")[0] in ("deage_plugins", "plugins") and not (name == own or name.startswith(own + "."))]
    assert not bad, (f"{path.relative_to(ROOT)} imports another plugin ({bad}): share data through "
                     "reconstruct.artifacts / reconstruct.session and components through ctx.components")


def test_the_core_imports_no_plugin():
    bad = [(str(p.relative_to(ROOT)), name, line) for p in _files(*CORE) for name, line in _imports(p)
           if name.split(".")[0] in ("deage_plugins", "plugins")]
    assert not bad, f"the core must reach plugins only through the plugin host: {bad}"


def test_no_import_cycle():
    modules = {_module_name(p): p for p in _files("reconstruct", "capture", "plugins")}
    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        deps = set()
        for name, _ in _imports(path, module_level_only=True):
            if name.split(".")[0] not in FIRST_PARTY:
                continue
            name = name.replace("plugins.", "deage_plugins.", 1) if name.startswith("plugins.") else name
            while name and name not in modules:  # ``from pkg.mod import obj`` -> the module pkg.mod
                name = name.rpartition(".")[0]
            if name and name != mod:
                deps.add(name)
        graph[mod] = deps
    # importing a submodule first imports its package: that edge is not a cycle (Python allows it)
    cycles, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if m.startswith(d + "."):
                continue
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif state.get(d) is None:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "module-level import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)

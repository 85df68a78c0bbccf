"""The package's shape, checked from its source text (AST only: nothing of lumo_hydra is imported).

- Import contract: the store, the run record and the watcher work without Hydra. They never import
  ``hydra`` or ``omegaconf`` at module level, directly or through another lumo_hydra module; only the
  listed conversion helpers may import omegaconf inside a function. Only ``lumo_hydra/_hydra/`` and
  ``hydra_plugins/`` import ``hydra`` at all.
- No import cycles between lumo_hydra modules, counting module-level and function-level imports.
- No module over ``MAX_MODULE_LINES`` lines; no function over ``MAX_FUNCTION_LINES`` lines or
  ``MAX_BRANCHES`` branches unless a ``# long: <reason>`` comment sits right above it.
- lumo_hydra imports its own modules absolutely.
- ``ruff check`` and ``python -m mypy`` (configured in pyproject.toml and setup.cfg) are clean.

Every failure lists all offenders as ``file:line name size`` so each owner can find theirs.
"""
from __future__ import annotations

import ast
import functools
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lumo_hydra"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
MAX_BRANCHES = 20
LONG_MARKER = "# long:"

# Packages that must work without Hydra (docs/architecture.md: the store, the record, the watcher).
HYDRA_FREE = ("lumo_hydra/store/", "lumo_hydra/record/", "lumo_hydra/watcher/")
HYDRA_LIBS = ("hydra", "omegaconf")
# Where `import hydra` may appear (any level): the Hydra edge and the Hydra plugin package.
HYDRA_EDGE = ("lumo_hydra/_hydra/", "hydra_plugins/")
# Function-level omegaconf imports allowed in the Hydra-free packages: (file, function) -> reason.
OMEGACONF_HELPERS = {
    ("lumo_hydra/store/files.py", "to_jsonable"):
        "converts an OmegaConf container a caller passed in; runs only when the object's type comes from omegaconf",
}
# The sources whose imports are checked (hydra_plugins only for the contract and the graph).
SOURCE_DIRS = ("lumo_hydra", "hydra_plugins")
RUFF_PATHS = ("lumo_hydra", "tests", "benchmarks", "examples", "hydra_plugins")


# ---------------------------------------------------------------- reading the sources


@dataclass(frozen=True)
class Import:
    """One import found in a module's source."""

    target: str        # imported module (for a lumo_hydra module: its dotted name, submodules resolved)
    line: int
    function: str      # qualified name of the enclosing function, "" at module level (class bodies too)
    how: str           # "import", "from", "relative", "sys.modules", "import_module" or "lazy export"

    @property
    def module_level(self) -> bool:
        return not self.function


def _module_name(rel: str) -> str:
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def sources() -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under lumo_hydra/ and hydra_plugins/."""
    found: dict[str, Path] = {}
    for top in SOURCE_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[_module_name(path.relative_to(ROOT).as_posix())] = path
    return found


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@functools.cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _is_sys_modules(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "modules"
            and isinstance(node.value, ast.Name) and node.value.id == "sys")


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _ImportCollector(ast.NodeVisitor):
    """Collects every import of one module, with the function it sits in.

    Besides ``import`` statements, a module named by a string literal in ``sys.modules.get(...)``,
    ``sys.modules[...]``, ``importlib.import_module(...)`` or ``__import__(...)`` counts (a hidden import),
    and so does each module of a package's lazy ``_EXPORTS`` table (imported by its ``__getattr__``).
    A membership test (``"x" in sys.modules``) does not: it loads nothing. ``if TYPE_CHECKING:`` bodies are
    skipped (they never run).
    """

    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.stack: list[str] = []
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.AST, how: str) -> None:
        self.found.append(Import(target, node.lineno, ".".join(self.stack), how))  # type: ignore[attr-defined]

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for deco in node.decorator_list:
            self.visit(deco)
        self.stack.append(node.name)
        for stmt in node.body:
            self.visit(stmt)
        self.stack.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        # A class body runs when its module (or function) runs: its imports keep the enclosing level,
        # its methods are named Class.method.
        for deco in node.decorator_list:
            self.visit(deco)
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.stack.append(node.name)
                self._function(stmt)
                self.stack.pop()
            else:
                self.visit(stmt)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for stmt in node.orelse:
                self.visit(stmt)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node, "import")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        how = "from"
        if node.level:
            how = "relative"
            anchor = self.package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        known = sources()
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            self._add(sub if sub in known else base, node, how)

    def visit_Assign(self, node: ast.Assign) -> None:
        # A package's lazy exports (``_EXPORTS = {"Params": "lumo_hydra.params.params", ...}`` read by its
        # module ``__getattr__``) import those modules when the name is first used.
        if not self.stack and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            for value in node.value.values:
                name = _literal(value)
                if name and name in sources():
                    self.found.append(Import(name, value.lineno, "__getattr__", "lazy export"))
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        name = _literal(node.slice)
        if name and _is_sys_modules(node.value):
            self._add(name, node, "sys.modules")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = _literal(node.args[0]) if node.args else None
        if name:
            if isinstance(func, ast.Attribute) and func.attr == "get" and _is_sys_modules(func.value):
                self._add(name, node, "sys.modules")
            elif (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
                    isinstance(func, ast.Name) and func.id in ("import_module", "__import__")):
                self._add(name, node, "import_module")
        self.generic_visit(node)


@functools.cache
def imports_of(module: str) -> tuple[Import, ...]:
    """Every import of ``module`` (see :class:`_ImportCollector`)."""
    path = sources()[module]
    collector = _ImportCollector(module, path.name == "__init__.py")
    collector.visit(parse(path))
    return tuple(collector.found)


def own(target: str) -> str | None:
    """The lumo_hydra (or hydra_plugins) module an import names, or None for a third-party one."""
    known = sources()
    while target:
        if target in known:
            return target
        target = target.rpartition(".")[0]
    return None


def top(target: str) -> str:
    return target.split(".")[0]


def graph(*, module_level_only: bool = False) -> dict[str, dict[str, Import]]:
    """module -> {imported own module: the first import of it}."""
    edges: dict[str, dict[str, Import]] = {}
    for module in sources():
        out: dict[str, Import] = {}
        for imp in imports_of(module):
            if module_level_only and not imp.module_level:
                continue
            target = own(imp.target)
            if target is not None and target != module:
                out.setdefault(target, imp)
        edges[module] = out
    return edges


def where(module: str, imp: Import) -> str:
    return f"{rel(sources()[module])}:{imp.line}"


# ---------------------------------------------------------------- the import contract


def _parents(module: str) -> Iterator[str]:
    """The packages Python runs before ``module`` (``a.b.c`` -> ``a``, ``a.b``)."""
    parts = module.split(".")
    for i in range(1, len(parts)):
        yield ".".join(parts[:i])


def _module_level_chain(start: str, libs: tuple[str, ...]) -> list[str] | None:
    """The chain of module-level imports by which importing ``start`` loads one of ``libs``, or None.

    Importing a module also runs its parent packages' ``__init__``, so those are followed too.
    """
    edges = graph(module_level_only=True)
    seen = {start}
    queue: list[tuple[str, list[str]]] = [(start, [start])]
    while queue:
        module, chain = queue.pop(0)
        for imp in imports_of(module):
            if imp.module_level and own(imp.target) is None and top(imp.target) in libs:
                return [*chain, f"import {imp.target} ({where(module, imp)})"]
        nexts = [(t, f"{t} ({where(module, imp)})") for t, imp in edges[module].items()]
        nexts += [(p, f"{p} (parent package)") for p in _parents(module) if p in sources()]
        for target, step in nexts:
            if target not in seen:
                seen.add(target)
                queue.append((target, [*chain, step]))
    return None


def in_dirs(module: str, dirs: Iterable[str]) -> bool:
    return any(rel(sources()[module]).startswith(d) for d in dirs)


def test_store_record_and_watcher_never_load_hydra_or_omegaconf_at_import() -> None:
    """Importing any module of store/, record/ or watcher/ loads neither hydra nor omegaconf."""
    offenders = []
    for module in sources():
        if in_dirs(module, HYDRA_FREE):
            chain = _module_level_chain(module, HYDRA_LIBS)
            if chain:
                offenders.append("  " + " -> ".join(chain))
    assert not offenders, "module-level hydra/omegaconf in the Hydra-free packages:\n" + "\n".join(offenders)


def test_the_import_collector() -> None:
    source = """
import sys
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from lumo_hydra.watcher import watcher
from lumo_hydra.store import files, layout as L
def f():
    import hydra.utils
    m = sys.modules.get("lumo_hydra.record.abort")
    n = sys.modules["lumo_hydra.store.status"]
    if "lumo_hydra.params.params" in sys.modules:
        from . import ids
class A:
    import omegaconf
    def g(self):
        import importlib
        return importlib.import_module("lumo_hydra.errors")
"""
    collector = _ImportCollector("lumo_hydra.store.example", is_package=False)
    collector.visit(ast.parse(source))
    found = [(i.target, i.function, i.how) for i in collector.found
             if i.target.startswith(("lumo_hydra", "hydra", "omegaconf"))]
    assert found == [
        ("lumo_hydra.store.files", "", "from"), ("lumo_hydra.store.layout", "", "from"),
        ("hydra.utils", "f", "import"), ("lumo_hydra.record.abort", "f", "sys.modules"),
        ("lumo_hydra.store.status", "f", "sys.modules"), ("lumo_hydra.store.ids", "f", "relative"),
        ("omegaconf", "", "import"), ("lumo_hydra.errors", "A.g", "import_module")]


def test_the_contract_follows_chains_of_imports() -> None:
    """The checker can fail: the compatibility name of the callback loads logging through _hydra and record/,
    and hydra through the callback's base class."""
    chain = _module_level_chain("lumo_hydra.hydra_callback", ("logging",))
    assert chain and chain[0] == "lumo_hydra.hydra_callback" and len(chain) == 4 and chain[-1].startswith("import logging"), chain
    chain = _module_level_chain("lumo_hydra.hydra_callback", ("hydra",))
    assert chain and chain[0] == "lumo_hydra.hydra_callback" and chain[-1].startswith("import hydra"), chain


def test_hydra_free_packages_import_omegaconf_only_in_the_listed_helpers() -> None:
    """Inside functions of store/, record/, watcher/: omegaconf only in OMEGACONF_HELPERS, hydra never."""
    offenders = []
    for module, path in sources().items():
        if not in_dirs(module, HYDRA_FREE):
            continue
        for imp in imports_of(module):
            if imp.module_level or own(imp.target) is not None or top(imp.target) not in HYDRA_LIBS:
                continue
            if top(imp.target) == "omegaconf" and (rel(path), imp.function) in OMEGACONF_HELPERS:
                continue
            offenders.append(f"  {rel(path)}:{imp.line} {imp.function} imports {imp.target}")
    assert not offenders, (
        "hydra/omegaconf imported inside a function of a Hydra-free package (move the code to lumo_hydra/_hydra/, "
        "or list a conversion helper in OMEGACONF_HELPERS with its reason):\n" + "\n".join(offenders))


def test_only_the_hydra_edge_imports_hydra() -> None:
    """``hydra`` is imported (at any level) only under lumo_hydra/_hydra/ and hydra_plugins/."""
    offenders = sorted({
        f"  {rel(path)}:{imp.line} {imp.function or '<module>'} imports {imp.target}"
        for module, path in sources().items() if not in_dirs(module, HYDRA_EDGE)
        for imp in imports_of(module) if own(imp.target) is None and top(imp.target) == "hydra"
    }, key=lambda s: (s.split(":")[0], int(s.split(":")[1].split()[0])))
    assert not offenders, "hydra imported outside lumo_hydra/_hydra/:\n" + "\n".join(offenders)


# ---------------------------------------------------------------- import cycles


def strongly_connected(edges: dict[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one node (or a self-loop), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            comp = []
            while True:
                top_node = stack.pop()
                on_stack.discard(top_node)
                comp.append(top_node)
                if top_node == node:
                    break
            if len(comp) > 1 or node in edges.get(node, ()):
                found.append(sorted(comp))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def a_cycle(edges: dict[str, Iterable[str]], component: list[str]) -> list[str]:
    """One shortest cycle through the component's first node, as [a, b, ..., a]."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(edges.get(node, ())):
            if nxt == start:
                return [*paths[node], start]
            if nxt in members and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle in {component}")  # pragma: no cover - a component always has one


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["e"]}
    assert strongly_connected(edges) == [["a", "b", "c"], ["e"]]
    assert a_cycle(edges, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_no_import_cycles() -> None:
    """No cycle among lumo_hydra modules: module-level, function-level and hidden (sys.modules) imports count.

    ``from lumo_hydra.x import y`` with a submodule ``y`` is an import of ``lumo_hydra.x.y``; a package's
    ``__init__`` is a module like any other; ``if TYPE_CHECKING:`` imports do not count.
    """
    edges = graph()
    lines = []
    for component in strongly_connected({m: list(out) for m, out in edges.items()}):
        cycle = a_cycle(edges, component)
        steps = [f"{a} -> {b} ({where(a, edges[a][b])} {edges[a][b].function or '<module>'})"
                 for a, b in zip(cycle, cycle[1:])]
        lines.append(f"  cycle among {len(component)} module(s) {component}:\n    " + "\n    ".join(steps))
    assert not lines, "import cycles:\n" + "\n".join(lines)


# ---------------------------------------------------------------- sizes


def test_no_module_over_the_line_limit() -> None:
    """Every module (compatibility shims and ``__init__`` included) has at most MAX_MODULE_LINES lines."""
    offenders = []
    for path in sources().values():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            offenders.append(f"  {rel(path)}:1 <module> {n} lines")
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(offenders)


def _is_elif(orelse: list[ast.stmt], lines: list[str]) -> bool:
    """An ``elif`` (not an ``else:`` holding an ``if``, which the AST spells the same way)."""
    if len(orelse) != 1 or not isinstance(orelse[0], ast.If):
        return False
    node = orelse[0]
    return lines[node.lineno - 1][node.col_offset:].startswith("elif")


def count_branches(body: list[ast.stmt], lines: list[str]) -> int:
    """The branches of a function body, as ruff's PLR0912 (pylint's too-many-branches) counts them.

    +1 for each ``if`` and each ``elif``, and +1 for a final ``else``; +1 for each ``for``/``while``
    (async too) and +1 for its ``else``; +1 for each ``except`` handler of a ``try``, +1 for its ``else``
    and +1 for its ``finally``; +1 for each ``case`` of a ``match``. Statements nested in these and in
    ``with`` blocks count too; nested function and class bodies do not (they are counted on their own);
    conditional expressions, comprehensions and boolean operators do not.
    """
    n = 0
    for stmt in body:
        if isinstance(stmt, ast.If):
            n += 1 + count_branches(stmt.body, lines)
            orelse = stmt.orelse
            if _is_elif(orelse, lines):  # counted as an if
                n += count_branches(orelse, lines)
            elif orelse:
                n += 1 + count_branches(orelse, lines)
        elif isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
            n += 1 + count_branches(stmt.body, lines)
            if stmt.orelse:
                n += 1 + count_branches(stmt.orelse, lines)
        elif isinstance(stmt, (ast.Try, ast.TryStar)):
            n += count_branches(stmt.body, lines)
            for handler in stmt.handlers:
                n += 1 + count_branches(handler.body, lines)
            if stmt.orelse:
                n += 1 + count_branches(stmt.orelse, lines)
            if stmt.finalbody:
                n += 1 + count_branches(stmt.finalbody, lines)
        elif isinstance(stmt, ast.Match):
            for case in stmt.cases:
                n += 1 + count_branches(case.body, lines)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            n += count_branches(stmt.body, lines)
    return n


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of the last statement."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(_literal(body[0].value), str):
        body = body[1:]
    if not body:
        return 0
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


def has_long_marker(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A ``# long: <reason>`` comment on the line right above the ``def`` or its first decorator."""
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    above = lines[first - 2].strip() if first >= 2 else ""
    return above.startswith(LONG_MARKER) and bool(above[len(LONG_MARKER):].strip())


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, node) of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def test_the_branch_count() -> None:
    source = '''
def f(x):
    """doc"""
    if x:            # 1
        pass
    elif x > 1:      # 2
        pass
    else:            # 3
        pass
    for i in x:      # 4
        while i:     # 5
            break
        else:        # 6
            pass
    try:
        pass
    except ValueError:   # 7
        pass
    except Exception:    # 8
        pass
    finally:             # 9
        pass
    with open(x):
        if x and x or x:  # 10 (boolean operators do not count)
            pass
    match x:
        case 1:           # 11
            pass
        case _:           # 12
            pass
    if x:                 # 13
        pass
    else:                 # 14 (an else holding an if is not an elif)
        if x:             # 15
            pass
    def g():
        if x:             # g's own
            pass
    return [y for y in x if y] if x else None
'''
    (name, node), (gname, g) = functions(ast.parse(source))
    assert (name, gname) == ("f", "f.g")
    lines = source.splitlines()
    assert count_branches(node.body, lines) == 15 and count_branches(g.body, lines) == 1
    assert body_lines(node) == source.count("\n") - 3  # from `if x:` to the return
    marked = "class A:\n    # long: a table of cases\n    @staticmethod\n    def h():\n        pass\n"
    ((hname, h),) = functions(ast.parse(marked))
    assert hname == "A.h" and has_long_marker(marked.splitlines(), h)
    bare = "# long:\ndef h():\n    pass\n"  # a marker without a reason does not count
    ((_, h),) = functions(ast.parse(bare))
    assert not has_long_marker(bare.splitlines(), h)


def test_no_function_over_the_size_limits() -> None:
    """No function over MAX_FUNCTION_LINES body lines or MAX_BRANCHES branches without ``# long: <reason>``."""
    offenders = []
    for path in sources().values():
        lines = path.read_text(encoding="utf-8").splitlines()
        for name, node in functions(parse(path)):
            n_lines, n_branches = body_lines(node), count_branches(node.body, lines)
            if (n_lines > MAX_FUNCTION_LINES or n_branches > MAX_BRANCHES) and not has_long_marker(lines, node):
                offenders.append(f"  {rel(path)}:{node.lineno} {name} {n_lines} lines {n_branches} branches")
    assert not offenders, (
        f"functions over {MAX_FUNCTION_LINES} lines or {MAX_BRANCHES} branches (split them, or put "
        f"'{LONG_MARKER} <reason>' on the line above the def):\n" + "\n".join(offenders))


# ---------------------------------------------------------------- style of imports


def test_lumo_hydra_imports_itself_absolutely() -> None:
    """``from lumo_hydra.store.files import ...``, never ``from .files import ...``."""
    offenders = [
        f"  {rel(path)}:{imp.line} relative import of {imp.target}"
        for module, path in sources().items() if module.split(".")[0] == PACKAGE
        for imp in imports_of(module) if imp.how == "relative"
    ]
    assert not offenders, "relative imports in lumo_hydra:\n" + "\n".join(offenders)


# ---------------------------------------------------------------- linters


def test_ruff_is_clean() -> None:
    """``ruff check`` with the [tool.ruff] configuration of pyproject.toml finds nothing."""
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install ruff, or the dev extra)")
    r = subprocess.run([ruff, "check", "--no-cache", "--output-format", "concise", *RUFF_PATHS],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean() -> None:
    """``python -m mypy`` with the [mypy] configuration of setup.cfg (strict for store/ and record/).

    Incremental, with mypy's cache in ``.mypy_cache/`` of the checkout (git-ignored), as a developer runs it.
    """
    pytest.importorskip("mypy")
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "setup.cfg")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "Success: no issues found" in r.stdout, r.stdout + r.stderr

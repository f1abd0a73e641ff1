"""The target layout of issue 17, read from the source with ``ast`` (nothing of ``dtg`` is imported).

Each rule is a function of a source ``root`` (a folder holding the ``dtg/`` package) that returns
the violations as readable lines, so a failing test is a to-do list. The rules:

1. no module in ``dtg/`` over 400 lines;
2. the layers below the front end (``ir/``, ``channels/``, ``objectives/``, ``backends/``,
   ``render/``, ``runtime/``) import nothing from ``dtg.syntax`` or ``dtg.check`` — absolute or
   relative, top-level or function-local, ``if TYPE_CHECKING:`` included (a layer that must not
   know the syntax tree must not name its types either);
3. no import circle inside ``dtg/``, function-local imports included, ``if TYPE_CHECKING:``
   imports excluded (they never run);
4. a function-local import is only for a heavy or optional dependency and says so: a comment on
   its line(s), on the comment line(s) just above it, or above the run of consecutive imports it
   belongs to, containing "heavy", "optional", "lazy:" or "why:" (any import: dtg, third-party or
   standard library, because the project rule is "imports at the top" for all of them);
5. the front end is torch-free: ``import dtg`` + ``dtg.load`` of every example, and the CLI paths
   ``check``, ``fmt --check``, ``compile --emit ast|ir``, ``render -o x.dot|x.tex|x.svg``, each in
   a fresh interpreter, leave ``torch`` and ``pyro`` out of ``sys.modules``;
6. no ``isinstance(…, ast.…)`` on the syntax tree (``dtg.syntax.ast``) outside the front end.

The rules run on synthetic trees (a deliberate circle, an oversize module, a bad import…) and on
the pre-refactor commit 09b2905 in the tests named ``test_rule_…``; the tests on the real tree
hold the layout issue 17 reached. A failure message lists every violation (module, line, the
circle's files).
"""

from __future__ import annotations

import ast
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "dtg"
MAX_LINES = 400
#: The layers that lower from the IR and must not see the syntax tree or the checker.
LOWER_LAYERS = ("ir", "channels", "objectives", "backends", "render", "runtime")
FRONT_END_PACKAGES = ("dtg.syntax", "dtg.check")
#: A function-local import's comment names its reason with one of these.
REASON_WORDS = ("heavy", "optional", "lazy:", "why:")
#: Where ``isinstance`` on syntax-tree classes is allowed: the parser and checker packages, and
#: the front-end modules that work on the syntax tree by design — the formatter prints it,
#: ``program`` runs parse → check, the lexer and templates produce and read source text.
SYNTAX_TREE_READERS = (
    "dtg/syntax/",
    "dtg/check/",
    "dtg/fmt.py",
    "dtg/program.py",
    "dtg/lexer.py",
    "dtg/templates.py",
)
HEAVY = ("torch", "pyro")


# ---------------------------------------------------------------------------------------------
# Reading a source tree


@dataclass(frozen=True)
class Import:
    """One imported name: ``import a.b`` gives ``a.b``; ``from a import x, y`` gives two."""

    line: int
    base: str  # the module named after ``from`` (or the whole ``import`` target)
    name: str | None  # the name after ``import`` in ``from … import name``
    local: bool  # inside a function
    type_checking: bool  # under ``if TYPE_CHECKING:``
    justified: bool  # a reason comment (rule 4)
    function: str  # the enclosing classes and functions, for messages
    text: str  # the statement's first source line
    bound: str  # the local name the statement binds
    meaning: str  # the dotted name bound to it

    @property
    def candidates(self) -> tuple[str, ...]:
        """The dotted names this import may mean, most specific first."""
        return (f"{self.base}.{self.name}", self.base) if self.name else (self.base,)


@dataclass
class Module:
    name: str
    path: Path  # relative to the root, for messages
    is_package: bool
    lines: int
    tree: ast.Module
    imports: list[Import]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _comments(text: str) -> tuple[dict[int, str], set[int]]:
    """Comments by line, and the lines that hold nothing but a comment."""
    comments: dict[int, str] = {}
    only: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            line = token.start[0]
            comments[line] = token.string
            if token.line.strip().startswith("#"):
                only.add(line)
    return comments, only


def _has_reason(comment: str) -> bool:
    return any(word in comment.lower() for word in REASON_WORDS)


@dataclass(frozen=True)
class Scope:
    """Where a statement sits: the enclosing classes and functions, and whether one is a function."""

    names: tuple[str, ...] = ()
    in_function: bool = False


class _ImportCollector:
    """Every import statement in a file, with where it sits (function, TYPE_CHECKING)."""

    def __init__(self, module: str, is_package: bool, text: str) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.source = text.splitlines()
        self.comments, self.comment_lines = _comments(text)
        self.found: list[Import] = []

    def absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.package.split(".")
        base = ".".join(parts[: len(parts) - (node.level - 1)])
        return f"{base}.{node.module}" if node.module else base

    def reason_above(self, line: int) -> bool:
        """A reason in the block of comment-only lines ending just above ``line``."""
        line -= 1
        while line in self.comment_lines:
            if _has_reason(self.comments[line]):
                return True
            line -= 1
        return False

    def justified(self, node: ast.stmt, run_start: int) -> bool:
        own = range(node.lineno, (node.end_lineno or node.lineno) + 1)
        if any(_has_reason(self.comments.get(line, "")) for line in own):
            return True
        return self.reason_above(node.lineno) or self.reason_above(run_start)

    def visit_body(self, body: list[ast.stmt], scope: Scope, checking: bool) -> None:
        run_start, previous_was_import = 0, False
        for statement in body:
            if isinstance(statement, ast.Import | ast.ImportFrom):
                if not previous_was_import:
                    run_start = statement.lineno
                previous_was_import = True
                self.record(statement, scope, checking, run_start)
            else:
                previous_was_import = False
                self.visit(statement, scope, checking)

    def visit(self, node: ast.stmt, scope: Scope, checking: bool) -> None:
        """Imports sit in statement lists only: walk every body of a compound statement."""
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            in_function = scope.in_function or not isinstance(node, ast.ClassDef)
            scope = Scope((*scope.names, node.name), in_function)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            self.visit_body(node.body, scope, True)
            self.visit_body(node.orelse, scope, checking)
            return
        for field in ("body", "orelse", "finalbody"):
            value = getattr(node, field, None)
            if isinstance(value, list):
                self.visit_body(value, scope, checking)
        for holder in [*getattr(node, "handlers", ()), *getattr(node, "cases", ())]:
            self.visit_body(holder.body, scope, checking)

    def record(
        self, node: ast.Import | ast.ImportFrom, scope: Scope, checking: bool, run: int
    ) -> None:
        common = {
            "line": node.lineno,
            "local": scope.in_function,
            "type_checking": checking,
            "justified": self.justified(node, run),
            "function": ".".join(scope.names) or "<module>",
            "text": self.source[node.lineno - 1].strip(),
        }
        for alias in node.names:
            if isinstance(node, ast.Import):
                bound = alias.asname or alias.name.partition(".")[0]
                meaning = alias.name if alias.asname else bound
                item = Import(base=alias.name, name=None, bound=bound, meaning=meaning, **common)
            else:
                base = self.absolute(node)
                bound = alias.asname or alias.name
                item = Import(
                    base=base,
                    name=alias.name,
                    bound=bound,
                    meaning=f"{base}.{alias.name}",
                    **common,
                )
            self.found.append(item)


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


@cache
def read_tree(root: Path) -> dict[str, Module]:
    """Every module of ``root/dtg`` by dotted name, parsed, with its imports.

    :param root: a folder holding the ``dtg`` package.
    :returns: the modules.
    """
    modules: dict[str, Module] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        name, is_package = _module_name(path, root)
        tree = ast.parse(text, filename=str(path))
        collector = _ImportCollector(name, is_package, text)
        collector.visit_body(tree.body, Scope(), False)
        modules[name] = Module(
            name=name,
            path=path.relative_to(root),
            is_package=is_package,
            lines=len(text.splitlines()),
            tree=tree,
            imports=collector.found,
        )
    return modules


@cache
def namespace_packages(root: Path) -> frozenset[str]:
    """The folders of ``root/dtg`` that hold modules but no ``__init__.py``, by dotted name.

    :param root: a folder holding the ``dtg`` package.
    :returns: their dotted names.
    """
    folders = {
        path.parent
        for path in (root / PACKAGE).rglob("*.py")
        if "__pycache__" not in path.parts and not (path.parent / "__init__.py").exists()
    }
    return frozenset(".".join(f.relative_to(root).parts) for f in folders)


# ---------------------------------------------------------------------------------------------
# The rules


def oversized_modules(root: Path, limit: int = MAX_LINES) -> list[str]:
    """Rule 1: the modules of ``root/dtg`` longer than ``limit`` lines.

    :param root: a folder holding the ``dtg`` package.
    :param limit: the most lines a module may have.
    :returns: ``"path: N lines"`` per offender, longest first.
    """
    modules = sorted(read_tree(root).values(), key=lambda m: -m.lines)
    return [f"{m.path.as_posix()}: {m.lines} lines" for m in modules if m.lines > limit]


def front_end_imports(root: Path) -> list[str]:
    """Rule 2: imports of ``dtg.syntax``/``dtg.check`` from the lower layers.

    :param root: a folder holding the ``dtg`` package.
    :returns: ``"path:line: statement"`` per offending import.
    """
    layers = tuple(f"{PACKAGE}.{layer}" for layer in LOWER_LAYERS)
    found = []
    for module in read_tree(root).values():
        if not any(module.name == p or module.name.startswith(p + ".") for p in layers):
            continue
        for item in module.imports:
            hit = [
                c
                for c in item.candidates
                for banned in FRONT_END_PACKAGES
                if c == banned or c.startswith(banned + ".")
            ]
            if hit:
                where = " (function-local)" if item.local else ""
                where += " (TYPE_CHECKING)" if item.type_checking else ""
                found.append((module.path.as_posix(), item.line, f"{item.text}{where}"))
    return [f"{path}:{line}: {text}" for path, line, text in sorted(set(found))]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    local: bool
    implicit: bool  # the package ``__init__`` that importing one of its modules runs first


def import_graph(root: Path) -> dict[str, list[Edge]]:
    """The module graph of ``root/dtg``: an edge per import that runs code of another module.

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``'s
    ``__init__``; importing ``a.b.c`` also runs the ``__init__`` of every package on the way that
    is not already an ancestor of the importer (an ancestor is being imported anyway), so those
    are edges too. ``if TYPE_CHECKING:`` imports never run and are left out.

    :param root: a folder holding the ``dtg`` package.
    :returns: the outgoing edges of every module.
    """
    modules = read_tree(root)
    namespaces = namespace_packages(root)
    graph: dict[str, list[Edge]] = {name: [] for name in modules}
    for module in modules.values():
        parts = module.name.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts) + module.is_package)}
        for item in module.imports:
            if item.type_checking:
                continue
            known = (c for c in item.candidates if c in modules or c in namespaces)
            target = next(known, None)
            if target is None:
                continue
            # a namespace package has no code of its own; its parents' __init__ still run
            edges = {(target, False)} if target in modules else set()
            pieces = target.split(".")
            for i in range(1, len(pieces)):
                parent = ".".join(pieces[:i])
                if parent in modules and parent not in ancestors:
                    edges.add((parent, True))
            for name, implicit in sorted(edges):
                edge = Edge(module.name, name, item.line, item.local, implicit)
                if edge not in graph[module.name]:  # ``from m import a, b``: one edge
                    graph[module.name].append(edge)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit).

    :param graph: successors of every node.
    :returns: every component, each sorted; components in the order Tarjan closes them.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def enter(node: str) -> Iterator[str]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        return iter(sorted(graph.get(node, ())))

    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, enter(start))]
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    work.append((successor, enter(successor)))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def _shortest_cycle(start: str, successors: dict[str, set[str]]) -> list[str]:
    """A shortest path from ``start`` back to itself, by breadth-first search."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(successors[node]):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if successor not in previous:
                    previous[successor] = node
                    following.append(successor)
        frontier = following
    return []


def import_cycles(root: Path) -> list[str]:
    """Rule 3: every import circle inside ``root/dtg``, with the edges that close it.

    :param root: a folder holding the ``dtg`` package.
    :returns: one paragraph per strongly connected component of more than one module (or a
        module importing itself): a shortest cycle through it, then each edge inside it.
    """
    modules = read_tree(root)
    graph = import_graph(root)
    successors = {name: {e.target for e in edges} for name, edges in graph.items()}
    reports = []
    for component in strongly_connected(successors):
        members = set(component)
        if len(component) == 1 and component[0] not in successors[component[0]]:
            continue
        path = lambda name: modules[name].path.as_posix()  # noqa: E731
        cycle = " -> ".join(path(n) for n in _shortest_cycle(component[0], successors))
        lines = [f"circle of {len(component)}: {cycle}"]
        for name in component:
            for edge in graph[name]:
                if edge.target in members:
                    kind = "function-local" if edge.local else "top-level"
                    kind += ", runs the package __init__" if edge.implicit else ""
                    lines.append(f"    {path(name)}:{edge.line} -> {path(edge.target)} ({kind})")
        reports.append("\n".join(lines))
    return reports


def unjustified_local_imports(root: Path) -> list[str]:
    """Rule 4: function-local imports without a reason comment.

    :param root: a folder holding the ``dtg`` package.
    :returns: ``"path:line in function: statement [kind]"`` per offender.
    """
    found = []
    for module in read_tree(root).values():
        seen = set()
        for item in module.imports:
            if not item.local or item.type_checking or item.justified or item.line in seen:
                continue
            seen.add(item.line)
            top = item.base.partition(".")[0]
            kind = (
                "dtg"
                if top == PACKAGE or not item.base
                else "stdlib"
                if top in sys.stdlib_module_names
                else "third-party"
            )
            found.append(
                f"{module.path.as_posix()}:{item.line} in {item.function}: {item.text} [{kind}]"
            )
    return found


def _is_syntax_tree_class(dotted: str) -> bool:
    return dotted.startswith(f"{PACKAGE}.syntax.ast.")


def _dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    """``a.b.C`` with ``a`` replaced by what the file imported it as; None if not a name."""
    attributes = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return ".".join([names[node.id], *reversed(attributes)])


def syntax_tree_isinstance(root: Path) -> list[str]:
    """Rule 6: ``isinstance``/``issubclass``/``case`` on ``dtg.syntax.ast`` classes outside the
    front end (``SYNTAX_TREE_READERS``).

    :param root: a folder holding the ``dtg`` package.
    :returns: ``"path:line: isinstance(…, ast.Name)"`` per site.
    """
    found = []
    for module in read_tree(root).values():
        where = module.path.as_posix()
        if any(
            where == a or (a.endswith("/") and where.startswith(a)) for a in SYNTAX_TREE_READERS
        ):
            continue
        # the local names the file binds by import (a name imported twice: the last one wins)
        names = {item.bound: item.meaning for item in module.imports if item.name != "*"}
        for node in ast.walk(module.tree):
            classes: list[ast.expr] = []
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("isinstance", "issubclass")
                and len(node.args) == 2
            ):
                second = node.args[1]
                classes = list(second.elts) if isinstance(second, ast.Tuple) else [second]
                call = node.func.id
            elif isinstance(node, ast.MatchClass):
                classes, call = [node.cls], "case"
            for cls in classes:
                dotted = _dotted(cls, names)
                if dotted and _is_syntax_tree_class(dotted):
                    shown = ast.unparse(cls)
                    found.append((where, node.lineno, f"{call}(…, {shown})"))
    return [f"{where}:{line}: {what}" for where, line, what in sorted(found)]


# ---------------------------------------------------------------------------------------------
# Rule 5: the torch-free front end, in fresh interpreters

#: Run in a fresh interpreter: a finder that notes who imports torch or pyro first (it finds
#: nothing itself), then the probed work, then one line of JSON after the marker.
_PROBE_HEAD = r"""
import json, sys, traceback
MARK, HEAVY, ROOT = "@@probe ", {heavy!r}, {root!r}
first, errors, during = {{}}, {{}}, ["interpreter start"]

class Watch:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in HEAVY and top not in first:
            chain = [f"{{f.filename[len(ROOT) + 1:]}}:{{f.lineno}}" for f in traceback.extract_stack()
                     if f.filename.startswith(ROOT + "/")]
            first[top] = {{"during": during[0], "chain": chain}}
        return None

sys.meta_path.insert(0, Watch())
"""

_PROBE_LOAD = r"""
during[0] = "import dtg"
import dtg
for path in {paths!r}:
    during[0] = "dtg.load(" + path.rpartition("/")[2] + ")"
    try:
        dtg.load(path)
    except Exception as error:
        errors[path] = f"{{type(error).__name__}}: {{error}}"
status = 0
"""

_PROBE_CLI = r"""
during[0] = ("dtg " + " ".join({argv!r}))[:60]
import dtg
from dtg.cli import main
try:
    status = main({argv!r})
except SystemExit as exit:
    status = exit.code
"""

_PROBE_TAIL = r"""
loaded = sorted(m for m in HEAVY if m in sys.modules)
print(MARK + json.dumps({"status": status, "loaded": loaded, "first": first, "errors": errors,
                         "dtg": sys.modules["dtg"].__file__}))
"""


@dataclass
class Probe:
    """What a fresh interpreter reported."""

    label: str
    status: object
    loaded: list[str]
    first: dict[str, dict]
    errors: dict[str, str]
    dtg: str
    output: str

    def problems(self, statuses: tuple[object, ...] = (0, None)) -> list[str]:
        """Readable lines: the heavy modules loaded and who imported them, errors, bad status.

        :param statuses: the exit statuses of a complete run.
        :returns: one line per problem (none: the run was torch-free and complete).
        """
        lines = []
        for module in self.loaded:
            origin = self.first.get(module, {})
            chain = " -> ".join(origin.get("chain", [])) or "?"
            lines.append(f"{self.label}: {module} imported during {origin.get('during')}: {chain}")
        lines += [f"{self.label}: {path}: {error}" for path, error in self.errors.items()]
        if self.status not in statuses:
            lines.append(f"{self.label}: exit status {self.status}\n{self.output[-1500:]}")
        return lines


def _probe_env(root: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root))
    env.pop("DTG_DEBUG", None)
    return env


def start_probe(root: Path, body: str, cwd: Path, **fields: object) -> subprocess.Popen:
    """Start a fresh interpreter on ``root``'s ``dtg`` that runs ``body`` and reports.

    :param root: the folder put on ``PYTHONPATH`` (it must hold ``dtg``).
    :param body: ``_PROBE_LOAD`` or ``_PROBE_CLI``.
    :param cwd: the working folder (files the command writes land here).
    :param fields: the values ``body`` is formatted with.
    :returns: the running process.
    """
    head = _PROBE_HEAD.format(heavy=list(HEAVY), root=str(root.resolve()))
    code = head + body.format(**fields) + _PROBE_TAIL
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=_probe_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_probe(label: str, process: subprocess.Popen, timeout: float = 300) -> Probe:
    """Wait for a probe and read its report.

    :param label: how the probe is named in messages.
    :param process: from :func:`start_probe`.
    :param timeout: seconds to wait.
    :returns: the report; a crash before the report is a failure with the output shown.
    """
    output, _ = process.communicate(timeout=timeout)
    reports = [line for line in output.splitlines() if line.startswith("@@probe ")]
    assert reports, f"{label}: the probe crashed (exit {process.returncode}):\n{output[-3000:]}"
    report = json.loads(reports[-1][len("@@probe ") :])
    return Probe(label=label, output=output, **report)


def cli_paths(example: Path, out: Path) -> dict[str, list[str]]:
    """The front-end command lines of issue 17, by label.

    :param example: the ``.dtg`` file compiled and rendered.
    :param out: the folder the rendered files are written to.
    :returns: ``dtg.cli.main`` argument lists.
    """
    examples = [str(p) for p in sorted(example.parent.glob("*.dtg"))]
    file = str(example)
    return {
        "check": ["check", *examples],
        "fmt --check": ["fmt", "--check", *examples],
        "compile --emit ast": ["compile", file, "--emit", "ast", "-o", str(out / "x.ast")],
        "compile --emit ir": ["compile", file, "--emit", "ir", "-o", str(out / "x.ir")],
        "render -o x.dot": ["render", file, "-o", str(out / "x.dot")],
        "render -o x.tex": ["render", file, "-o", str(out / "x.tex")],
        "render -o x.svg": ["render", file, "-o", str(out / "x.svg")],
    }


# ---------------------------------------------------------------------------------------------
# The rules on synthetic trees (these must pass: they show the checks catch what they claim)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (path → source, dedented) under ``root`` and return ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def test_rule_oversized_modules(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "dtg/__init__.py": "",
            "dtg/big.py": "x = 1\n" * 401,
            "dtg/limit.py": "x = 1\n" * 400,
            "dtg/pkg/huge.py": "x = 1\n" * 900,
        },
    )
    assert oversized_modules(root) == ["dtg/pkg/huge.py: 900 lines", "dtg/big.py: 401 lines"]


def test_rule_front_end_imports(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "dtg/__init__.py": "",
            "dtg/errors.py": "",
            "dtg/checkpoint.py": "",
            "dtg/syntax/__init__.py": "from . import ast\n",
            "dtg/syntax/ast.py": "class Name: ...\n",
            "dtg/check/__init__.py": "",
            "dtg/check/checker.py": "",
            "dtg/fmt.py": "from .syntax import ast\nfrom . import check\n",  # front end: allowed
            "dtg/ir/__init__.py": "",
            "dtg/ir/model.py": """
                from ..syntax import ast
                from .. import check
                from ..checkpoint import save
                from .. import errors, checkpoint
                import dtg.errors
            """,
            "dtg/runtime/__init__.py": "",
            "dtg/runtime/train.py": """
                def train():
                    import dtg.check.checker  # heavy: hides a front-end import in a function
                    from dtg.syntax.ast import Name
            """,
            "dtg/render/__init__.py": "",
            "dtg/render/cli.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from ..syntax.ast import Name
            """,
            "dtg/channels/mask.py": "from ..check.checker import check\n",  # a namespace package
            "dtg/objectives/__init__.py": "from ... import syntax\n",  # beyond dtg: not dtg.syntax
        },
    )
    found = front_end_imports(root)
    assert found == [
        "dtg/channels/mask.py:1: from ..check.checker import check",
        "dtg/ir/model.py:1: from ..syntax import ast",
        "dtg/ir/model.py:2: from .. import check",
        "dtg/render/cli.py:3: from ..syntax.ast import Name (TYPE_CHECKING)",
        "dtg/runtime/train.py:2: import dtg.check.checker  # heavy: hides a front-end import in a "
        "function (function-local)",
        "dtg/runtime/train.py:3: from dtg.syntax.ast import Name (function-local)",
    ]


def test_rule_strongly_connected() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"d"}}
    components = sorted(strongly_connected(graph))
    assert components == [["a", "b", "c"], ["d"], ["e"], ["f"]]
    ring = {f"m{i}": {f"m{(i + 1) % 5000}"} for i in range(5000)}  # deeper than the recursion limit
    assert [len(c) for c in strongly_connected(ring)] == [5000]
    chain = {f"m{i}": {f"m{i + 1}"} for i in range(5000)}
    assert len(strongly_connected(chain)) == 5001  # m5000 is only a successor


def test_rule_import_cycles(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            # dtg/__init__ -> program -> runtime.train -> runtime.checkpoint -> dtg (__version__)
            "dtg/__init__.py": '__version__ = "1"\nfrom .program import load\nfrom .space import other\n',
            "dtg/program.py": """
                def load():
                    from .runtime import train  # heavy: torch
            """,
            "dtg/runtime/__init__.py": "",
            "dtg/runtime/train.py": "from . import checkpoint\n",
            "dtg/runtime/checkpoint.py": "from .. import __version__\n",
            # a <-> b through a function-local import
            "dtg/a.py": "from . import b\n",
            "dtg/b.py": "def f():\n    from .a import x\n",
            # c <-> d only under TYPE_CHECKING: no circle
            "dtg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import D\n",
            "dtg/d.py": "from .c import C\n",
            # a module importing itself
            "dtg/e.py": "from . import e\n",
            # importing pkg.inner runs pkg/__init__, which imports user back
            "dtg/pkg/__init__.py": "from ..user import U\n",
            "dtg/pkg/inner.py": "",
            "dtg/user.py": "from .pkg.inner import X\n",
            # no circle: a package __init__ importing its own modules, which import siblings
            "dtg/ok/__init__.py": "from .one import f\n",
            "dtg/ok/one.py": "from .two import g\nfrom ..a import x\n",
            "dtg/ok/two.py": "import json\n",
            # no circle: importing a namespace package (no __init__) runs no code of dtg's
            "dtg/space/leaf.py": "from . import other\n",
            "dtg/space/other.py": "from .. import space\nimport dtg.space\n",
        },
    )
    reports = import_cycles(root)
    heads = sorted(report.splitlines()[0] for report in reports)
    assert heads == [
        "circle of 1: dtg/e.py -> dtg/e.py",
        "circle of 2: dtg/a.py -> dtg/b.py -> dtg/a.py",
        "circle of 2: dtg/pkg/__init__.py -> dtg/user.py -> dtg/pkg/__init__.py",
        "circle of 4: dtg/__init__.py -> dtg/program.py -> dtg/runtime/train.py -> "
        "dtg/runtime/checkpoint.py -> dtg/__init__.py",
    ]
    text = "\n".join(reports)
    assert "dtg/b.py:2 -> dtg/a.py (function-local)" in text
    assert "dtg/a.py:1 -> dtg/b.py (top-level)" in text
    assert "dtg/runtime/checkpoint.py:1 -> dtg/__init__.py (top-level)" in text
    assert "dtg/user.py:1 -> dtg/pkg/__init__.py (top-level, runs the package __init__)" in text
    assert "dtg/c.py" not in text and "dtg/ok/" not in text and "dtg/space/" not in text


def test_rule_function_local_imports(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "dtg/__init__.py": "",
            "dtg/n.py": "",
            "dtg/m.py": """
                from typing import TYPE_CHECKING
                import json


                def trailing():
                    import torch  # heavy: a second to import


                def above():
                    # Optional dependency: only the digits data set needs sklearn
                    from sklearn import datasets


                def run_under_one_comment():
                    # heavy: torch and pyro
                    import torch
                    import pyro


                def why():
                    from .n import f  # why: n imports m at the top


                def lazy():
                    from . import n  # lazy: keeps the CLI start fast


                def plain():
                    from .n import g


                def unrelated_comment():
                    import scipy  # fast enough


                def standard_library():
                    import traceback


                def after_a_commented_one():
                    import torch  # heavy
                    import csv


                def lazy_without_colon():
                    import numpy  # lazy


                def type_checking():
                    if TYPE_CHECKING:
                        from .n import T


                class Holder:
                    def method(self):
                        try:
                            from . import n
                        except ImportError:
                            pass
            """,
        },
    )
    assert unjustified_local_imports(root) == [
        "dtg/m.py:29 in plain: from .n import g [dtg]",
        "dtg/m.py:33 in unrelated_comment: import scipy  # fast enough [third-party]",
        "dtg/m.py:37 in standard_library: import traceback [stdlib]",
        "dtg/m.py:42 in after_a_commented_one: import csv [stdlib]",
        "dtg/m.py:46 in lazy_without_colon: import numpy  # lazy [third-party]",
        "dtg/m.py:57 in Holder.method: from . import n [dtg]",
    ]


def test_rule_syntax_tree_isinstance(tmp_path: Path) -> None:
    usage = """
        def f(x):
            return isinstance(x, ast.Call)
    """
    root = write_tree(
        tmp_path,
        {
            "dtg/__init__.py": "",
            "dtg/syntax/__init__.py": "from . import ast\n",
            "dtg/syntax/ast.py": "class Call: ...\nclass Name: ...\n",
            "dtg/check/shapes.py": "from ..syntax import ast\n" + textwrap.dedent(usage),
            "dtg/fmt.py": "from .syntax import ast\n" + textwrap.dedent(usage),
            "dtg/fmt_extra.py": "from .syntax import ast\n" + textwrap.dedent(usage),
            "dtg/ir/python_ast.py": "import ast\n" + textwrap.dedent(usage),
            "dtg/render/scene.py": """
                import ast as pyast
                import dtg.syntax.ast
                from ..syntax import ast
                from ..syntax.ast import Name as N


                def f(x):
                    a = isinstance(x, ast.Call)
                    b = isinstance(x, (ast.Name, pyast.AST))
                    c = isinstance(x, N) or issubclass(type(x), dtg.syntax.ast.Call)
                    d = isinstance(x, pyast.AST)
                    match x:
                        case ast.Name():
                            pass
                    return a, b, c, d
            """,
        },
    )
    assert syntax_tree_isinstance(root) == [
        "dtg/fmt_extra.py:4: isinstance(…, ast.Call)",
        "dtg/render/scene.py:8: isinstance(…, ast.Call)",
        "dtg/render/scene.py:9: isinstance(…, ast.Name)",
        "dtg/render/scene.py:10: isinstance(…, N)",
        "dtg/render/scene.py:10: issubclass(…, dtg.syntax.ast.Call)",
        "dtg/render/scene.py:13: case(…, ast.Name)",
    ]


def test_rule_torch_probe(tmp_path: Path) -> None:
    """The probe sees a heavy import, names the work that caused it and the chain of files."""
    root = write_tree(
        tmp_path,
        {
            "torch/__init__.py": "",
            "pyro/__init__.py": "import torch\n",
            "dtg/__init__.py": """
                def load(path):
                    if "heavy" in path:
                        from . import heavy
                    if "broken" in path:
                        raise ValueError("no such model")
            """,
            "dtg/heavy.py": "import pyro\n",
            "dtg/cli.py": """
                def main(argv):
                    if argv[0] == "train":
                        import torch
                    print("ran", argv)
                    return 1 if argv[0] == "fail" else 0
            """,
        },
    )
    light = start_probe(root, _PROBE_LOAD, tmp_path, paths=["a/light.dtg"])
    heavy = start_probe(
        root, _PROBE_LOAD, tmp_path, paths=["light.dtg", "x/heavy.dtg", "broken.dtg"]
    )
    runs = {argv: start_probe(root, _PROBE_CLI, tmp_path, argv=[argv]) for argv in HEAVY_CLI}
    assert finish_probe("light", light).problems() == []
    report = finish_probe("heavy", heavy)
    assert report.loaded == ["pyro", "torch"]
    assert report.first["pyro"] == {
        "during": "dtg.load(heavy.dtg)",
        "chain": ["dtg/__init__.py:3", "dtg/heavy.py:1"],
    }
    assert report.first["torch"]["chain"][-1] == "pyro/__init__.py:1"
    assert report.errors == {"broken.dtg": "ValueError: no such model"}
    problems = report.problems()
    assert problems[0] == (
        "heavy: pyro imported during dtg.load(heavy.dtg): dtg/__init__.py:3 -> dtg/heavy.py:1"
    )
    assert problems[2] == "heavy: broken.dtg: ValueError: no such model"
    assert finish_probe("check", runs["check"]).problems() == []
    train = finish_probe("train", runs["train"])
    assert train.loaded == ["torch"] and train.first["torch"]["during"] == "dtg train"
    fail = finish_probe("fail", runs["fail"]).problems()
    assert len(fail) == 1 and fail[0].startswith("fail: exit status 1\n") and "ran" in fail[0]


HEAVY_CLI = ("check", "train", "fail")

#: The last commit before issue 17's refactor: the circles the issue names are all there.
PRE_REFACTOR = "09b2905"


def test_rule_import_cycles_at_pre_refactor_commit(tmp_path: Path) -> None:
    """The four circles issue 17 names (all through function-local imports) are found at 09b2905,
    and one more it missed: ``plugins`` imports ``check.shapes`` in a function, which runs
    ``check/__init__`` → ``checker`` → ``plugins``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", PRE_REFACTOR, PACKAGE], capture_output=True
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {PRE_REFACTOR} is not in this clone")
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    modules = read_tree(tmp_path)
    successors = {n: {e.target for e in edges} for n, edges in import_graph(tmp_path).items()}
    circles = sorted(
        sorted(modules[name].path.as_posix() for name in component)
        for component in strongly_connected(successors)
        if len(component) > 1
    )
    assert circles == [
        ["dtg/__init__.py", "dtg/program.py", "dtg/runtime/__init__.py",
         "dtg/runtime/checkpoint.py", "dtg/runtime/evaluate.py", "dtg/runtime/finetune_eval.py",
         "dtg/runtime/train.py"],
        ["dtg/channels/discrete.py", "dtg/channels/mask.py", "dtg/channels/shuffle.py"],
        ["dtg/check/__init__.py", "dtg/check/checker.py", "dtg/plugins.py"],
        ["dtg/cli.py", "dtg/render/cli.py", "dtg/runtime/cli.py", "dtg/tools_cli.py"],
    ]  # fmt: skip
    assert len(oversized_modules(tmp_path)) == 8 and "dtg/data.py: 888 lines" in (
        oversized_modules(tmp_path)
    )
    assert "dtg/runtime/data_source.py:19: from ..check.shapes import ExprChecker, Scope " \
        "(function-local)" in front_end_imports(tmp_path)  # fmt: skip
    assert "dtg/runtime/expr.py:113: isinstance(…, ast.Call)" in syntax_tree_isinstance(tmp_path)


# ---------------------------------------------------------------------------------------------
# The rules on the real tree: the to-do list of issue 17 (remove a marker when its item lands)


def _report(title: str, found: list[str]) -> str:
    return f"{title} ({len(found)}):\n" + "\n".join(found)


def test_modules_at_most_400_lines() -> None:
    found = oversized_modules(ROOT)
    assert not found, _report(f"modules over {MAX_LINES} lines", found)


def test_lower_layers_import_no_front_end() -> None:
    found = front_end_imports(ROOT)
    assert not found, _report("imports of dtg.syntax / dtg.check below the front end", found)


def test_no_import_circles() -> None:
    found = import_cycles(ROOT)
    assert not found, _report("import circles", found)


def test_function_local_imports_say_why() -> None:
    found = unjustified_local_imports(ROOT)
    words = ", ".join(repr(w) for w in REASON_WORDS)
    assert not found, _report(f"function-local imports without a comment saying {words}", found)


def test_no_syntax_tree_isinstance_outside_front_end() -> None:
    found = syntax_tree_isinstance(ROOT)
    assert not found, _report("isinstance on dtg.syntax.ast classes outside the front end", found)


@pytest.fixture(scope="module")
def front_end_probes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Probe]:
    """All front-end probes of the real tree, started together (each a fresh interpreter)."""
    out = tmp_path_factory.mktemp("front_end")
    examples = sorted((ROOT / "examples").glob("*.dtg"))
    paths = cli_paths(ROOT / "examples" / "ddpm_moons.dtg", out)
    if shutil.which("dot") is None:
        paths.pop("render -o x.svg")
    started = {"dtg.load": start_probe(ROOT, _PROBE_LOAD, out, paths=[str(p) for p in examples])}
    started |= {label: start_probe(ROOT, _PROBE_CLI, out, argv=a) for label, a in paths.items()}
    return {label: finish_probe(label, process) for label, process in started.items()}


#: ``fmt --check`` exits 1 when a file would change: the examples keep their hand alignment.
_COMPLETE = {"fmt --check": (0, 1)}


def _heavy_free(probes: dict[str, Probe], label: str) -> None:
    if label not in probes:
        pytest.skip("Graphviz dot is not installed")
    report = probes[label]
    assert Path(report.dtg).resolve().parent == (ROOT / PACKAGE).resolve(), report.dtg
    problems = report.problems(_COMPLETE.get(label, (0, None)))
    assert not problems, _report("torch/pyro in the front end", problems)


def test_load_examples_torch_free(front_end_probes: dict[str, Probe]) -> None:
    _heavy_free(front_end_probes, "dtg.load")


@pytest.mark.parametrize(
    "label",
    [
        "check",
        "fmt --check",
        "compile --emit ast",
        "compile --emit ir",
        "render -o x.dot",
        "render -o x.tex",
        "render -o x.svg",
    ],
)
def test_cli_front_end_torch_free(front_end_probes: dict[str, Probe], label: str) -> None:
    _heavy_free(front_end_probes, label)

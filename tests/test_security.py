"""No code execution: a ``.dtg`` file, a data file or a checkpoint never runs Python.

* :func:`test_package_source_has_no_code_execution_calls` scans ``dtg/**/*.py`` with :mod:`ast`
  for calls that run or deserialise code (``eval``, ``exec``, ``sympify``, ``parse_expr``,
  ``pickle.load(s)``, ``torch.load`` without ``weights_only=True``, ``__import__``,
  ``os.system``, ``subprocess`` with ``shell=True``, ``yaml.load``, …) and fails on any that is
  not in :data:`ALLOW_LIST`; :func:`test_raw_grep_finds_nothing_the_ast_scan_missed` is a second
  net: a plain-text search whose hits in code (not comments or strings) must be calls the AST scan
  classified.
* :func:`test_lambdify_only_in_symbolic_table` pins the one ``lambdify`` to
  :func:`dtg.check.symbolic.table`, whose trees are built from the AST and have ``t`` as only symbol.
* :func:`test_python_names_in_a_dtg_file_are_rejected` puts ``__import__``, ``eval``, ``open``,
  ``getattr``, ``__class__``, ``os.system``… into every place of a ``.dtg`` file that holds an
  expression or a name; each must be a DtgError, create no sentinel file, import no module, and
  never reach ``eval``/``exec``/``compile`` (watched by :func:`code_watch`).
* :func:`test_a_malicious_pickle_data_file_is_not_executed` and friends: data files holding
  pickles are refused with a DataError; the payload is live (a control unpickling runs it).
* :func:`test_a_malicious_checkpoint_is_not_executed`: the runtime's checkpoint loader refuses a
  pickle that would run code.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import io
import pickle
import re
import sys
import tokenize
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import ROOT, example_paths

import dtg
import dtg.data

PACKAGE = ROOT / "dtg"

ALLOW_LIST: dict[str, str] = {
    "dtg/data/readers.py: import pickle": (
        "only for the exception type pickle.UnpicklingError that torch.load(weights_only=True) "
        "raises on a pickle with code; dtg/data.py never calls pickle.load/loads"
    ),
    "dtg/runtime/distributed.py: import subprocess": (
        "launch() re-runs `python -m torch.distributed.run … -m dtg ARGV` with "
        "subprocess.call(list): an argument vector (no shell), the interpreter itself, the "
        "command line the user typed; nothing from a .dtg file"
    ),
}
"""``"path: finding"`` → why it is safe. A finding not listed here fails the scan."""
ALLOW_LIST["dtg/plugins.py: exec_module"] = (
    "load_plugin runs the Python file the user names with --plugin or dtg.load_plugin (the "
    "documented plug-in mechanism); a .dtg file cannot name one"
)

#: Functions whose call runs text as code, or unpickles, keyed by how they are written.
DANGEROUS_NAMES = {
    "eval": "runs text as Python",
    "exec": "runs text as Python",
    "compile": "compiles text to Python code",
    "__import__": "imports a module by name",
    "sympify": "parses text with eval",
    "parse_expr": "parses text with eval",
    "S": "sympy.S(text) parses text with eval (only with a string argument)",
    "lambdify": "generates and execs Python code (allowed only in symbolic.table)",
    "import_module": "imports a module by name",
    "system": "runs a shell command",
    "popen": "runs a shell command",
    "load": "deserialises (pickle/yaml/torch/marshal…) — checked per module",
    "loads": "deserialises (pickle/marshal/dill…) — checked per module",
    "read_pickle": "unpickles",
    "exec_module": "runs a Python file as a module",
}
UNSAFE_LOADERS = {
    "pickle",
    "cPickle",
    "_pickle",
    "marshal",
    "dill",
    "cloudpickle",
    "shelve",
    "joblib",
    "yaml",
}
SUSPICIOUS_IMPORTS = {
    "pickle",
    "cPickle",
    "_pickle",
    "marshal",
    "dill",
    "cloudpickle",
    "shelve",
    "yaml",
    "subprocess",
    "ctypes",
    "code",
    "codeop",
    "runpy",
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str
    code: str

    @property
    def key(self) -> str:
        return f"{self.path}: {self.what}"


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _relative(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:  # a file outside the repository (the scanner's own test)
        return path.name


def _dotted(node: ast.expr) -> str:
    """``torch.load`` for ``Attribute(Name('torch'), 'load')``; ``?.load`` when not plain."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name → the dotted name it was imported as (``sp`` → ``sympy``, ``F`` → …)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def scan_calls(path: Path) -> tuple[list[Finding], list[Finding]]:
    """(dangerous findings, calls checked and found safe) of one source file."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    aliases = _aliases(tree)
    lines = source.splitlines()
    found: list[Finding] = []
    safe: list[Finding] = []

    def add(into: list[Finding], node: ast.AST, what: str) -> None:
        into.append(Finding(_relative(path), node.lineno, what, lines[node.lineno - 1].strip()))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for module in modules:
                if module.split(".")[0] in SUSPICIOUS_IMPORTS:
                    add(found, node, f"import {module}")
            continue
        if not isinstance(node, ast.Call):
            continue
        written = _dotted(node.func)
        head, _, _ = written.partition(".")
        resolved = aliases.get(head, head) + written[len(head) :]
        last = written.rsplit(".", 1)[-1]
        if _is_true(_keyword(node, "shell")):
            add(found, node, f"{written}(shell=True)")
        if last not in DANGEROUS_NAMES:
            continue
        if last in ("eval", "exec", "compile", "__import__"):
            # The builtins; a method such as net.eval() (torch's eval mode) is not one.
            if isinstance(node.func, ast.Name) or resolved.startswith("builtins."):
                add(found, node, f"{last}()")
            continue
        if last == "lambdify":
            add(
                safe
                if _in_function(tree, node, "table") and _relative(path) == "dtg/check/symbolic.py"
                else found,
                node,
                "lambdify()",
            )
            continue
        if last == "S":
            if resolved.startswith("sympy") and any(
                isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args
            ):
                add(found, node, "sympy.S(text)")
            continue
        if last in ("sympify", "parse_expr", "import_module", "read_pickle"):
            add(found, node, f"{resolved}()")
            continue
        if last == "exec_module":
            add(found, node, "exec_module")
            continue
        if last in ("system", "popen"):
            if resolved.split(".")[0] in ("os", "posix", "subprocess") or resolved in (
                "system",
                "popen",
            ):
                add(found, node, f"{resolved}()")
            continue
        # load / loads: which module?
        module = resolved.split(".")[0]
        if module == "torch" or resolved.endswith("torch.load"):
            (safe if _is_true(_keyword(node, "weights_only")) else found).append(
                Finding(
                    _relative(path),
                    node.lineno,
                    "torch.load(weights_only=True)"
                    if _is_true(_keyword(node, "weights_only"))
                    else "torch.load() without weights_only=True",
                    lines[node.lineno - 1].strip(),
                )
            )
        elif module in ("np", "numpy") or resolved.startswith("numpy."):
            allow = _keyword(node, "allow_pickle")
            (found if _is_true(allow) else safe).append(
                Finding(
                    _relative(path),
                    node.lineno,
                    f"numpy.load(allow_pickle={ast.unparse(allow) if allow else 'default False'})",
                    lines[node.lineno - 1].strip(),
                )
            )
        elif module in UNSAFE_LOADERS:
            add(found, node, f"{resolved}()")
        elif module in ("json",):
            add(safe, node, f"{resolved}()")
        else:
            # An unknown x.load(): record it as safe only when it is clearly not a deserialiser.
            add(safe, node, f"{resolved}() (not a known deserialiser)")
    return found, safe


def _in_function(tree: ast.Module, target: ast.AST, name: str) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            if any(child is target for child in ast.walk(node)):
                return True
    return False


def scan_package() -> tuple[list[Finding], list[Finding]]:
    found: list[Finding] = []
    safe: list[Finding] = []
    for path in package_files():
        more_found, more_safe = scan_calls(path)
        found += more_found
        safe += more_safe
    return found, safe


def test_the_scan_sees_the_whole_package() -> None:
    files = {_relative(p) for p in package_files()}
    assert {
        "dtg/check/symbolic.py",
        "dtg/data/readers.py",
        "dtg/check/checker.py",
        "dtg/syntax/parser.py",
    } <= files
    _, safe = scan_package()
    # The scan recognises the safe calls it must let through.
    assert any(f.path == "dtg/check/symbolic.py" and f.what == "lambdify()" for f in safe)
    assert any(
        f.path == "dtg/data/readers.py" and f.what == "torch.load(weights_only=True)" for f in safe
    )


def test_package_source_has_no_code_execution_calls() -> None:
    found, _ = scan_package()
    unexpected = [f for f in found if f.key not in ALLOW_LIST]
    assert not unexpected, "calls that run or deserialise code:\n" + "\n".join(
        f"  {f.path}:{f.line}: {f.what}: {f.code}" for f in unexpected
    )


def test_every_torch_load_uses_weights_only() -> None:
    _, safe = scan_package()
    loads = [f for f in safe if f.what.startswith("torch.load")]
    assert loads, "expected the data reader's torch.load"
    assert all(f.what == "torch.load(weights_only=True)" for f in loads)


def test_lambdify_only_in_symbolic_table() -> None:
    found, safe = scan_package()
    assert not [f for f in found if f.what == "lambdify()"]
    assert [f.path for f in safe if f.what == "lambdify()"] == ["dtg/check/symbolic.py"]


def test_the_scanner_catches_what_it_should(tmp_path: Path) -> None:
    """The scanner itself: each dangerous form is caught, the safe look-alikes are not."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle, subprocess, yaml\nimport sympy as sp\nimport torch as th\nimport numpy as np\n"
        "from sympy.parsing.sympy_parser import parse_expr\nfrom importlib import import_module\n"
        "import os\n"
        "eval('1')\nexec('x = 1')\n__import__('os')\nsp.sympify('x')\nparse_expr('x')\n"
        "pickle.load(f)\npickle.loads(b'')\nth.load('a.pt')\nth.load('a.pt', weights_only=False)\n"
        "os.system('ls')\nsubprocess.run('ls', shell=True)\nyaml.load(s)\nsp.S('x + 1')\n"
        "import_module('os')\nnp.load('a.npy', allow_pickle=True)\nsp.lambdify(t, e)\n"
        "spec.loader.exec_module(m)\n"
    )
    found, _ = scan_calls(bad)
    whats = {f.what for f in found}
    for expected in (
        "eval()",
        "exec()",
        "exec_module",
        "__import__()",
        "sympy.sympify()",
        "sympy.parsing.sympy_parser.parse_expr()",
        "pickle.load()",
        "pickle.loads()",
        "torch.load() without weights_only=True",
        "os.system()",
        "subprocess.run(shell=True)",
        "yaml.load()",
        "sympy.S(text)",
        "importlib.import_module()",
        "numpy.load(allow_pickle=True)",
        "lambdify()",
        "import pickle",
        "import subprocess",
        "import yaml",
    ):
        assert expected in whats, (expected, whats)
    good = tmp_path / "good.py"
    good.write_text(
        "import torch\nimport numpy as np\nimport sympy as sp\nimport json\n"
        "net.eval()\nmodel.eval().to('cpu')\ntorch.load('a.pt', weights_only=True)\n"
        "np.load('a.npy', allow_pickle=False)\njson.loads('{}')\nsp.S(1)\n"
        "# eval('x') in a comment\ns = 'pickle.load( in a string'\n"
    )
    found, _ = scan_calls(good)
    assert not found, found


GREP_PATTERNS = {
    r"(?<![\w.])eval\(": "eval()",
    r"(?<![\w.])exec\(": "exec()",
    r"\bsympify\(": "sympify",
    r"\bparse_expr\(": "parse_expr",
    r"\bpickle\.loads?\b": "pickle.load",
    r"\btorch\.load\(": "torch.load",
    r"__import__\(": "__import__()",
    r"\bos\.(system|popen)\(": "os.system()",
    r"shell\s*=\s*True": "shell=True",
    r"\byaml\.(unsafe_)?load\(": "yaml.load()",
    r"\blambdify\(": "lambdify()",
    r"allow_pickle\s*=\s*True": "allow_pickle=True",
}


def _code_hits(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, pattern name, line text) for each hit outside comments and string literals."""
    source = path.read_text(encoding="utf-8")
    text_regions: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING) or token.type == getattr(
            tokenize, "FSTRING_MIDDLE", -1
        ):
            text_regions.append((token.start, token.end))
    for number, line in enumerate(source.splitlines(), 1):
        for pattern, name in GREP_PATTERNS.items():
            for match in re.finditer(pattern, line):
                position = (number, match.start())
                if any(start <= position < end for start, end in text_regions):
                    continue
                yield number, name, line.strip()


def test_raw_grep_finds_nothing_the_ast_scan_missed() -> None:
    """Every textual hit in code must be a call the AST scan classified (safe or allow-listed)."""
    found, safe = scan_package()
    classified = {(f.path, f.line) for f in [*found, *safe]}
    allowed_lines = {(f.path, f.line) for f in found if f.key in ALLOW_LIST}
    dangerous_lines = {(f.path, f.line) for f in found} - allowed_lines
    missed = []
    for path in package_files():
        for line, name, text in _code_hits(path):
            key = (_relative(path), line)
            # A multi-line call is reported at its first line: accept the line above too.
            near = (
                key in classified
                or (key[0], line - 1) in classified
                or (key[0], line - 2) in classified
            )
            if not near or key in dangerous_lines:
                missed.append(f"{key[0]}:{line}: {name}: {text}")
    assert not missed, "textual hits the AST scan did not clear:\n" + "\n".join(missed)


# ============================================================================ .dtg files


@pytest.fixture(scope="module", autouse=True)
def warm() -> None:
    """Load every example and a few broken files so lazy imports happen before the tests."""
    for path in example_paths():
        try:
            dtg.load(path)
        except dtg.DtgError:
            pass
    for text in (
        "model m { steps T 10 }",
        'model m { data x : real[2] ~ file("a.npy") }',
        "model m { schedule s(t) = foo(t) }",
    ):
        try:
            dtg.loads(text)
        except dtg.DtgError:
            pass


@dataclass
class CodeWatch:
    """Everything handed to eval/exec/compile while active (sympy's lambdify compiles code)."""

    texts: list[str]

    def mentions(self, *needles: str) -> list[str]:
        return [t for t in self.texts if any(n in t for n in needles)]


@pytest.fixture
def code_watch(monkeypatch: pytest.MonkeyPatch) -> CodeWatch:
    watch = CodeWatch([])

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def spy(source: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(source, str | bytes):
                watch.texts.append(source if isinstance(source, str) else source.decode("latin-1"))
            return original(source, *args, **kwargs)

        return spy

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, wrap(getattr(builtins, name)))
    return watch


SENTINEL_NAME = "PWNED"
LAZY_PACKAGES = {"sympy", "mpmath", "numpy", "dtg", "lark", "torch", "scipy"}


def payloads(sentinel: Path) -> list[str]:
    """Python spellings that would create ``sentinel`` if anything ran them."""
    s = str(sentinel)
    return [
        f'__import__("os").system("touch {s}")',
        f"eval(\"open('{s}', 'w')\")",
        f"exec(\"open('{s}', 'w')\")",
        f'open("{s}", "w")',
        f'getattr(__builtins__, "open")("{s}", "w")',
        "__class__",
        "__import__",
        "getattr",
        "eval",
        "open",
        "os",
        f'os.system("touch {s}")',
        "().__class__.__bases__[0].__subclasses__()",
        f'compile("open(\'{s}\', \'w\')", "f", "exec")',
        "lambda: 1",
        f'"{s}"',
        "globals()",
        "__builtins__",
    ]


SAMPLER = """model m {{
  space x : real[2]
  steps T = 4
  reward logr(x) = {reward}
  schedule s(t) = {schedule}
  net drift : (real[2], time) -> real[2] = {arch}
  generate x[T] = {start}
  generate x[t-1] ~ Normal(x[t] + drift(x[t], t) / T, {gen_std})
  destroy x[{index}] ~ {channel}(s(t) * x[t-1] * {mean}, sqrt(1 / T * s(t)))
  objective trajectory_balance({objective})
  train {{ steps = 10, lr = {lr} }}
}}
"""
GAUSSIAN = """model m {{
  data x : real[2] ~ {source}
  steps T = 10
  schedule s(t) = 0.1
  net f : (real[2], time) -> real[2] = mlp(hidden = [8])
  destroy x[t] ~ Normal(sqrt(1 - s(t)) * x[t-1], sqrt(s(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], f)
  objective denoising
}}
"""
SAMPLER_DEFAULTS = {
    "reward": "-sum(x^2)",
    "schedule": "(T - t) / (T - t + 1)",
    "arch": "mlp(hidden = [8])",
    "start": "0",
    "gen_std": "0.5",
    "index": "t",
    "channel": "Normal",
    "mean": "1",
    "objective": "lr_logZ = 0.1",
    "lr": "1e-3",
}
PLACES: dict[str, Callable[[str], str]] = {
    "schedule": lambda p: SAMPLER.format(**{**SAMPLER_DEFAULTS, "schedule": p}),
    "reward": lambda p: SAMPLER.format(**{**SAMPLER_DEFAULTS, "reward": p}),
    "destroy mean": lambda p: SAMPLER.format(**{**SAMPLER_DEFAULTS, "mean": p}),
    "generate std": lambda p: SAMPLER.format(**{**SAMPLER_DEFAULTS, "gen_std": p}),
    "generation start": lambda p: SAMPLER.format(**{**SAMPLER_DEFAULTS, "start": p}),
    "level index": lambda p: SAMPLER.format(**{**SAMPLER_DEFAULTS, "index": p}),
    "kernel channel": lambda p: SAMPLER.format(**{**SAMPLER_DEFAULTS, "channel": p.split("(")[0]}),
    "net option": lambda p: SAMPLER.format(
        **{**SAMPLER_DEFAULTS, "arch": f"mlp(hidden = [8], activation = {p})"}
    ),
    "net list option": lambda p: SAMPLER.format(
        **{**SAMPLER_DEFAULTS, "arch": f"mlp(hidden = [{p}])"}
    ),
    "net architecture": lambda p: SAMPLER.format(
        **{**SAMPLER_DEFAULTS, "arch": f"{p.split('(')[0]}(hidden = [8])"}
    ),
    "objective option": lambda p: SAMPLER.format(
        **{**SAMPLER_DEFAULTS, "objective": f"lr_logZ = {p}"}
    ),
    "objective positional": lambda p: SAMPLER.format(**{**SAMPLER_DEFAULTS, "objective": p}),
    "train option": lambda p: SAMPLER.format(**{**SAMPLER_DEFAULTS, "lr": p}),
    "data source option": lambda p: GAUSSIAN.format(source=f"moons(noise = {p})"),
    "data source positional": lambda p: GAUSSIAN.format(source=f"moons({p})"),
    "data source": lambda p: GAUSSIAN.format(source=p if "(" in p else f"{p}()"),
    "file source": lambda p: GAUSSIAN.format(source=f"file({p})"),
}


def test_the_templates_check_as_they_are() -> None:
    """Without a payload the places above hold valid values, so a rejection is the payload's."""
    dtg.loads(SAMPLER.format(**SAMPLER_DEFAULTS))
    dtg.loads(GAUSSIAN.format(source="moons(noise = 0.05)"))


@pytest.mark.parametrize("place", list(PLACES))
def test_python_names_in_a_dtg_file_are_rejected(
    place: str, tmp_path: Path, code_watch: CodeWatch
) -> None:
    sentinel = tmp_path / SENTINEL_NAME
    before = set(sys.modules)
    for payload in payloads(sentinel):
        if place == "file source" and re.fullmatch(r'"[^"]*"|\w+', payload):
            continue  # a file name: see test_bare_names_are_not_file_names
        text = PLACES[place](payload)
        with pytest.raises(dtg.DtgError) as info:
            dtg.loads(text, file="evil.dtg")
        assert info.value.span is not None, (place, payload, info.value.format())
        info.value.format()
        assert not sentinel.exists(), (place, payload)
    new = sorted(set(sys.modules) - before)
    # Lazy internals of the libraries the checker uses may load (sympy.simplify imports
    # sympy.physics.units on first use); nothing else, and nothing the file names.
    foreign = [m for m in new if m.split(".")[0] not in LAZY_PACKAGES]
    assert not foreign, f"modules imported while checking hostile files: {foreign}"
    assert not code_watch.mentions(
        SENTINEL_NAME, "__import__", "system", "__class__", "getattr", "globals", "__builtins__"
    ), code_watch.texts


@pytest.mark.parametrize("name", ["__import__", "os", "eval", "open", "__builtins__"])
def test_bare_names_are_not_file_names(name: str) -> None:
    """``file(__import__)`` would name the path ``"__import__"`` (nothing runs: it is a file
    name); a bare name is refused like ``file(1)``, at the name, asking for quotes."""
    with pytest.raises(dtg.DtgDataError, match="bare name") as info:
        dtg.loads(GAUSSIAN.format(source=f"file({name})"))
    assert "in quotes" in info.value.format()
    line = GAUSSIAN.format(source=f"file({name})").splitlines()[info.value.span.line - 1]
    assert info.value.span.column == line.index("file(") + len("file(") + 1  # 1-based


def test_dunder_and_dotted_names_have_a_clear_message() -> None:
    for expression in ("__import__", "__class__", "__builtins__"):
        with pytest.raises(dtg.DtgNameError, match="not allowed"):
            dtg.loads(SAMPLER.format(**{**SAMPLER_DEFAULTS, "schedule": expression}))


def test_checking_every_example_never_evaluates_user_text(code_watch: CodeWatch) -> None:
    """What reaches exec/compile while checking is sympy's printout of an AST-built tree
    (``lambdify`` in :func:`dtg.check.symbolic.table`), never the file's text."""
    for path in example_paths():
        text = path.read_text(encoding="utf-8")
        dtg.load(path)
        for code in code_watch.texts:
            assert text not in code
            # lambdify's generated function and the imports of its namespace, nothing else.
            assert code.lstrip().startswith(("def _lambdifygenerated(", "from ", "import ")) or (
                not code.strip()
            ), code[:300]


# ============================================================================ data and checkpoints


class _Payload:
    """Unpickling this calls ``open(path, "w")``: proof that code in the file ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.path, "w"))


def _write_torch_pickle(path: Path, sentinel: Path) -> None:
    torch.save({"x": torch.zeros(4, 2), "evil": _Payload(sentinel)}, path)


def _write_plain_pickle(path: Path, sentinel: Path) -> None:
    with open(path, "wb") as file:
        pickle.dump({"x": np.zeros((4, 2)), "evil": _Payload(sentinel)}, file)


def _write_object_npy(path: Path, sentinel: Path) -> None:
    array = np.empty(4, dtype=object)
    array[:] = [_Payload(sentinel)] * 4
    with open(path, "wb") as file:
        np.save(file, array, allow_pickle=True)


def _write_object_npz(path: Path, sentinel: Path) -> None:
    array = np.empty(4, dtype=object)
    array[:] = [_Payload(sentinel)] * 4
    np.savez(path, x=array)


def _write_torch_zip_with_plain_pickle(path: Path, sentinel: Path) -> None:
    """A torch-zip whose data.pkl is a hand-made pickle with a GLOBAL builtins.open."""
    _write_torch_pickle(path, sentinel)
    with zipfile.ZipFile(path) as source:
        entries = {name: source.read(name) for name in source.namelist()}
    name = next(n for n in entries if n.endswith("data.pkl"))
    entries[name] = pickle.dumps(_Payload(sentinel), protocol=2)
    with zipfile.ZipFile(path, "w") as target:
        for entry, data in entries.items():
            target.writestr(entry, data)


MALICIOUS_FILES: dict[str, tuple[str, Callable[[Path, Path], None]]] = {
    "torch.save": (".pt", _write_torch_pickle),
    "plain pickle as .pt": (".pt", _write_plain_pickle),
    "plain pickle as .pth": (".pth", _write_plain_pickle),
    "torch zip, pickled payload": (".pt", _write_torch_zip_with_plain_pickle),
    "object .npy": (".npy", _write_object_npy),
    "object .npz": (".npz", _write_object_npz),
}


def _unpickle_anyway(path: Path) -> None:
    """The control: what an unsafe reader would do (it runs the payload)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.suffix == ".npy":
            np.load(path, allow_pickle=True)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=True) as archive:
                archive["x"]
        else:
            try:
                torch.load(path, weights_only=False)
            except Exception:  # noqa: BLE001 - a plain pickle: torch may refuse, pickle will not
                with open(path, "rb") as file:
                    pickle.load(file)


@pytest.mark.parametrize("kind", list(MALICIOUS_FILES))
def test_the_payloads_are_live(kind: str, tmp_path: Path) -> None:
    suffix, write = MALICIOUS_FILES[kind]
    control = tmp_path / "CONTROL"
    path = tmp_path / f"evil{suffix}"
    write(path, control)
    _unpickle_anyway(path)
    assert control.exists(), "the payload must be live for the refusal tests to mean anything"


@pytest.mark.parametrize("kind", list(MALICIOUS_FILES))
def test_a_malicious_pickle_data_file_is_not_executed(kind: str, tmp_path: Path) -> None:
    suffix, write = MALICIOUS_FILES[kind]
    sentinel = tmp_path / SENTINEL_NAME
    path = tmp_path / f"evil{suffix}"
    write(path, sentinel)
    # Checking a file that names it does not read it; loading refuses it.
    text = GAUSSIAN.format(source=f'file("{path}")')
    dtg.loads(text, file=str(tmp_path / "evil.dtg"))
    assert not sentinel.exists()
    with pytest.raises(dtg.data.DataError):
        dtg.data.load_source("file", {"path": str(path)}, dtg.ir.space.Space("real", (2,)))
    assert not sentinel.exists()
    with pytest.raises(dtg.data.DataError):
        dtg.data.load_source(
            "file",
            {"path": str(path), "key": "x"} if suffix != ".npy" else {"path": str(path)},
            dtg.ir.space.Space("real", (2,)),
        )
    assert not sentinel.exists()


def _checkpoint_loader() -> Callable[[Path], Any] | None:
    try:
        module = importlib.import_module("dtg.runtime.checkpoint")
    except ImportError:
        return None
    return getattr(module, "load_checkpoint", None)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.skipif(_checkpoint_loader() is None, reason="checkpoints arrive with the runtime")
@pytest.mark.parametrize(
    "kind", ["torch.save", "plain pickle as .pt", "torch zip, pickled payload"]
)
def test_a_malicious_checkpoint_is_not_executed(kind: str, tmp_path: Path) -> None:
    load = _checkpoint_loader()
    assert load is not None
    suffix, write = MALICIOUS_FILES[kind]
    sentinel = tmp_path / SENTINEL_NAME
    path = tmp_path / f"checkpoint{suffix}"
    write(path, sentinel)
    with pytest.raises(dtg.DtgError) as info:
        load(path)
    info.value.format()
    assert not sentinel.exists()

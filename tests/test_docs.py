"""The documentation is checked like code.

* Every ```dtg block of every page under ``docs/`` is loaded with :func:`dtg.loads`. A block is a
  complete file unless an HTML comment right before it says otherwise:

  - ``<!-- fragment -->`` or ``<!-- fragment TEMPLATE -->``: the block holds statements only; the
    test completes it with the statements of a template model (below) that the block does not
    give itself (a block's ``destroy`` replaces the template's, its ``net eps`` replaces the
    template's ``net eps``, …). Templates: ``real`` (the default: DDPM on moons), ``elbo``,
    ``token``, ``sampler`` and ``finetune`` (a child of a small digits model).
  - ``<!-- error: TEXT -->`` (alone, or after ``fragment …;``): loading must fail with a
    ``DtgError`` whose message contains TEXT.

  A complete block may ``extends`` a model defined in an earlier block of the same page or in
  ``examples/``.
* The generated tables of ``docs/language.md`` match the code, and the reference mentions every
  statement, channel, function, data source, target, architecture, objective and option.
* Every ``dtg …`` command line in the docs' ```sh blocks parses with the real CLI parser.
* ``mkdocs build --strict`` succeeds (it fails on broken links), and every local ``href``/``src``
  of the built HTML exists.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import dtg
from dtg.syntax import ast, parse

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LANGUAGE = DOCS / "language.md"


# ----------------------------------------------------------------------------- code blocks


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: str | None  # the HTML comment right before the fence, if any

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(DOCS)}:{self.line}"


_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<body>(?:fragment|error)\b.*?)\s*-->\s*$")


def code_blocks(page: Path) -> list[Block]:
    """Every fenced code block of a Markdown page (fences may be indented, e.g. in lists)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = len(match.group("indent")), match.group("fence")
        info = match.group("info").strip()
        lang = info.split()[0].lstrip(".{").rstrip("}") if info else ""
        marker = None
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (found := _MARKER.match(lines[j])):
            marker = found.group("body")
        body: list[str] = []
        k = i + 1
        while k < len(lines):
            close = lines[k].strip()
            if close.startswith(fence[0] * len(fence)) and set(close) == {fence[0]}:
                break
            body.append(lines[k][indent:] if lines[k][:indent].strip() == "" else lines[k])
            k += 1
        blocks.append(Block(page, i + 1, lang, "\n".join(body) + "\n", marker))
        i = k + 1
    return blocks


def doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def dtg_blocks() -> list[Block]:
    return [b for page in doc_pages() for b in code_blocks(page) if b.lang == "dtg"]


# ----------------------------------------------------------------------------- fragments

#: Template models: (text before the model, the model's header, [(statement key, text)]).
TEMPLATES: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "real": (
        "",
        "model fragment",
        [
            ("message", "data x : real[2] ~ moons()"),
            ("steps", "steps T = 20"),
            ("schedule beta", "schedule beta(t) = 0.01 + 0.3 * t / T"),
            ("net eps", "net eps : (real[2], time) -> real[2] = mlp(hidden = [16])"),
            ("destroy", "destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))"),
            ("generate start", "generate x[T] ~ Normal(0, 1)"),
            ("generate step", "generate x[t-1] ~ Guess(x[t], eps)"),
            ("objective", "objective denoising"),
        ],
    ),
    "elbo": (
        "",
        "model fragment",
        [
            ("message", "data x : real[2] ~ moons()"),
            ("steps", "steps T = 4"),
            ("schedule beta", "schedule beta(t) = 0.1 + 0.2 * t / T"),
            ("net mu", "net mu : (real[2], time) -> real[2] = mlp(hidden = [16])"),
            ("destroy", "destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))"),
            ("generate start", "generate x[T] ~ Normal(0, 1)"),
            ("generate step", "generate x[t-1] ~ Normal(mu(x[t], t), 0.1)"),
            ("objective", "objective elbo"),
        ],
    ),
    "token": (
        "",
        "model fragment",
        [
            ("message", "data x : token(4)[8] ~ categorical(probs = [0.4, 0.3, 0.2, 0.1])"),
            ("steps", "steps T = 8"),
            ("schedule alpha", "schedule alpha(t) = 1 - t/T"),
            ("net logits", "net logits : (token(4)[8], time) -> real[8, 4] = mlp(hidden = [16])"),
            ("destroy", "destroy x[t] ~ Mask(x[t-1], keep = alpha(t) / alpha(t-1))"),
            ("generate start", "generate x[T] = masked"),
            ("generate step", "generate x[t-1] ~ Guess(x[t], logits)"),
            ("objective", "objective masking"),
        ],
    ),
    "sampler": (
        "",
        "model fragment",
        [
            ("message", "space x : real[2]"),
            ("steps", "steps T = 10"),
            ("reward", "reward logr(x) = gmm25(x)"),
            ("schedule s", "schedule s(t) = (T - t) / (T - t + 1)"),
            ("net drift", "net drift : (real[2], time) -> real[2] = mlp(hidden = [16])"),
            ("generate start", "generate x[T] = 0"),
            ("generate step", "generate x[t-1] ~ Normal(x[t] + drift(x[t], t) / T, sqrt(5 / T))"),
            ("destroy", "destroy x[t] ~ Normal(s(t) * x[t-1], sqrt(5 / T * s(t)))"),
            ("objective", "objective trajectory_balance"),
        ],
    ),
    "finetune": (
        """model prior {
  data x : real[64] ~ digits()
  steps T = 10
  schedule beta(t) = 0.01 + 0.3 * t / T
  net eps : (real[64], time) -> real[64] = mlp(hidden = [32])
  destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
}
""",
        "model fragment extends prior",
        [
            ("reward", "reward even(x) = classify(x, classes = [0, 2, 4, 6, 8])"),
            ("objective", "objective relative_trajectory_balance"),
        ],
    ),
}


def _has_t(node: object) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "t"
    if isinstance(node, (ast.Binary,)):
        return _has_t(node.left) or _has_t(node.right)
    if isinstance(node, ast.Unary):
        return _has_t(node.operand)
    return False


def statement_key(statement: ast.Node) -> str:
    """Which template statement a fragment statement replaces."""
    if isinstance(statement, (ast.Data, ast.SpaceDecl)):
        return "message"
    if isinstance(statement, ast.Schedule):
        return f"schedule {statement.name}"
    if isinstance(statement, ast.Net):
        return f"net {statement.name}"
    if isinstance(statement, ast.Generate):  # generate x[1] (one level) replaces the step
        index = statement.level.index
        return (
            "generate step"
            if _has_t(index) or not isinstance(index, ast.Name)
            else "generate start"
        )
    return {
        ast.Steps: "steps",
        ast.Destroy: "destroy",
        ast.Reward: "reward",
        ast.Objective: "objective",
        ast.Train: "train",
    }[type(statement)]


def parse_marker(marker: str | None) -> tuple[str | None, str | None]:
    """``(template or None for a complete file, expected error text or None)``."""
    template, error = None, None
    for part in (marker or "").split(";"):
        part = part.strip()
        if part.startswith("fragment"):
            template = part[len("fragment") :].strip() or "real"
            assert template in TEMPLATES, f"unknown fragment template {template!r}"
        elif part.startswith("error"):
            error = part[len("error") :].lstrip(" :").strip()
            assert error, "write <!-- error: TEXT --> with the text the message must contain"
        elif part:
            raise AssertionError(f"unknown marker {part!r}")
    return template, error


def complete(fragment: str, template: str) -> str:
    """The fragment's statements plus the template's statements it does not replace."""
    prelude, header, defaults = TEMPLATES[template]
    module = parse(f"{header} {{\n{fragment}\n}}", "<fragment>")
    given = {statement_key(s) for s in module.models[0].statements}
    fill = "\n".join(f"  {text}" for key, text in defaults if key not in given)
    return f"{prelude}{header} {{\n{fill}\n{fragment}\n}}\n"


def _defined_models(text: str) -> list[str]:
    return re.findall(r"^\s*model\s+(\w+)", text, re.M)


def source_of(block: Block, earlier: dict[str, str]) -> str:
    """The complete text to load for ``block`` (parents from earlier blocks prepended)."""
    template, _ = parse_marker(block.marker)
    if template is not None:
        return complete(block.text, template)
    text = block.text
    own = set(_defined_models(text))
    for parent in re.findall(r"\bextends\s+(\w+)", text):
        if parent not in own and parent in earlier:
            text = earlier[parent] + "\n" + text
            own |= set(_defined_models(earlier[parent]))
    return text


BLOCKS = dtg_blocks()


def _earlier(block: Block) -> dict[str, str]:
    """Complete models of earlier blocks on the same page, by name."""
    found: dict[str, str] = {}
    for other in BLOCKS:
        if other.page != block.page or other.line >= block.line:
            continue
        template, error = parse_marker(other.marker)
        if template is None and error is None:
            for name in _defined_models(other.text):
                found[name] = source_of(other, found)
    return found


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_dtg_block(block: Block) -> None:
    template, error = parse_marker(block.marker)
    # Loaded as if it lived in examples/: ``extends ddpm_digits`` finds examples/ddpm_digits.dtg.
    file = str(ROOT / "examples" / "_docs_block.dtg")
    try:
        text = source_of(block, _earlier(block))
        dtg.loads(text, file=file)
    except dtg.DtgError as failure:
        if error is None:
            pytest.fail(f"{block.id}: this ```dtg block does not load:\n{failure.format()}")
        message = failure.format()
        assert error in message, (
            f"{block.id}: expected an error containing {error!r}, got\n{message}"
        )
        return
    assert error is None, f"{block.id}: expected an error containing {error!r}, but it loads"


def test_blocks_found() -> None:
    assert len([b for b in BLOCKS if b.page == LANGUAGE]) >= 40


def test_markers_precede_dtg_blocks() -> None:
    """A ``<!-- fragment -->``/``<!-- error -->`` comment must sit right before a ```dtg block."""
    for page in doc_pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        marked = {b.line for b in code_blocks(page) if b.lang == "dtg" and b.marker}
        for number, line in enumerate(lines, 1):
            if _MARKER.match(line):
                after = number + 1
                while after <= len(lines) and not lines[after - 1].strip():
                    after += 1
                assert after in marked, f"{page.name}:{number}: a marker not followed by ```dtg"


def test_templates_are_complete() -> None:
    for name in TEMPLATES:
        dtg.loads(complete("", name))


# ----------------------------------------------------------------------------- reference


def _build_reference():
    spec = importlib.util.spec_from_file_location("build_reference", DOCS / "build_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_tables_match_the_code() -> None:
    reference = _build_reference()
    text = LANGUAGE.read_text(encoding="utf-8")
    assert set(reference.generated_names(text)) == set(reference.TABLES)
    assert reference.update(text) == text, "stale tables: run python docs/build_reference.py"


def test_reference_mentions_everything() -> None:
    from dtg.check.kernels import PREDICT, VARIANCE
    from dtg.check.objectives import OBJECTIVE_OPTIONS, TRAIN_OPTIONS
    from dtg.data import SOURCES
    from dtg.names import CHANNELS, CONSTANT_NAMES, MATH_FUNCTIONS, REDUCTIONS
    from dtg.nets import ARCHITECTURES
    from dtg.targets import TARGETS

    text = LANGUAGE.read_text(encoding="utf-8")
    headings = re.findall(r"^#+ .*$", text, re.M)
    statements = ["model", "extends", "data", "space", "steps", "schedule", "net", "destroy"]
    statements += ["generate", "reward", "objective", "train"]
    for keyword in statements:
        assert any(f"`{keyword}" in h for h in headings), f"no section for the statement {keyword}"
    for channel in CHANNELS:
        assert any(f"`{channel}" in h for h in headings), f"no section for the channel {channel}"
    names = [*MATH_FUNCTIONS, *REDUCTIONS, "min", "max", "classify", *CONSTANT_NAMES]
    names += [*SOURCES, *TARGETS, *ARCHITECTURES, *PREDICT, *VARIANCE, "masked", "time"]
    for kind, options in OBJECTIVE_OPTIONS.items():
        names += [kind.value, *options]
        for spec in options.values():
            names += list(spec.choices)
    for name, spec in TRAIN_OPTIONS.items():
        names += [name, *spec.choices]
    for options in ARCHITECTURES.values():
        names += list(options)
    missing = sorted({n for n in names if f"`{n}" not in text and f"{n}(" not in text})
    assert not missing, f"docs/language.md never mentions: {missing}"
    for kind in OBJECTIVE_OPTIONS:
        assert any(f"`{kind.value}" in h for h in headings), f"no section for {kind.value}"


# ----------------------------------------------------------------------------- command lines


def _command_lines() -> list[tuple[str, str]]:
    out = []
    for page in doc_pages():
        for block in code_blocks(page):
            if block.lang not in ("sh", "bash", "console", "shell"):
                continue
            text = block.text.replace("\\\n", " ")
            for line in text.splitlines():
                line = line.strip().removeprefix("$ ")
                line = re.sub(r"^(\w+=\S+\s+)+", "", line)  # OMP_NUM_THREADS=1 dtg …
                if line.startswith("dtg "):
                    out.append((f"{page.name}:{block.line}", line.split("  #")[0].split(" # ")[0]))
    return out


COMMANDS = _command_lines()


@pytest.mark.parametrize("where,line", COMMANDS, ids=[f"{w} {c[:40]}" for w, c in COMMANDS])
def test_command_lines_parse(where: str, line: str) -> None:
    from dtg.cli import UsageError, build_parser

    argv = shlex.split(line)[1:]
    argv = [a for a in argv if a not in ("|", ">")]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version
        assert done.code in (0, None), f"{where}: `{line}` exits with {done.code}"
    except UsageError as error:
        pytest.fail(f"{where}: `{line}` does not parse: {error}")


# ----------------------------------------------------------------------------- the site


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def _mkdocs_config() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with mkdocs")
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def test_nav_lists_every_page() -> None:
    nav = _nav_pages(_mkdocs_config()["nav"])
    pages = [p.relative_to(DOCS).as_posix() for p in doc_pages()]
    orphans = [p for p in pages if p not in nav]
    assert not orphans, f"pages missing from the nav of mkdocs.yml: {orphans}"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[dev]' installs it)")
    site = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    )
    pages = sorted(site.rglob("*.html"))
    assert (site / "index.html").is_file() and (site / "language.html").is_file()
    broken = []
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("#", "mailto:", "data:")):
                continue
            path = unquote(parts.path)
            # 404.html links from the site root (it is served for any URL).
            target = (
                site / path.lstrip("/") if path.startswith("/") else page.parent / path
            ).resolve()
            if path.endswith("/") or target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)} → {link}")
    assert not broken, "broken local links in the built site:\n" + "\n".join(broken)
    # dtg code is highlighted by dtg's Pygments lexer (keywords get their own spans).
    language = (site / "language.html").read_text(encoding="utf-8")
    assert re.search(r'<span style="[^"]*">model</span>', language), (
        "dtg blocks are not highlighted"
    )


def test_readme_example_is_the_example_file() -> None:
    """The README's ```dtg block is examples/ddpm_moons.dtg without its comments."""
    readme = [b for b in code_blocks(ROOT / "README.md") if b.lang == "dtg"]
    assert len(readme) == 1
    example = (ROOT / "examples" / "ddpm_moons.dtg").read_text()
    statements = [
        line for line in example.splitlines() if line.strip() and not line.strip().startswith("#")
    ]
    shown = [
        line
        for line in readme[0].text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    # The README may leave out the train block; every line it shows is the file's.
    assert shown == [line for line in statements if not line.strip().startswith("train")]
    dtg.loads(readme[0].text)

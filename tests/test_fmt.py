"""``dtg fmt``: canonical layout, idempotent, AST-preserving, every comment kept."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from conftest import example_paths

import dtg.cli
from dtg import DtgError
from dtg.fmt import LINE_LIMIT, find_comments, format_source
from dtg.syntax import parse

MESSY = """\
   # header comment


# second header
model   a{   # after brace
steps T=10 # trailing steps
  # lead schedule


    schedule s(t)=1-t/T
  destroy x[t]~Normal(x[t-1],  # inside
     s(t))
  data x:real[2]~moons(noise=0.05)
  train{steps=10,   # ten
  # about lr
  lr=1e-3}
  # end of body

}   # after close
model b extends a { objective denoising() train { } } # b
# tail
"""

MESSY_FORMATTED = """\
# header comment

# second header
model a {  # after brace
  steps T = 10  # trailing steps
  # lead schedule

  schedule s(t) = 1-t/T
  # inside
  destroy x[t] ~ Normal(x[t-1], s(t))
  data x : real[2] ~ moons(noise = 0.05)
  train {
    steps = 10,  # ten
    # about lr
    lr = 1e-3,
  }
  # end of body
}  # after close

model b extends a {
  objective denoising
  train {}
}  # b

# tail
"""


def comment_texts(text: str) -> Counter:
    return Counter(c.text for c in find_comments(text))


def check_properties(text: str) -> str:
    out = format_source(text)
    assert format_source(out) == out, "not idempotent"
    assert parse(out) == parse(text), "changed the meaning"
    assert comment_texts(out) == comment_texts(text), "lost or changed a comment"
    return out


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.name)
def test_examples(path) -> None:
    out = check_properties(path.read_text(encoding="utf-8"))
    assert out.endswith("}\n") and "\n\n\n" not in out
    assert all(line == line.rstrip() for line in out.splitlines())


def test_messy_input_exact() -> None:
    assert check_properties(MESSY) == MESSY_FORMATTED


def test_comment_scanner_skips_strings() -> None:
    text = 'model m { data x : real[2] ~ file("a#b.npy", "q\\"#") # real one\n}'
    assert [c.text for c in find_comments(text)] == ["# real one"]
    out = check_properties(text)
    assert 'file("a#b.npy", "q\\"#")  # real one' in out


def test_long_call_is_broken_after_commas() -> None:
    text = (
        "model m { destroy x[t] ~ Normal(aaaaaaaaaa * x[t-1] * (1 + 0.1 * tanh(bbbbbbbbbbbbbb)),"
        " sqrt(5 / T * cccccccccccccccc) * (1 + 0.1 * ddddddddddddddd)) }"
    )
    out = check_properties(text)
    assert out.splitlines()[1:3] == [
        "  destroy x[t] ~ Normal(aaaaaaaaaa * x[t-1] * (1 + 0.1 * tanh(bbbbbbbbbbbbbb)),",
        "                        sqrt(5 / T * cccccccccccccccc) * (1 + 0.1 * ddddddddddddddd))",
    ]
    assert all(len(line) <= LINE_LIMIT for line in out.splitlines())


def test_long_train_block_fills_lines_between_the_braces() -> None:
    options = ", ".join(f"option_number_{i} = {i}" for i in range(6))
    out = check_properties(f"model m {{ train {{ {options} }} }}")
    assert out.splitlines()[1:5] == [
        "  train {",
        "    option_number_0 = 0, option_number_1 = 1, option_number_2 = 2, option_number_3 = 3,",
        "    option_number_4 = 4, option_number_5 = 5",
        "  }",
    ]
    commented = check_properties(f"model m {{ train {{ {options}  # last\n }} }}")
    assert "    option_number_5 = 5,  # last" in commented.splitlines()  # one option a line


ALIGNED = """\
model m {
  data x : real[2] ~ moons()
  steps T = 10
  net eps   : (real[2], time) -> real[2] = mlp(hidden = [16])
  net other : (real[2], time) -> real[2] = mlp(hidden = [16])

  destroy  x[t]   ~ Normal(0.9 * x[t-1], 0.3)
  # the start
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)

  generate x[T] ~ Normal(0, 1)
  objective denoising
}
"""


def test_destroy_generate_and_net_runs_are_aligned() -> None:
    """The docs' layout: a run (no blank line between; a comment line does not break it) of
    kernels lines up its levels and ``~``, a run of nets its ``:``."""
    squeezed = "\n".join(" ".join(line.split()) for line in ALIGNED.splitlines()) + "\n"
    assert squeezed != ALIGNED
    assert check_properties(squeezed) == ALIGNED
    assert check_properties(ALIGNED) == ALIGNED
    alone = check_properties("model m { destroy x[t] ~ Normal(x[t-1], 1) }")
    assert "  destroy x[t] ~ Normal(x[t-1], 1)" in alone  # a run of one: nothing to pad


def _squeeze(text: str) -> str:
    """Every run of spaces in the code (not the indent, not comments) made one space."""
    lines = []
    for line in text.split("\n"):
        code, mark, comment = line.partition("#")
        indent = len(code) - len(code.lstrip())
        code = (code[:indent] + re.sub(r" {2,}", " ", code[indent:])).rstrip()
        lines.append(f"{code}  {mark}{comment}" if mark and code else code + mark + comment)
    return "\n".join(lines)


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.name)
def test_examples_are_rebuilt_from_unaligned_text(path) -> None:
    """fmt produces the examples' alignment, it does not only keep it."""
    text = path.read_text(encoding="utf-8")
    assert format_source(_squeeze(text)) == text


def test_operators_written_tight_stay_tight() -> None:
    text = "model m { schedule a(t) = cos(pi/2 * (t/T + 0.008))^2 - b(t-1) + c /2 - d- e }"
    out = check_properties(text)
    assert "schedule a(t) = cos(pi/2 * (t/T + 0.008))^2 - b(t-1) + c / 2 - d - e" in out
    assert "x - -y" in check_properties("model m { schedule a(t) = x--y }")


def test_long_operator_chain_is_broken_before_its_operators() -> None:
    terms = [f"term_{i}(p[{i}])" for i in range(8)]
    out = check_properties("model m { reward logr(p) = " + " + ".join(terms) + " }")
    assert out.splitlines()[1:3] == [
        "  reward logr(p) = term_0(p[0]) + term_1(p[1]) + term_2(p[2]) + term_3(p[3]) + term_4(p[4])",
        "      + term_5(p[5]) + term_6(p[6]) + term_7(p[7])",
    ]
    tight = check_properties("model m { reward logr(p) = " + "+".join(terms * 2) + " }")
    assert all(len(line) <= LINE_LIMIT for line in tight.splitlines())


def test_end_of_line_comments_of_consecutive_lines_share_a_column() -> None:
    text = "model m {  # m\n  steps T = 10  # ten\n  data x : real[2]  # two\n\n  objective elbo  # e\n}\n"
    assert check_properties(text).splitlines() == [
        "model m {  # m",
        "  steps T = 10      # ten",
        "  data x : real[2]  # two",
        "",
        "  objective elbo  # e",
        "}",
    ]


def test_fuzzed_layouts_and_comments() -> None:
    """Random line breaks, blank lines and comments in every example: the properties hold."""
    rng = random.Random(1)
    for path in example_paths():
        text = path.read_text(encoding="utf-8")
        for _ in range(5):
            pieces, count = [], 0
            for line in text.splitlines():
                if "#" in line or '"' in line:  # keep comments and strings whole
                    pieces.append(line + "\n")
                    continue
                for word in line.split(" "):
                    count += 1
                    roll = rng.random()
                    sep = f"  # c{count}\n" if roll < 0.1 else "\n\n" if roll < 0.15 else " "
                    pieces.append(word + sep)
                pieces.append("\n")
            check_properties("".join(pieces))


def test_syntax_error_propagates() -> None:
    with pytest.raises(DtgError):
        format_source("model m { steps T 10 }")


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def cli():
    assert dtg.cli.fmt.register in dtg.cli.COMMANDS
    return dtg.cli.main


def test_cli_fmt_rewrites_and_reports(cli, tmp_path, capsys) -> None:
    messy, tidy = tmp_path / "messy.dtg", tmp_path / "tidy.dtg"
    messy.write_text(MESSY)
    tidy.write_text(MESSY_FORMATTED)
    assert cli(["fmt", "--check", str(messy), str(tidy)]) == 1
    out = capsys.readouterr().out
    assert f"would reformat {messy}" in out and f"unchanged {tidy}" in out
    assert messy.read_text() == MESSY  # --check writes nothing
    assert cli(["fmt", "--diff", str(messy)]) == 1
    assert "+model a {  # after brace" in capsys.readouterr().out
    assert cli(["fmt", str(messy), str(tidy)]) == 0
    out = capsys.readouterr().out
    assert f"formatted {messy}" in out and f"unchanged {tidy}" in out
    assert messy.read_text() == MESSY_FORMATTED
    assert cli(["fmt", "--check", str(messy)]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_cli_fmt_errors(cli, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.dtg"
    bad.write_text("model m { steps T 10 }\n")
    good = tmp_path / "good.dtg"
    good.write_text(MESSY)
    assert cli(["fmt", str(good), str(bad)]) == 1
    assert "bad.dtg:1:" in capsys.readouterr().err
    assert good.read_text() == MESSY  # nothing written when any file fails
    assert cli(["fmt", str(tmp_path / "missing.dtg")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli(["fmt"]) == 2


def test_cli_fmt_stdin(cli, monkeypatch, capsys) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(MESSY))
    assert cli(["fmt", "-"]) == 0
    assert capsys.readouterr().out == MESSY_FORMATTED


# ----------------------------------------------------------------------------- the docs' layout

#: Blocks that show on purpose that the layout is free (``dtg fmt`` would rewrite them),
#: recognised by a line they contain.
LAYOUT_DEMOS = ("# Two statements on one line, one statement over three lines: both are fine.",)


def _snippets() -> list:
    from test_docs import ROOT, code_blocks, doc_pages  # the docs' own block extraction

    pages = [*doc_pages(), ROOT / "README.md"]
    return [b for page in pages for b in code_blocks(page) if b.lang == "dtg"]


SNIPPETS = _snippets()


def test_every_example_is_fmt_clean(cli, capsys) -> None:
    paths = [str(p) for p in example_paths()]
    assert cli(["fmt", "--check", *paths]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out.count("unchanged ") == len(paths) >= 16


@pytest.mark.parametrize("block", SNIPPETS, ids=[f"{b.page.name}:{b.line}" for b in SNIPPETS])
def test_every_docs_snippet_is_fmt_clean(block) -> None:
    """A ```dtg block of the docs or the README is in ``dtg fmt`` layout.

    A ``<!-- fragment -->`` block (statements only, at column 0) is checked as the body of a
    model; a block that does not parse (a syntax-error example) and the :data:`LAYOUT_DEMOS`
    are skipped.
    """
    from test_docs import parse_marker  # the docs' own markers

    if any(line in block.text.splitlines() for line in LAYOUT_DEMOS):
        pytest.skip("shows that the layout is free")
    template, _ = parse_marker(block.marker)
    text = block.text
    if template is not None:
        body = "".join(f"  {line}\n" if line else "\n" for line in text.rstrip("\n").split("\n"))
        text = "model fragment {\n" + body + "}\n"
    try:
        parse(text)
    except DtgError:
        pytest.skip("a syntax-error example")
    formatted = format_source(text)
    assert formatted == text, f"{block.page.name}:{block.line} is not in dtg fmt layout"


def test_snippets_found() -> None:
    pages = {b.page.name for b in SNIPPETS}
    assert len(SNIPPETS) >= 100 and {"README.md", "language.md", "samplers.md"} <= pages

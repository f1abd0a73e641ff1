"""``dtg fmt``: canonical layout, idempotent, AST-preserving, every comment kept."""

from __future__ import annotations

import random
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

  schedule s(t) = 1 - t / T
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


def test_long_train_block_one_option_per_line() -> None:
    options = ", ".join(f"option_number_{i} = {i}" for i in range(6))
    out = check_properties(f"model m {{ train {{ {options} }} }}")
    assert "    option_number_5 = 5," in out.splitlines()


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

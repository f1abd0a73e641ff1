"""The front end: grammar, AST with spans, printer round trip, robustness."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from conftest import ROOT, example_paths

import dtg
from dtg.errors import DtgSyntaxError
from dtg.syntax import ast, parse, to_source
from dtg.syntax.lalr import build_parser, grammar_digest, grammar_text, lark_parser
from dtg.syntax.parser import MAX_DEPTH

N, B, U = ast.Name, ast.Binary, ast.Unary


def num(v: float) -> ast.Number:
    return ast.Number(float(v))


def expr(text: str) -> ast.Expr:
    module = parse(f"model m {{ schedule s(t) = {text} }}")
    return module.models[0].statements[0].body


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.name)
def test_every_example_parses_and_round_trips(path: Path) -> None:
    module = parse(path.read_text(), str(path))
    assert module.models, "an example holds at least one model"
    printed = to_source(module)
    again = parse(printed)
    assert again == module
    # Printing is canonical: a second round prints the same text.
    assert to_source(again) == printed


def test_precedence_power_over_unary_over_product_over_sum() -> None:
    # -a^2 is -(a^2); a - b * c^d is a - (b * (c^d)); 2^3^2 is 2^(3^2).
    assert expr("-a^2") == U("-", B("^", N("a"), num(2)))
    assert expr("a - b * c^d") == B("-", N("a"), B("*", N("b"), B("^", N("c"), N("d"))))
    assert expr("2^3^2") == B("^", num(2), B("^", num(3), num(2)))
    assert expr("a - b - c") == B("-", B("-", N("a"), N("b")), N("c"))
    assert expr("a / b * c") == B("*", B("/", N("a"), N("b")), N("c"))
    assert expr("2^-t") == B("^", num(2), U("-", N("t")))
    assert expr("(a + b) * c") == B("*", B("+", N("a"), N("b")), N("c"))


def test_numbers_calls_subscripts_slices_vectors() -> None:
    assert expr("1e-3").value == pytest.approx(1e-3)
    assert expr(".5E+2").value == 50.0
    call = expr("Normal(x[t-1] * 2, scale = [1, 2.5])")
    assert isinstance(call, ast.Call) and call.func == "Normal"
    assert call.args == (B("*", ast.Subscript(N("x"), (B("-", N("t"), num(1)),)), num(2)),)
    assert call.kwargs == (ast.Keyword("scale", ast.Vector((num(1), num(2.5)))),)
    sliced = expr("back(x, t)[0:2]")
    assert sliced == ast.Subscript(ast.Call("back", (N("x"), N("t"))), (ast.Slice(num(0), num(2)),))
    assert expr("v[:3, 1]") == ast.Subscript(N("v"), (ast.Slice(None, num(3)), num(1)))


def test_statements_and_spans() -> None:
    text = (
        "# comment\n"
        "model child extends parent {\n"
        "  data x : token(17)[64] ~ digits()  # trailing comment\n"
        "  net f : (token(17)[64], time) -> real[64, 17] = transformer(width = 8)\n"
        "  generate x[T] = masked\n"
        "  train { steps = 10\n batch = 4, }\n"
        "}\n"
    )
    model = parse(text, "f.dtg").models[0]
    assert (model.name, model.parent) == ("child", "parent")
    data, net, generate, train = model.statements
    assert data.space == ast.TokenSpace(17, (64,))
    assert net.inputs == (ast.TokenSpace(17, (64,)), ast.TimeType())
    assert net.output == ast.RealSpace((64, 17))
    assert generate.kernel == ast.Kernel(False, N("masked"))
    assert [o.name for o in train.options] == ["steps", "batch"]
    span = data.span
    assert (span.file, span.line, span.column) == ("f.dtg", 3, 3)
    assert (
        text.split("\n")[2][span.column - 1 : span.end_column - 1]
        == "data x : token(17)[64] ~ digits()"
    )
    assert model.name_span.column == 7


def test_grammar_ships_in_the_package_and_matches_the_repo_copy() -> None:
    repo_copy = (ROOT / "grammar" / "dtg.lark").read_text()
    assert grammar_text() == repo_copy
    assert "model" in grammar_text()


def test_deep_nesting_is_refused_quickly() -> None:
    # Redundant parentheses leave no trace in the tree: 10,000 of them are harmless. The bounds
    # are CPU seconds (~0.2-0.4 s here): wall time on a loaded CI machine says nothing.
    deep = "model m { schedule s(t) = " + "(" * 10_000 + "t" + ")" * 10_000 + " }"
    start = time.process_time()
    assert parse(deep).models[0].statements[0].body == N("t")
    assert time.process_time() - start < 2.0
    for nested in ("f(" * 10_000 + "t" + ")" * 10_000, "[" * 10_000 + "t" + "]" * 10_000):
        start = time.process_time()
        with pytest.raises(DtgSyntaxError, match="nested too deeply"):
            parse("model m { schedule s(t) = " + nested + " }")
        assert time.process_time() - start < 2.0
    # Moderate nesting is fine.
    depth = MAX_DEPTH // 4
    parse("model m { schedule s(t) = " + "(" * depth + "t" + ")" * depth + " }")
    with pytest.raises(DtgSyntaxError, match="nested too deeply"):
        parse("model m { schedule s(t) = " + "-" * 5000 + "t }")


def test_a_megabyte_of_random_text_fails_fast_with_a_location() -> None:
    rng = random.Random(0)
    alphabet = "abcdefxyz{}()[]=~+-*/^,:;# \n0123456789.\"'"
    text = "".join(rng.choice(alphabet) for _ in range(1_000_000))
    start = time.perf_counter()
    with pytest.raises(dtg.DtgError) as info:
        dtg.loads(text, file="random.dtg")
    assert time.perf_counter() - start < 2.0
    error = info.value
    assert error.span is not None and error.span.line >= 1
    assert error.format().startswith(f"random.dtg:{error.span.line}:{error.span.column}: error:")


def test_invalid_utf8_is_located() -> None:
    with pytest.raises(DtgSyntaxError) as info:
        parse(b"model m {\n  steps T = 1\xff0\n}\n", "u.dtg")
    assert (info.value.span.line, info.value.span.column) == (2, 14)
    assert "UTF-8" in info.value.message


def test_precomputed_tables_match_the_grammar() -> None:
    from dtg.syntax import tables

    assert tables.GRAMMAR_SHA256 == grammar_digest(), (
        "dtg.lark changed: run python -m dtg.syntax.lalr to rewrite dtg/syntax/tables.py"
    )


def test_parser_from_tables_parses_like_the_parser_from_the_grammar() -> None:
    """Same trees and the same positions (what spans are made of) for every example and every
    bad file that gets past the lexer; the same error position for the others."""
    from lark.exceptions import UnexpectedInput

    loaded, built = lark_parser(), build_parser()
    assert loaded is not built and type(loaded.parser).__name__ == type(built.parser).__name__
    root = Path(__file__).resolve().parent.parent
    paths = sorted((root / "examples").glob("*.dtg")) + sorted((root / "tests/bad").glob("*.dtg"))
    compared = 0
    for path in paths:
        text = path.read_bytes().decode("utf-8", errors="replace")
        outcomes = []
        for parser in (loaded, built):
            try:
                tree = parser.parse(text)
                spans = [vars(t.meta).copy() for t in tree.iter_subtrees()]
                outcomes.append((tree, spans))
            except UnexpectedInput as error:
                outcomes.append((type(error).__name__, error.line, error.column))
        assert outcomes[0] == outcomes[1], path.name
        compared += 1
    assert compared >= 30

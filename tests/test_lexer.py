"""The Pygments lexer and the TextMate grammar: every example lexes cleanly, words get the
right token types and scopes, and the two word lists agree."""

from __future__ import annotations

import json
import re

import pytest
from conftest import ROOT, example_paths

pygments = pytest.importorskip("pygments")
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String  # noqa: E402

from dtg import lexer  # noqa: E402
from dtg.lexer import DtgLexer  # noqa: E402

GRAMMAR = ROOT / "editors" / "dtg.tmLanguage.json"


def tokens(text: str) -> list[tuple[object, str]]:
    return [(kind, value) for kind, value in DtgLexer().get_tokens(text) if value.strip()]


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.name)
def test_examples_lex_without_errors(path) -> None:
    text = path.read_text(encoding="utf-8")
    pieces = list(DtgLexer().get_tokens(text))
    assert not [value for kind, value in pieces if kind in Error]
    assert "".join(value for _, value in pieces) == text  # examples end with a newline


def test_token_types() -> None:
    found = dict(
        (value, kind)
        for kind, value in tokens(
            "model m extends p {  # note\n  destroy x[t] ~ Normal(x[t-1], 1.5e-2)\n"
            '  data y : token(3)[1] ~ file("a#b.npy")\n  objective masking(time = continuous)\n'
            "  net f : (real[2], time) -> real[2] = mlp()\n  train { steps = 10 } }"
        )
    )
    assert found["model"] in Keyword and found["destroy"] in Keyword
    assert found["objective"] in Keyword and found["train"] in Keyword
    assert found["m"] is Name.Class and found["p"] is Name.Class
    assert found["# note"] in Comment
    assert found['"a#b.npy"'] in String
    assert found["1.5e-2"] in Number.Float and found["1"] in Number.Integer
    assert found["Normal"] is Name.Builtin and found["masking"] is Name.Builtin
    assert found["real"] is Keyword.Type
    assert tokens("masking(time = continuous)")[2] == (Name.Attribute, "time")
    assert found["steps"] is Name.Attribute
    assert found["->"] in Operator and found["~"] in Operator


def test_word_categories() -> None:
    for word in lexer.CONSTANTS:
        assert tokens(word) == [(Name.Constant, word)]
    for word in lexer.TYPES:
        assert tokens(word) == [(Keyword.Type, word)]
    for word in lexer.CHANNELS + lexer.FUNCTIONS + lexer.SOURCES + lexer.OBJECTIVES:
        assert tokens(word) == [(Name.Builtin, word)]
    assert tokens("exp2") == [(Name, "exp2")] and tokens("model_x") == [(Name, "model_x")]


def test_load_lexer_from_file() -> None:
    from pygments.lexers import load_lexer_from_file

    loaded = load_lexer_from_file(str(ROOT / "dtg" / "lexer.py"), "DtgLexer")
    assert loaded.name == "dtg"


def test_lexer_by_name_after_entry_point() -> None:
    from importlib.metadata import entry_points

    if not any(e.name == "dtg" for e in entry_points(group="pygments.lexers")):
        pytest.skip("the pygments.lexers entry point is not installed yet")
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename

    assert isinstance(get_lexer_by_name("dtg"), DtgLexer)
    assert isinstance(get_lexer_for_filename("x.dtg"), DtgLexer)


# ----------------------------------------------------------------------------- TextMate


def _rules(node: object):
    if isinstance(node, dict):
        if any(key in node for key in ("match", "begin")):
            yield node
        for value in node.values():
            yield from _rules(value)
    elif isinstance(node, list):
        for value in node:
            yield from _rules(value)


def _compiled() -> list[tuple[re.Pattern, dict]]:
    grammar = json.loads(GRAMMAR.read_text(encoding="utf-8"))
    return [(re.compile(rule["match"]), rule) for rule in _rules(grammar) if "match" in rule]


def _scope_of(word: str) -> str | None:
    """The scope of the first rule (in the grammar's order) that matches all of ``word``."""
    for pattern, rule in _compiled():
        if pattern.fullmatch(word):
            return rule.get("name")
    return None


def test_textmate_grammar_is_valid() -> None:
    grammar = json.loads(GRAMMAR.read_text(encoding="utf-8"))
    assert grammar["scopeName"] == "source.dtg" and "dtg" in grammar["fileTypes"]
    for include in _rules_includes(grammar):
        assert include[1:] in grammar["repository"], include
    assert len(_compiled()) >= 10  # every plain regex compiles with Python's re


def _rules_includes(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["include"]] if "include" in node else []
        return found + [i for value in node.values() for i in _rules_includes(value)]
    if isinstance(node, list):
        return [i for value in node for i in _rules_includes(value)]
    return []


def test_textmate_scopes_match_the_lexer_words() -> None:
    expect = {
        "keyword.control.dtg": lexer.KEYWORDS[2:],
        "storage.type.space.dtg": lexer.TYPES,
        "constant.language.dtg": lexer.CONSTANTS,
        "support.class.channel.dtg": lexer.CHANNELS,
        "support.function.builtin.dtg": lexer.FUNCTIONS + lexer.ARCHITECTURES,
        "support.function.source.dtg": lexer.SOURCES + lexer.TARGETS,
        "support.constant.objective.dtg": lexer.OBJECTIVES,
        "constant.numeric.dtg": ("2", "0.05", "1e-3", ".5", "2.5E+3"),
        "comment.line.number-sign.dtg": ("# a comment",),
        "string.quoted.double.dtg": ('"data.npy"', '"a \\" b"'),
        "keyword.operator.arrow.dtg": ("->",),
        "keyword.operator.dtg": tuple("~=+-*/^:"),
    }
    for scope, words in expect.items():
        for word in words:
            assert _scope_of(word) == scope, word
    model = next(p for p, rule in _compiled() if "model|extends" in rule["match"])
    assert model.match("model ddpm").group(2) == "ddpm"

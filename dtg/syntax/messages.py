"""Lark's parse errors as dtg's messages: what was expected in words, the unclosed brace,
the unknown statement with a did-you-mean, and the common mistakes recognised by the parser
state where a few broken examples fail."""

from __future__ import annotations

import functools
import re

from lark import Token
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

from ..errors import DtgSyntaxError, Span, did_you_mean
from .lalr import lark_parser

__all__ = ["translate", "describe_expected", "STATEMENT_KEYWORDS"]

STATEMENT_KEYWORDS = (
    "data",
    "space",
    "steps",
    "schedule",
    "net",
    "destroy",
    "generate",
    "reward",
    "objective",
    "train",
)

_TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": 'a string ("…")',
    "$END": "the end of the file",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    try:
        terminal = lark_parser().get_terminal(name)
    except KeyError:
        return name.lower()
    pattern = terminal.pattern
    if pattern.type == "str":
        return f"'{pattern.value}'"
    return name.lower()


def describe_expected(names: set[str] | frozenset[str] | list[str]) -> str:
    """The expected terminals in words, sorted with punctuation first: ``'=', '~' or a name``."""
    words = sorted({_describe_terminal(n) for n in names}, key=lambda w: (not w.startswith("'"), w))
    if not words:
        return "nothing"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _token_text(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    text = str(token)
    return f"'{text[:40]}…'" if len(text) > 40 else f"'{text}'"


def _token_span(token: Token, text: str, file: str) -> Span:
    if token.type == "$END" or token.line is None:
        return _end_span(text, file)
    return Span(
        file,
        token.line,
        token.column,
        token.end_line or token.line,
        token.end_column or token.column + 1,
    )


def _end_span(text: str, file: str) -> Span:
    stripped = text.rstrip()
    line = stripped.count("\n") + 1
    column = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return Span(file, line, column, line, column + 1)


_CLOSER = {"{": "}", "(": ")", "[": "]"}
_CLOSER_TERMINAL = {"{": "RBRACE", "(": "RPAR", "[": "RSQB"}
_OPENED = {"{": "the block opened here", "(": "the '(' opened here", "[": "the '[' opened here"}


#: What the bracket scan looks at: comments and strings (skipped whole) and brackets.
_BRACKET_SCAN = re.compile(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"?|[{}()\[\]]')


def _open_brackets(text: str, end: int) -> list[int]:
    """Offsets of the brackets ``{ ( [`` still open at offset ``end`` (comments and strings
    skipped), innermost last. The text before a parse error is a valid prefix, so its brackets
    nest properly."""
    opened: list[int] = []
    for found in _BRACKET_SCAN.finditer(text, 0, end):
        char = found.group()
        if char in _CLOSER:
            opened.append(found.start())
        elif char in "})]" and opened:
            opened.pop()
    return opened


def _unclosed(
    text: str, file: str, end: int, expected: set[str] | None = None
) -> tuple[str, Span] | None:
    """The innermost bracket open at offset ``end`` and its span, when it is worth naming: at
    the end of the file always; at a token, when that bracket's closer is what the parser
    expected."""
    opened = _open_brackets(text, end)
    if not opened:
        return None
    offset = opened[-1]
    char = text[offset]
    if expected is not None and _CLOSER_TERMINAL[char] not in expected:
        return None
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return char, Span(file, line, column, line, column + 1)


def _unclosed_error(where: str, char: str, bracket: Span, span: Span, text: str) -> DtgSyntaxError:
    """``WHERE: a '(' is never closed``, with a note at the bracket (as for ``{``)."""
    what = "the block" if char == "{" else f"the '{char}'"
    return DtgSyntaxError(
        f"{where}: a '{char}' is never closed",
        span,
        text,
        hints=[f"add '{_CLOSER[char]}' to close {what} opened at line {bracket.line}"],
        related=[(bracket, _OPENED[char])],
    )


#: A number whose exponent has no digits (``1e``, ``2.5E+``): the lexer reads ``1`` and a name.
_BAD_EXPONENT = re.compile(r"(?<![\w.])(?:\d+\.?\d*|\.\d+)[eE][+-]?(?![\w.])")


def _malformed_number(token: Token, text: str, file: str) -> DtgSyntaxError | None:
    """``1e``, ``1e+``, ``2.5e``: a number followed, with no space, by a bare ``e``."""
    if token.type != "NAME" or str(token) not in ("e", "E") or token.start_pos is None:
        return None
    line_start = text.rfind("\n", 0, token.start_pos) + 1
    for found in _BAD_EXPONENT.finditer(text, line_start, token.end_pos + 1):
        if found.start() < token.start_pos < found.end():
            line = token.line
            column = found.start() - line_start + 1
            return DtgSyntaxError(
                f"malformed number '{found.group()}': the exponent has no digits",
                Span(file, line, column, line, column + len(found.group())),
                text,
                hints=["write the exponent's digits, e.g. 1e-3 or 2.5e+4, or leave out the 'e'"],
            )
    return None


def translate(error: UnexpectedInput, text: str, file: str) -> DtgSyntaxError:
    """Turn a Lark error into a located :class:`DtgSyntaxError` with words, not terminal names."""
    if isinstance(error, UnexpectedCharacters):
        span = Span(file, error.line, error.column, error.line, error.column + 1)
        char = error.char
        message = f"unexpected character '{char}'"
        hints = []
        if char == "'":
            hints.append('strings use double quotes: "data.npy"')
        elif char in "*" and text[error.pos_in_stream : error.pos_in_stream + 2] == "**":
            hints.append("powers are written with '^': x^2")
        elif char == "=" or char == "!":
            hints.append("dtg has no comparison operators")
        elif error.allowed:
            hints.append(f"expected {describe_expected(error.allowed)}")
        return DtgSyntaxError(message, span, text, hints=hints)

    if isinstance(error, UnexpectedEOF) or (
        isinstance(error, UnexpectedToken) and error.token.type == "$END"
    ):
        expected = set(getattr(error, "expected", ()) or ())
        bracket = _unclosed(text, file, len(text))
        if not text.strip():
            return DtgSyntaxError(
                "the file is empty: expected at least one model",
                Span(file, 1, 1, 1, 1),
                text,
                hints=["a model starts with: model NAME { … }"],
            )
        if bracket is not None:
            char, where = bracket
            return _unclosed_error(
                "unexpected end of file", char, where, _end_span(text, file), text
            )
        return DtgSyntaxError(
            "unexpected end of file",
            _end_span(text, file),
            text,
            hints=[f"expected {describe_expected(expected)}"] if expected else [],
        )

    assert isinstance(error, UnexpectedToken)
    token = error.token
    expected = set(error.accepts or error.expected)
    span = _token_span(token, text, file)
    malformed = _malformed_number(token, text, file)
    if malformed is not None:
        return malformed
    # A closing bracket of another kind, or the next statement, where ')' or ']' was expected.
    ends_group = str(token) in (")", "]", "}", "model", *STATEMENT_KEYWORDS)
    if token.start_pos is not None and ends_group:
        bracket = _unclosed(text, file, token.start_pos, expected)
        if bracket is not None and bracket[0] != "{":
            char, where = bracket
            return _unclosed_error(f"unexpected {_token_text(token)}", char, where, span, text)
    specific = _specific_message(error, token, expected, text, file)
    if specific is not None:
        message, hints = specific
        return DtgSyntaxError(message, span, text, hints=hints)
    return DtgSyntaxError(
        f"unexpected {_token_text(token)}",
        span,
        text,
        hints=[f"expected {describe_expected(expected)}"],
    )


def _specific_message(
    error: UnexpectedToken, token: Token, expected: set[str], text: str, file: str
) -> tuple[str, list[str]] | None:
    """Messages for common mistakes, keyed on the parser state (Lark's ``match_examples``)."""
    value = str(token)
    if value == "*" and token.start_pos and text[token.start_pos - 1] == "*":
        return ("unexpected '**'", ["powers are written with '^': x^2"])
    top_level = expected <= {"MODEL", "$END"}
    if value == "model" and not top_level:
        return (
            "a model cannot be defined inside another model",
            ["close the first model with '}' before starting the next one"],
        )
    if top_level and value in STATEMENT_KEYWORDS:
        return (
            f"'{value}' statement outside a model",
            ["statements go inside a model block: model NAME { … }"],
        )
    if top_level:
        return (
            f"unexpected {_token_text(token)} at the top level",
            ["expected 'model' (a model block)"],
        )
    in_model = "RBRACE" in expected and any(k.upper() in expected for k in STATEMENT_KEYWORDS)
    first_on_line = (
        token.start_pos is not None
        and not text[text.rfind("\n", 0, token.start_pos) + 1 : token.start_pos].strip()
    )
    if in_model and token.type == "NAME" and first_on_line:
        return _unknown_statement(token)
    label = _example_states().get(_state_key(error))
    if label is not None:
        message, hint = _LABELS[label]
        return message.format(token=_token_text(token)), [hint.format(token=value)]
    if in_model and token.type == "NAME":
        return _unknown_statement(token)
    return None


def _unknown_statement(token: Token) -> tuple[str, list[str]]:
    hints = ["a statement starts with one of: " + ", ".join(STATEMENT_KEYWORDS)]
    suggestion = did_you_mean(str(token), STATEMENT_KEYWORDS)
    if suggestion:
        hints.insert(0, suggestion)
    return f"unknown statement {_token_text(token)}", hints


def _state_key(error: UnexpectedToken) -> tuple[int, frozenset[str]] | None:
    if error.state is None:
        return None
    return error.state.position, frozenset(error.accepts or error.expected)


@functools.lru_cache(maxsize=1)
def _example_states() -> dict[tuple[int, frozenset[str]], str]:
    """Map the LALR state (and accepted terminals) where each example fails to its label.

    Lark's own ``match_examples`` also compares the depth of the parser's stack, which depends
    on how many statements come before the mistake; the state number alone is what we want.
    """
    states: dict[tuple[int, frozenset[str]], str] = {}
    for label, examples in _EXAMPLES.items():
        for example in examples:
            try:
                lark_parser().parse(example)
            except UnexpectedToken as error:
                key = _state_key(error)
                if key is not None:
                    states.setdefault(key, label)
    return states


# A few broken programs per common mistake; the parser state where each fails is the key.
_EXAMPLES: dict[str, list[str]] = {
    "steps_missing_equals": ["model m { steps T 10 }", "model m { steps T ~ 10 }"],
    "schedule_tilde": ["model m { schedule s(t) ~ t }", "model m { reward r(x) ~ x }"],
    "data_equals": ["model m { data x : real[2] = moons() }"],
    "schedule_missing_equals": ["model m { schedule s(t) t }", "model m { reward r(x) x }"],
    "kernel_missing_relation": [
        "model m { destroy x[t] Normal(0, 1) }",
        "model m { generate x[T] 0 }",
    ],
    "missing_operator": ["model m { schedule s(t) = 2 t }", "model m { schedule s(t) = (t) (t) }"],
    "option_missing_equals": ["model m { train { steps 10 } }"],
    "net_missing_arrow": [
        "model m { net f : (real[2]) real[2] = mlp() }",
        "model m { net f : (real[2], time) real[2] = mlp() }",
        "model m { net f : (time) real[2] = mlp() }",
        "model m { net f : (token(3)[2]) real[2] = mlp() }",
    ],
    "steps_missing_name": ["model m { steps = 10 }"],
    "space_keyword": ["model m { data x : float[2] }", "model m { space x : int[2] }"],
}

_LABELS: dict[str, tuple[str, str]] = {
    "steps_missing_equals": (
        "expected '=' after the steps name, found {token}",
        "write: steps T = 100",
    ),
    "schedule_tilde": (
        "a schedule or reward is defined with '=', not '~'",
        "write: schedule NAME(t) = EXPR; '~' is for random kernels (destroy/generate)",
    ),
    "data_equals": (
        "a data source is given with '~', not '='",
        "write: data x : real[2] ~ moons(noise = 0.05)",
    ),
    "schedule_missing_equals": (
        "expected '=' before the definition, found {token}",
        "write: schedule NAME(t) = EXPR",
    ),
    "kernel_missing_relation": (
        "expected '~' or '=' after the level, found {token}",
        "write '~ Dist(…)' for a random kernel or '= EXPR' for a deterministic one",
    ),
    "missing_operator": (
        "unexpected {token}: two expressions side by side",
        "is an operator missing? multiplication is written with '*': 2 * t",
    ),
    "steps_missing_name": (
        "expected a name for the number of steps, found {token}",
        "write: steps T = 100",
    ),
    "option_missing_equals": (
        "expected '=' after the option name, found {token}",
        "write: train {{ steps = 2000 }}",
    ),
    "net_missing_arrow": (
        "expected '->' between the net's inputs and its output",
        "write: net f : (real[2], time) -> real[2] = mlp()",
    ),
    "space_keyword": (
        "unknown space {token}",
        "spaces are real, real[d…] or token(V)[L…]",
    ),
}

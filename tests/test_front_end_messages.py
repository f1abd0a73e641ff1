"""The front end's messages and limits (issue 18): each test is a reproducer of a message that
was wrong, confusing or a traceback before, checked through :func:`dtg.loads` on the formatted
text, the location and where the caret points.

The caret checks measure display columns here, independently of ``dtg.errors``: East Asian wide
characters take two columns, combining marks none, everything else one.
"""

from __future__ import annotations

import re
import time
import unicodedata

import pytest
from conftest import EXAMPLES

import dtg
from dtg.errors import DtgError
from dtg.syntax.parser import MAX_DEPTH, MAX_LENGTH

GAUSSIAN = """model m {
  data x : real[2] ~ moons()
  steps T = 10
  schedule b(t) = 0.02
  net eps : (real[2], time) -> real[2] = mlp(hidden = [8])
  destroy x[t] ~ Normal(sqrt(1 - b(t)) * x[t-1], sqrt(b(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
}
"""


def error_of(source: str | bytes, file: str = "t.dtg") -> DtgError:
    with pytest.raises(DtgError) as info:
        dtg.loads(source, file=file)
    return info.value


def _width(text: str) -> int:
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def underlined(formatted: str, line: int) -> str:
    """The text shown above the carets of the excerpt line ``line`` (the first excerpt that
    shows it with carets), read by display columns."""
    rows = formatted.split("\n")
    for number, row in enumerate(rows[:-1]):
        shown = re.match(rf"^ *{line} \| (.*)$", row)
        carets = re.match(r"^ *\| ( *)(\^+)$", rows[number + 1])
        if shown and carets:
            text, start, count = shown.group(1), len(carets.group(1)), len(carets.group(2))
            out, column = [], 0
            for char in text:
                if start <= column < start + count:
                    out.append(char)
                column += _width(char)
            return "".join(out)
    raise AssertionError(f"no caret under line {line} in:\n{formatted}")


# ----------------------------------------------------------------------------- 1. unclosed (


@pytest.mark.parametrize(
    ("text", "token", "where"),
    [
        ("model m {\n  schedule a(t) = (1 + t\n}\n", "'}'", (3, 1)),
        ("model m {\n  schedule a(t) = f(1, t\n  steps T = 10\n}\n", "'steps'", (3, 3)),
        ("model m {\n  schedule a(t) = (1 + t\n", "end of file", (2, 25)),
    ],
)
def test_an_unclosed_paren_is_named_with_a_note_where_it_opens(text, token, where) -> None:
    error = error_of(text)
    prefix = "unexpected end of file" if token == "end of file" else f"unexpected {token}"
    assert error.message == f"{prefix}: a '(' is never closed"
    assert (error.span.line, error.span.column) == where
    (note_span, note), *_ = error.related
    opened = text.split("\n")[1].index("(", 14) + 1  # the group's '(' (not the schedule's)
    assert (note_span.line, note_span.column, note) == (2, opened, "the '(' opened here")
    assert error.hints == ["add ')' to close the '(' opened at line 2"]
    formatted = error.format()
    assert f"t.dtg:2:{opened}: note: the '(' opened here" in formatted
    assert underlined(formatted.split("note:")[1], 2) == "("


def test_an_unclosed_bracket_is_named_too() -> None:
    error = error_of("model m {\n  schedule a(t) = [1, t\n}\n")
    assert error.message == "unexpected '}': a '[' is never closed"
    assert error.related[0][0].column == 19


def test_the_unclosed_block_message_is_unchanged() -> None:
    error = error_of("model m {\n  steps T = 10\n")
    assert error.message == "unexpected end of file: a '{' is never closed"
    assert error.related[0][1] == "the block opened here"
    assert error.hints == ["add '}' to close the block opened at line 1"]


# ----------------------------------------------------------------------------- 2. 1e


@pytest.mark.parametrize("number", ["1e", "1e+", "2.5e", "1E-", ".5e", "3.e"])
@pytest.mark.parametrize("after", ["", " * t", ")"])
def test_a_number_without_exponent_digits_is_a_malformed_number(number, after) -> None:
    line = f"  schedule a(t) = ({number}{after}"
    error = error_of(f"model m {{\n{line}\n}}\n")
    assert error.message == f"malformed number '{number}': the exponent has no digits"
    column = line.index(number) + 1
    assert (error.span.line, error.span.column, error.span.end_column) == (
        2,
        column,
        column + len(number),
    )
    assert underlined(error.format(), 2) == number


def test_names_and_good_numbers_near_an_e_are_not_malformed_numbers() -> None:
    assert dtg.loads(GAUSSIAN.replace("0.02", "2e-2 + 0 * e + 1E+0 - 1"))
    error = error_of(GAUSSIAN.replace("0.02", "x1e"))
    assert "malformed" not in error.message


# ----------------------------------------------------------------------------- 3. flat sums


@pytest.mark.parametrize("op", ["+", "*", "-", "/"])
@pytest.mark.parametrize("terms", [100, 300])
def test_a_flat_chain_is_not_nested_too_deeply_and_checks_fast(op, terms) -> None:
    chain = f" {op} ".join(["(t / T)"] * terms)
    schedule = f"0.01 + 0.001 * ({chain}) / {terms}" if op in "+-" else f"0.01 + 0 * ({chain})"
    source = GAUSSIAN.replace("schedule b(t) = 0.02", f"schedule b(t) = {schedule}")
    start = time.process_time()
    program = dtg.loads(source)
    assert time.process_time() - start < 1.0
    assert program.model().schedules["b"].shape == (11,)


def test_true_nesting_is_still_refused_and_long_chains_are_a_different_message() -> None:
    # (((t + 1) + 1) + 1) is the flat chain t + 1 + 1 + 1; t + (t + (t + …)) nests.
    flat = "(" * (MAX_DEPTH + 5) + "t" + " + 1)" * (MAX_DEPTH + 5)
    assert "nested" not in error_of(f"model m {{\n  schedule a(t) = {flat}\n}}\n").message
    deep = "t + (" * (MAX_DEPTH + 5) + "t" + ")" * (MAX_DEPTH + 5)
    error = error_of(f"model m {{\n  schedule a(t) = {deep}\n}}\n")
    assert error.message == f"expression nested too deeply (more than {MAX_DEPTH} levels)"
    long = " + ".join(["t"] * (MAX_LENGTH + 10))
    error = error_of(f"model m {{\n  schedule a(t) = {long}\n}}\n")
    assert error.message.startswith(f"expression too long: more than {MAX_LENGTH} operations")
    assert "nested" not in error.message


def test_schedules_nested_through_each_other_are_refused_not_a_recursion_error() -> None:
    """20 schedules each nesting 30 calls of the previous one: a RecursionError (exit 3)
    while sympy inlined them, before."""
    lines = ["  schedule s0(t) = 0.01"] + [
        f"  schedule s{k}(t) = " + "sqrt(" * 30 + f"s{k - 1}(t)" + ")" * 30 for k in range(1, 20)
    ]
    source = GAUSSIAN.replace("  schedule b(t) = 0.02", "\n".join(lines)).replace("b(t)", "s19(t)")
    error = error_of(source)
    assert "nested too deeply once the schedules it calls are written out" in error.message
    assert error.span.line == 6  # s2: s0 and s1 together are within the limit


# ----------------------------------------------------------------------------- 4. long lines


@pytest.mark.parametrize("column", [250, 1000])
def test_the_caret_points_at_the_mistake_far_along_a_long_line(column) -> None:
    padding = " + ".join(["t"] * ((column - 20) // 4))
    line = f"  schedule a(t) = {padding} + sqr(t)"
    error = error_of(GAUSSIAN.replace("  schedule b(t) = 0.02", line))
    assert error.message == "unknown function 'sqr'"
    assert error.span.column == line.index("sqr") + 1 >= column - 10
    formatted = error.format()
    assert underlined(formatted, 4) == "sqr"
    assert all(len(row) < 220 for row in formatted.split("\n"))


def test_the_caret_counts_wide_characters_and_tabs() -> None:
    tabs = "  schedule a(t) =\t\t(t + 1) *\tzz(t)"
    error = error_of(GAUSSIAN.replace("  schedule b(t) = 0.02", f"  schedule b(t) = 0.02\n{tabs}"))
    assert (error.message, error.span.column) == ("unknown function 'zz'", tabs.index("zz") + 1)
    assert underlined(error.format(), 5) == "zz"
    # 120 wide characters (240 columns) before the mistake: the excerpt is a window.
    wide = '  data x : real[2] ~ file("' + "数据" * 60 + '.npy")  schedule a(t) = zz(t)'
    error = error_of(GAUSSIAN.replace("  data x : real[2] ~ moons()", wide))
    assert error.message == "unknown function 'zz'"
    formatted = error.format()
    assert underlined(formatted, 2) == "zz"
    assert all(_width(row) < 220 for row in formatted.split("\n"))


# ----------------------------------------------------------------------------- 5. bad UTF-8


def test_bad_utf8_has_an_excerpt_and_a_caret_at_the_bad_byte() -> None:
    data = "model m {\n  # données\n  steps T = 1".encode() + b"\xff0\n}\n"
    error = error_of(data)
    assert error.message.startswith("the file is not valid UTF-8 text (byte 0xff at offset")
    assert (error.span.line, error.span.column) == (3, 14)  # characters, not bytes
    formatted = error.format()
    assert "3 |   steps T = 1\ufffd0" in formatted
    assert underlined(formatted, 3) == "\ufffd"
    # A bad byte after multi-byte characters on its own line: the column counts characters.
    error = error_of("model m { # é€".encode() + b"\xc3(\n}\n")
    assert (error.span.line, error.span.column) == (1, 15)
    assert underlined(error.format(), 1) == "\ufffd"


def test_control_characters_are_shown_as_symbols_not_sent_to_the_terminal() -> None:
    error = error_of("model m {\n  steps T = 10\x1b[31m\n}\n")
    formatted = error.format()
    assert "\x1b" not in formatted and "\u241b" in formatted
    assert underlined(formatted, 2) == "\u241b"


# ----------------------------------------------------------------------------- 6. sympy text

#: What sympy's printed form, not the user's text, looks like.
INTERNAL = re.compile(r"net_\w+\(|x_\{t|Piecewise|Symbol|Function|AppliedUndef|zoo|\*\*|\bI\b")


def no_internal_text(error: DtgError) -> str:
    text = "\n".join([error.message, *error.hints, *(note for _, note in error.related)])
    assert not INTERNAL.search(text), text
    return error.message


def test_a_destroy_std_with_a_net_is_quoted_as_written() -> None:
    source = GAUSSIAN.replace(
        "destroy x[t] ~ Normal(sqrt(1 - b(t)) * x[t-1], sqrt(b(t)))",
        "destroy x[t] ~ Normal(eps(x[t-1], t), sqrt(b(t)) * eps(x[t-1], t))",
    ).replace("generate x[T] ~ Normal(0, 1)", "generate x[T] = 0")
    source = source.replace("Guess(x[t], eps)", "Normal(eps(x[t], t), 1)").replace(
        "denoising", "elbo"
    )
    message = no_internal_text(error_of(source))
    assert "sqrt(b(t)) * eps(x[t-1], t) is not 0 at t = T" in message


@pytest.mark.parametrize(
    ("std", "says"),
    [
        ("-sqrt(2)", "-sqrt(2) is not (it is -1.41421)"),
        ("sqrt(-1)", "sqrt(-1) is not (it has no real value)"),
        ("1/0", "1 / 0 is not (it has no real value)"),
        ("0", "0 is not (it is 0)"),
    ],
)
def test_the_start_std_is_quoted_as_written(std, says) -> None:
    """``sqrt(-1)`` and ``1/0`` were a TypeError (exit 3) before; ``-sqrt(2)`` printed sympy."""
    error = error_of(
        GAUSSIAN.replace("generate x[T] ~ Normal(0, 1)", f"generate x[T] ~ Normal(0, {std})")
    )
    assert no_internal_text(error) == f"the start's std must be a positive number, but {says}"


def test_a_level_and_an_option_are_quoted_as_written() -> None:
    error = error_of(GAUSSIAN.replace("* x[t-1]", "* x[1+t]"))
    assert no_internal_text(error) == "x[1+t] cannot be read here"
    error = error_of(GAUSSIAN.replace("destroy x[t]", "destroy x[t - 2^(10^10) + 2^(10^10)]"))
    assert no_internal_text(error).endswith("not x[t - 2^10^10 + 2^10^10]")
    error = error_of(GAUSSIAN.replace("objective denoising", 'objective denoising(weight = "snr")'))
    assert no_internal_text(error).endswith('got "snr"')


_MUTATIONS = [
    ("x[t-1]", "x[t+1]"),
    ("x[t-1]", "x[2*t]"),
    ("x[t]", "x[t+2]"),
    ("~ Normal(0, 1)", "~ Normal(0, -1)"),
    ("~ Normal(0, 1)", "~ Normal(1/0, 1)"),
    ("~ Normal(0, 1)", "= 1"),
    ("sqrt(", "log(-1 - "),
    ("(t)", "(t, t)"),
    ("(t)", "(t[0])"),
    ("= 0", "= x[0]"),
]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.dtg")), ids=lambda p: p.stem)
def test_no_sympy_text_in_the_messages_of_mutated_examples(path) -> None:
    text = path.read_text()
    for old, new in _MUTATIONS:
        if old not in text:
            continue
        for count in (1, 2):
            mutated = text.replace(old, new, count)
            try:
                dtg.loads(mutated, file=str(path))
            except DtgError as error:
                no_internal_text(error)


# ----------------------------------------------------------------------------- 7. plurals


def test_counts_read_as_english() -> None:
    error = error_of(GAUSSIAN.replace("0.02", "t[0] + 0.02"))
    assert error.message == "1 index into a value of space real"
    error = error_of(GAUSSIAN.replace("0.02", "t[0, 1] + 0.02"))
    assert error.message == "2 indices into a value of space real"
    vae = (EXAMPLES / "vae_digits.dtg").read_text()
    error = error_of(vae.replace("objective elbo", "objective elbo(1, 2, 3, 4, 5)"))
    assert error.message == "objective elbo takes at most 4 positional options"
    mdlm = (EXAMPLES / "autoregressive_digits.dtg").read_text()
    error = error_of(mdlm.replace("MashLast(x[t-1])", "MashLast(x[t-1], 1)"))
    assert error.message == "MashLast takes at most 1 argument (x)"


# ----------------------------------------------------------------------------- 8. __ names

_DUNDER = {
    "a model": ("model m {", "model __m {"),
    "the message (data)": ("data x : real[2]", "data __x : real[2]"),
    "the message (space)": (None, "space __x : real[2]"),
    "the number of steps": ("steps T = 10", "steps __T = 10"),
    "a schedule": ("schedule b(t)", "schedule __b(t)"),
    "a schedule parameter": ("schedule b(t)", "schedule b(__t)"),
    "a net": ("net eps :", "net __eps :"),
    "a reward": (None, "reward __r(p) = 0"),
    "a reward parameter": (None, "reward r(__p) = 0"),
}


@pytest.mark.parametrize("kind", list(_DUNDER))
def test_names_beginning_with_two_underscores_are_refused_for_every_declaration(kind) -> None:
    old, new = _DUNDER[kind]
    if old is None:
        source = GAUSSIAN.replace("  steps T = 10", f"  steps T = 10\n  {new}")
    else:
        source = GAUSSIAN.replace(old, new, 1)
    error = error_of(source)
    name = re.search(r"__\w+", new).group()
    what = kind.split(" (")[0].replace("a schedule parameter", "a parameter")
    what = what.replace("a reward parameter", "a parameter")
    assert error.message == f"'{name}' cannot name {what}: names beginning with '__' are reserved"
    assert underlined(error.format(), error.span.line) == name
    assert isinstance(error, dtg.DtgNameError)


def test_a_two_underscore_name_in_an_expression_keeps_its_message() -> None:
    error = error_of(GAUSSIAN.replace("0.02", "__import__(t)"))
    assert error.message == "'__import__' is not allowed in dtg expressions"


# ----------------------------------------------------------------------------- 9. huge integers

_HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        ("data x : real[2]", f"data x : real[{_HUGE}]", "a dimension"),
        ("-> real[2] =", f"-> real[{_HUGE}] =", "a dimension"),
        ("data x : real[2] ~ moons()", f"data x : token({_HUGE})[2]", "a vocabulary size"),
        ("data x : real[2] ~ moons()", f"data x : token(3)[{_HUGE}]", "a dimension"),
    ],
)
def test_integers_of_thousands_of_digits_are_a_clean_number_error(old, new, what) -> None:
    """These were ``VisitError … integer string conversion`` tracebacks (exit 3)."""
    error = error_of(GAUSSIAN.replace(old, new))
    assert error.message == (
        f"bad number '{'9' * 20}…' (5,000 digits): {what} must be a whole number below 2^63"
    )
    assert error.span.end_column - error.span.column == 5000
    assert len(error.format()) < 2000


@pytest.mark.parametrize("digits", [25, 400, 5000])
def test_steps_of_thousands_of_digits_are_too_many(digits) -> None:
    """5,000 digits were a ``VisitError`` traceback; the steps' own limit is the message, as for
    a trillion steps."""
    text = "1" + "0" * (digits - 1)
    error = error_of(GAUSSIAN.replace("steps T = 10", f"steps T = {text}"))
    assert isinstance(error, dtg.DtgRangeError)
    shown = text if digits <= 30 else f"{text[:20]}… ({digits:,} digits)"
    assert error.message == f"steps T = {shown} is too many (at most 100,000)"
    assert len(error.format()) < 2000


@pytest.mark.parametrize(
    "where",
    ["schedule b(t) = {}", "train {{ steps = {} }}", "generate x[T] ~ Normal(0, {})"],
)
def test_numbers_of_thousands_of_digits_in_expressions_are_cut_in_the_message(where) -> None:
    source = GAUSSIAN.replace(
        "  objective denoising", f"  objective denoising\n  {where.format(_HUGE)}"
    )
    error = error_of(source)
    assert error.message.startswith(f"bad number '{'9' * 20}…' (5,000 digits)")


def test_leading_zeros_and_the_int64_edge() -> None:
    assert dtg.loads(GAUSSIAN.replace("steps T = 10", "steps T = " + "0" * 5000 + "10"))
    error = error_of(GAUSSIAN.replace("real[2] ~", f"real[{2**63}] ~"))
    assert error.message.endswith("a dimension must be a whole number below 2^63")

"""Property tests: generated programs and mutated examples either check or raise DtgError."""

from __future__ import annotations

import random

from conftest import example_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dtg

LEAVES = ["t", "T", "1", "2", "0.5", "1e-3", "pi"]
FUNCTIONS = ["sqrt", "exp", "log", "cos", "sin", "tanh", "sigmoid", "softplus", "abs"]


@st.composite
def expressions(draw, depth: int = 3) -> str:
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(LEAVES))
    kind = draw(st.sampled_from(["binary", "unary", "call", "paren"]))
    if kind == "binary":
        op = draw(st.sampled_from(["+", "-", "*", "/", "^"]))
        return f"{draw(expressions(depth - 1))} {op} {draw(expressions(depth - 1))}"
    if kind == "unary":
        return f"-{draw(expressions(depth - 1))}"
    if kind == "call":
        return f"{draw(st.sampled_from(FUNCTIONS))}({draw(expressions(depth - 1))})"
    return f"({draw(expressions(depth - 1))})"


@st.composite
def programs(draw) -> str:
    steps = draw(st.integers(1, 30))
    schedule = draw(expressions())
    real = draw(st.booleans())
    if real:
        destroy = draw(
            st.sampled_from(
                [
                    "Normal(sqrt(1 - s(t)) * x[t-1], sqrt(s(t)))",
                    "Normal(s(t) * x[t-1], 0.1)",
                    "Normal(x[t-1] * s(t) + sin(x[t-1]), s(t))",
                    "Normal(x[t-1], exp(f(x[t-1], t)))",
                ]
            )
        )
        generate = draw(st.sampled_from(["Guess(x[t], f)", "Normal(f(x[t], t), 0.1)"]))
        start = draw(st.sampled_from(["~ Normal(0, 1)", "= 0"]))
        objective = draw(st.sampled_from(["denoising", "elbo", "masking"]))
        head = (
            "data x : real[2] ~ moons()\n  net f : (real[2], time) -> real[2] = mlp(hidden = [4])"
        )
    else:
        destroy = draw(
            st.sampled_from(["Mask(x[t-1], keep = s(t))", "Shuffle(x[t-1], keep = s(t))"])
        )
        generate = "Guess(x[t], f)"
        start = draw(st.sampled_from(["= masked", "~ Categorical(logits = 0)"]))
        objective = draw(st.sampled_from(["masking", "elbo"]))
        head = (
            'data x : token(3)[2] ~ file("x.npy")\n'
            "  net f : (token(3)[2], time) -> real[2, 3] = mlp(hidden = [4])"
        )
    return f"""model m {{
  {head}
  steps T = {steps}
  schedule s(t) = {schedule}
  destroy x[t] ~ {destroy}
  generate x[T] {start}
  generate x[t-1] ~ {generate}
  objective {objective}
}}"""


def check_or_dtg_error(text: str) -> None:
    try:
        dtg.loads(text, file="gen.dtg")
    except dtg.DtgError as error:
        assert error.span is None or error.span.line >= 0
        error.format()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_generated_programs_check_or_raise_dtg_error(text: str) -> None:
    check_or_dtg_error(text)


TOKENS = [
    "x",
    "t",
    "T",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "~",
    "=",
    "-",
    "*",
    "/",
    "^",
    ",",
    ":",
    "0",
    "1",
    "model",
    "data",
    "steps",
    "destroy",
    "generate",
    "Normal",
    "Mask",
    "masked",
    "real",
    "token",
    "time",
    "->",
    '"s"',
    "1e9",
    "x[t]",
    "x[t+1]",
    "__import__",
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**9), st.sampled_from([p.name for p in example_paths()]))
def test_single_token_mutations_of_examples(seed: int, name: str) -> None:
    path = next(p for p in example_paths() if p.name == name)
    words = path.read_text().replace("(", " ( ").replace(")", " ) ").split(" ")
    rng = random.Random(seed)
    position = rng.randrange(len(words))
    action = rng.choice(["replace", "delete", "insert"])
    if action == "replace":
        words[position] = rng.choice(TOKENS)
    elif action == "delete":
        del words[position]
    else:
        words.insert(position, rng.choice(TOKENS))
    check_or_dtg_error(" ".join(words))

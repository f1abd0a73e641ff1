"""A Pygments lexer for dtg, so ``.dtg`` code is highlighted in docs, notebooks and terminals.

Use it directly (``highlight(code, DtgLexer(), formatter)``), from a file
(``pygments.lexers.load_lexer_from_file("dtg/lexer.py", "DtgLexer")``) or, once the package
declares the ``pygments.lexers`` entry point, by name: ``get_lexer_by_name("dtg")``, which is
what MkDocs (``pymdownx.highlight``) and Sphinx use for fenced ```` ```dtg ```` blocks.

The word lists below are also the reference for the TextMate grammar
(``editors/dtg.tmLanguage.json``); a test keeps the two in step.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from dtg.syntax.parser import STATEMENT_KEYWORDS  # absolute: pygments may load this file alone

__all__ = [
    "DtgLexer",
    "KEYWORDS",
    "TYPES",
    "CHANNELS",
    "FUNCTIONS",
    "CONSTANTS",
    "ARCHITECTURES",
    "SOURCES",
    "TARGETS",
    "OBJECTIVES",
]

#: Statement keywords (and ``model``/``extends``).
KEYWORDS = ("model", "extends", *STATEMENT_KEYWORDS)
#: Spaces and net signature types.
TYPES = ("real", "token", "time")
#: Kernels (distributions and channels).
CHANNELS = ("Normal", "Categorical", "Mask", "Shuffle", "MashLast", "MashRandom", "Guess")
#: Elementwise functions and reductions of the expression language.
FUNCTIONS = (
    "sqrt",
    "exp",
    "log",
    "cos",
    "sin",
    "tanh",
    "sigmoid",
    "softplus",
    "abs",
    "floor",
    "sum",
    "mean",
    "simple_annealing",
    "block_annealing",
    "hybrid_annealing",
)
#: Named constants and values.
CONSTANTS = ("pi", "e", "masked", "true", "false")
#: Net architectures.
ARCHITECTURES = ("mlp", "pis", "transformer", "unet")
#: Data sources.
SOURCES = (
    "moons",
    "circles",
    "eight_gaussians",
    "swiss_roll",
    "checkerboard",
    "digits",
    "categorical",
    "images",
    "file",
)
#: Sampler targets (log-densities).
TARGETS = ("gmm25", "funnel", "manywell")
#: Objective names.
OBJECTIVES = (
    "denoising",
    "masking",
    "elbo",
    "trajectory_balance",
    "vargrad",
    "subtb",
    "detailed_balance",
    "relative_trajectory_balance",
    "policy_gradient",
)

_NAME = r"[A-Za-z_][A-Za-z_0-9]*"
_END = r"\b"


class DtgLexer(RegexLexer):
    """Lexer for dtg source files (``*.dtg``).

    Statement keywords are ``Keyword``, the name a statement defines is ``Name.Class`` (models),
    ``Name.Function`` (schedules, rewards, nets) or ``Name.Variable`` (data, spaces, steps);
    keyword arguments and ``train`` options are ``Name.Attribute``; channels, functions, nets,
    sources, targets and objectives are ``Name.Builtin``; ``pi e masked true false`` are
    ``Name.Constant``.
    """

    name = "dtg"
    aliases = ["dtg"]
    filenames = ["*.dtg"]
    mimetypes = ["text/x-dtg"]

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"', String.Double),
            (
                rf"(model|extends)(\s+)({_NAME})",
                bygroups(Keyword.Declaration, Whitespace, Name.Class),
            ),
            (rf"(schedule|reward|net)(\s+)({_NAME})", bygroups(Keyword, Whitespace, Name.Function)),
            (rf"(data|space|steps)(\s+)({_NAME})", bygroups(Keyword, Whitespace, Name.Variable)),
            (rf"{_NAME}(?=\s*=)", Name.Attribute),
            (words(KEYWORDS, suffix=_END), Keyword),
            (words(TYPES, suffix=_END), Keyword.Type),
            (words(CONSTANTS, suffix=_END), Name.Constant),
            (words(CHANNELS + FUNCTIONS + ARCHITECTURES, suffix=_END), Name.Builtin),
            (words(SOURCES + TARGETS + OBJECTIVES, suffix=_END), Name.Builtin),
            (_NAME, Name),
            (r"(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+", Number.Float),
            (r"\d+", Number.Integer),
            (r"->", Operator),
            (r"[~=+\-*/^:]", Operator),
            (r"[(){}\[\],]", Punctuation),
        ],
    }

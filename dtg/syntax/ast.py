"""The abstract syntax tree: frozen dataclasses that keep their source span.

Spans do not take part in equality, so two parses of texts that differ only in layout give
equal trees (the round-trip test relies on this). :func:`dtg.syntax.printer.to_source` prints
a tree back as canonical text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Span

__all__ = [
    "Node",
    "Number",
    "String",
    "Name",
    "Unary",
    "Binary",
    "Call",
    "Keyword",
    "Slice",
    "Subscript",
    "Vector",
    "Expr",
    "RealSpace",
    "TokenSpace",
    "TimeType",
    "SpaceType",
    "Level",
    "Data",
    "SpaceDecl",
    "Steps",
    "Schedule",
    "Net",
    "Kernel",
    "Destroy",
    "Generate",
    "Reward",
    "Objective",
    "Option",
    "Train",
    "Statement",
    "Model",
    "Module",
]

_NOSPAN = Span("<none>", 0, 0, 0, 0)


def _span() -> Span:
    return field(default=_NOSPAN, compare=False, repr=False)  # type: ignore[return-value]


@dataclass(frozen=True)
class Node:
    """Base class: every node has a ``span`` (ignored by ``==``)."""


# ----------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Number(Node):
    """A numeric literal. ``text`` keeps the user's spelling (``1e-3``) for printing."""

    value: float
    text: str = field(compare=False, default="")
    span: Span = _span()

    @property
    def is_integer(self) -> bool:
        return float(self.value).is_integer() and not any(c in self.text for c in ".eE")


@dataclass(frozen=True)
class String(Node):
    """A double-quoted string literal (only file paths use them)."""

    value: str
    span: Span = _span()


@dataclass(frozen=True)
class Name(Node):
    """A bare identifier: ``t``, ``T``, ``pi``, ``masked``, a schedule, a message…"""

    id: str
    span: Span = _span()


@dataclass(frozen=True)
class Unary(Node):
    """``-operand`` or ``+operand``."""

    op: str
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Binary(Node):
    """``left op right`` with ``op`` one of ``+ - * / ^``."""

    op: str
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Keyword(Node):
    """A keyword argument ``name = value`` inside a call."""

    name: str
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Call(Node):
    """``func(args…, name = value…)``: a function, schedule, net, channel, source or target."""

    func: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Keyword, ...] = ()
    span: Span = _span()
    func_span: Span = _span()

    def kwarg(self, name: str) -> Expr | None:
        for keyword in self.kwargs:
            if keyword.name == name:
                return keyword.value
        return None


@dataclass(frozen=True)
class Slice(Node):
    """``start:stop`` inside a subscript (either end may be omitted)."""

    start: Expr | None
    stop: Expr | None
    span: Span = _span()


@dataclass(frozen=True)
class Subscript(Node):
    """``base[i, j…]``: a level ``x[t-1]``, or indexing/slicing a vector ``v[0:2]``."""

    base: Expr
    indices: tuple[Expr | Slice, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Vector(Node):
    """A vector literal ``[a, b, c]``."""

    items: tuple[Expr, ...]
    span: Span = _span()


Expr = Number | String | Name | Unary | Binary | Call | Subscript | Vector


# ----------------------------------------------------------------------------- spaces


@dataclass(frozen=True)
class RealSpace(Node):
    """``real`` (a scalar, ``shape == ()``) or ``real[d1, d2, …]``."""

    shape: tuple[int, ...] = ()
    span: Span = _span()


@dataclass(frozen=True)
class TokenSpace(Node):
    """``token(V)[L…]``: sequences of tokens from a vocabulary of ``vocab`` values."""

    vocab: int
    shape: tuple[int, ...]
    span: Span = _span()


@dataclass(frozen=True)
class TimeType(Node):
    """``time``: the level ``t`` as a net input (the net sees ``t / T``)."""

    span: Span = _span()


SpaceType = RealSpace | TokenSpace | TimeType


# ----------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Level(Node):
    """The left side of a kernel: ``x[t]``, ``x[t-1]``, ``x[T]``."""

    message: str
    index: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Kernel(Node):
    """The right side of a kernel: ``~ Dist(…)`` (``stochastic``) or ``= expr``."""

    stochastic: bool
    body: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Data(Node):
    """``data x : SPACE [~ source(…)]``."""

    name: str
    space: SpaceType
    source: Call | None = None
    span: Span = _span()


@dataclass(frozen=True)
class SpaceDecl(Node):
    """``space x : SPACE`` (a sampler's target space; no data)."""

    name: str
    space: SpaceType
    span: Span = _span()


@dataclass(frozen=True)
class Steps(Node):
    """``steps T = 100``. ``text`` keeps the number as written: a value beyond 2^63 (far past
    any limit) is held as 2^63, and messages and the printer show the text."""

    name: str
    value: int
    span: Span = _span()
    text: str = field(compare=False, default="")


@dataclass(frozen=True)
class Schedule(Node):
    """``schedule abar(t) = EXPR``."""

    name: str
    params: tuple[str, ...]
    body: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Net(Node):
    """``net eps : (real[2], time) -> real[2] = mlp(hidden = [128])``."""

    name: str
    inputs: tuple[SpaceType, ...]
    output: SpaceType
    arch: Call
    span: Span = _span()


@dataclass(frozen=True)
class Destroy(Node):
    """``destroy x[t] ~ …`` or ``destroy x[t] = …``."""

    level: Level
    kernel: Kernel
    span: Span = _span()


@dataclass(frozen=True)
class Generate(Node):
    """``generate x[t-1] ~ …``, ``generate x[T] = 0``."""

    level: Level
    kernel: Kernel
    span: Span = _span()


@dataclass(frozen=True)
class Reward(Node):
    """``reward logr(x) = EXPR`` (a log-reward, i.e. an unnormalised log-density), optionally
    followed by what is known of its target: ``{ log_z = 1.8379, modes = [[0, 0]] }``."""

    name: str
    params: tuple[str, ...] | None
    body: Expr
    span: Span = _span()
    options: tuple[Option, ...] = ()


@dataclass(frozen=True)
class Objective(Node):
    """``objective NAME[(options…)]``."""

    name: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Keyword, ...] = ()
    has_parens: bool = field(default=False, compare=False)
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Option(Node):
    """``name = value`` inside ``train { … }``."""

    name: str
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Train(Node):
    """``train { steps = 2000, batch = 512, lr = 1e-3 }``."""

    options: tuple[Option, ...]
    span: Span = _span()


Statement = (
    Data | SpaceDecl | Steps | Schedule | Net | Destroy | Generate | Reward | Objective | Train
)


@dataclass(frozen=True)
class Model(Node):
    """``model NAME [extends PARENT] { statements… }``."""

    name: str
    parent: str | None
    statements: tuple[Statement, ...]
    span: Span = _span()
    name_span: Span = _span()
    parent_span: Span = _span()


@dataclass(frozen=True)
class Module(Node):
    """A whole file: its models in order, plus the file name and source text."""

    models: tuple[Model, ...]
    file: str = field(default="<string>", compare=False)
    source: str = field(default="", compare=False, repr=False)
    span: Span = _span()

    def model(self, name: str) -> Model | None:
        for model in self.models:
            if model.name == name:
                return model
        return None

"""Typed, resolved expressions: what the checker lowers every ``.dtg`` expression to.

An IR expression has no unresolved names and no surface-only forms: ``x[t-1]`` is a
:class:`LevelRef`, ``beta(t)`` a :class:`ScheduleCall`, ``eps(x[t], t)`` a :class:`NetCall`,
``gmm25(x)`` a :class:`RewardCall`, ``sqrt(…)`` a :class:`Call` of a :class:`Builtin`. Every node
carries its :class:`~dtg.ir.space.Space` and the source span it came from (for later errors).
Backends (the torch lowering, the Pyro source emitter, the printer) walk these trees with one
generic traversal, :class:`ExprFold`, and never see the syntax tree.

Tensor conventions of the lowerings: a value of space ``real[d…]`` is ``[B, d…]`` per batch; a
scalar that depends on the example (``t``) is ``[B]``; a constant is 0-dim.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..errors import Span
from .space import Space

__all__ = [
    "Expr",
    "Const",
    "Param",
    "ParamKind",
    "Var",
    "Level",
    "LevelAnchor",
    "LevelRef",
    "ScheduleCall",
    "NetCall",
    "RewardKind",
    "RewardCall",
    "RewardGrad",
    "GRAD_CLIP",
    "BinOp",
    "Binary",
    "Neg",
    "Builtin",
    "Call",
    "Index",
    "Vector",
    "Hyperschedule",
    "ExprFold",
    "walk",
]

_SCALAR = Space.scalar()


@dataclass(frozen=True)
class Expr:
    """The base of IR expressions.

    :param space: the value's space (``real[]`` for scalars).
    :param span: where in the source it was written (``None`` for nodes the compiler made).
    """

    space: Space = field(default=_SCALAR, kw_only=True)
    span: Span | None = field(default=None, kw_only=True, compare=False, repr=False)

    def children(self) -> tuple[Expr, ...]:
        """The sub-expressions, in evaluation order."""
        return ()


@dataclass(frozen=True)
class Const(Expr):
    """A number. ``integer`` records that it was written without a fraction (``4``, not ``4.0``)."""

    value: float
    integer: bool = False
    text: str = field(default="", compare=False)  # as written (``1e-3``), for printing


class ParamKind(enum.Enum):
    """The parameters every model has."""

    LEVEL = "t"  # the level of the example, 0..T (a [B] tensor)
    STEPS = "T"  # the number of levels
    POSITION = "i"  # reserved: the token position of a per-position schedule


@dataclass(frozen=True)
class Param(Expr):
    """``t``, ``T`` or (reserved) the position ``i``."""

    kind: ParamKind


@dataclass(frozen=True)
class Var(Expr):
    """A parameter of the enclosing schedule definition (``s`` in ``schedule f(s) = …``)."""

    name: str


class LevelAnchor(enum.Enum):
    """What a level index counts from."""

    CURRENT = "t"  # relative to the level of the example: x[t-1], x[t]
    ABSOLUTE = "0"  # a fixed level: x[0]


@dataclass(frozen=True)
class Level:
    """One level of the message: ``x[t + offset]`` or ``x[offset]``.

    Per-level channels (a kernel for ``x[2]`` alone) name their levels with ``ABSOLUTE``.
    """

    anchor: LevelAnchor
    offset: int

    @property
    def key(self) -> str:
        """The name the lowerings bind a level tensor to: ``prev``, ``next``, ``zero`` or ``@k``."""
        if self.anchor is LevelAnchor.CURRENT and self.offset in (-1, 0):
            return "prev" if self.offset == -1 else "next"
        if self.anchor is LevelAnchor.ABSOLUTE and self.offset == 0:
            return "zero"
        return (
            f"{self.anchor.value}{self.offset:+d}"
            if self.anchor is LevelAnchor.CURRENT
            else f"@{self.offset}"
        )

    def text(self) -> str:
        """The index as people write it: ``t-1``, ``t``, ``0``."""
        if self.anchor is LevelAnchor.ABSOLUTE:
            return str(self.offset)
        return "t" if self.offset == 0 else f"t{self.offset:+d}"


@dataclass(frozen=True)
class LevelRef(Expr):
    """The message at a level: ``x[t-1]`` (its space is that level's space)."""

    message: str
    level: Level


@dataclass(frozen=True)
class ScheduleCall(Expr):
    """A call of a declared schedule; its definition is in :attr:`ModelIR.schedule_defs`.

    A per-position schedule (reserved) will be tabulated ``[T+1, *positions]`` and called with
    the level and the position.
    """

    name: str
    args: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.args


@dataclass(frozen=True)
class NetCall(Expr):
    """A call of a declared net; a ``time`` input receives ``t`` (scaled to ``t/T`` when run)."""

    net: str
    args: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.args


class RewardKind(enum.Enum):
    TARGET = "target"  # a built-in density (gmm25, funnel, manywell)
    PLUGIN = "plugin"  # a Python reward registered by the user
    CLASSIFY = "classify"  # the built-in digits classifier's log-probability of classes


@dataclass(frozen=True)
class RewardCall(Expr):
    """A log-reward function applied to a value: ``gmm25(x)``, ``classify(x, classes = […])``."""

    kind: RewardKind
    name: str
    arg: Expr
    classes: tuple[int, ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)


#: ``grad(logr, x[t])`` clips each coordinate of ∇ log r to ±this by default (gfn-diffusion's
#: ``lgv_clip``).
GRAD_CLIP = 100.0


@dataclass(frozen=True)
class RewardGrad(Expr):
    """``grad(logr, x[t])``: the gradient of the model's log-reward at a level's value.

    Lowered by autograd of the reward at ``arg``'s value, vectorised over the batch, *detached*
    (an input to the nets: no second-order terms), non-finite entries set to 0 and each entry
    clipped to ``±clip``. Its space is the level's.

    :param reward: the reward's name (``logr``).
    :param arg: the level it is taken at (a :class:`LevelRef`).
    :param clip: the clip (``grad(logr, x[t], clip = 10)``; default :data:`GRAD_CLIP`).
    """

    reward: str
    arg: Expr
    clip: float = GRAD_CLIP

    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)


class BinOp(enum.Enum):
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    POW = "^"


@dataclass(frozen=True)
class Binary(Expr):
    """``left op right``; a scalar operand broadcasts against a shaped one."""

    op: BinOp
    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Neg(Expr):
    """``-operand``."""

    operand: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


class Builtin(enum.Enum):
    """The built-in functions of the language."""

    SQRT = "sqrt"
    EXP = "exp"
    LOG = "log"
    COS = "cos"
    SIN = "sin"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    SOFTPLUS = "softplus"
    ABS = "abs"
    FLOOR = "floor"  # a hyperschedule's integer noise level
    MIN = "min"
    MAX = "max"
    SUM = "sum"  # over all dimensions of one example
    MEAN = "mean"


@dataclass(frozen=True)
class Call(Expr):
    """A built-in function applied elementwise (``min``/``max`` broadcast) or reduced."""

    fn: Builtin
    args: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.args


@dataclass(frozen=True)
class Index(Expr):
    """Indexing and slicing of a value's dimensions (not the batch): ``eps(x[t], t)[0:2]``.

    :param items: per dimension, an ``int`` or a ``slice`` with constant bounds.
    """

    base: Expr
    items: tuple[int | slice, ...]

    def children(self) -> tuple[Expr, ...]:
        return (self.base,)

    def item_texts(self) -> list[str]:
        """Each item as written: ``0``, ``0:2``, ``:3``."""
        texts = []
        for item in self.items:
            if isinstance(item, slice):
                start = "" if item.start is None else str(item.start)
                stop = "" if item.stop is None else str(item.stop)
                texts.append(f"{start}:{stop}")
            else:
                texts.append(str(item))
        return texts


@dataclass(frozen=True)
class Vector(Expr):
    """``[a, b, …]`` of scalars."""

    items: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.items


@dataclass(frozen=True)
class Hyperschedule(Expr):
    """A built-in hyperschedule, ``simple_annealing(t, i, width = 1)`` (dtg.check.hyper):
    ``expansion`` is what it computes, ``min``/``max``/``floor`` arithmetic of ``level`` and
    ``position`` for the model's ``L`` and ``T``. Folds evaluate the expansion (the default
    rule); the printer prints the call.
    """

    name: str
    level: Expr
    position: Expr
    options: tuple[tuple[str, int], ...]
    expansion: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.level, self.position, self.expansion)


R = TypeVar("R")


class ExprFold(Generic[R]):
    """Fold an expression bottom-up: each node's method receives the node and its children's
    results. Subclasses define ``const``, ``param``, ``var``, ``level_ref``, ``schedule_call``,
    ``net_call``, ``reward_call``, ``reward_grad``, ``binary``, ``neg``, ``call``, ``index`` and ``vector``; a
    missing method raises ``NotImplementedError`` naming the node.
    """

    def hyperschedule(self, node: Hyperschedule, level: R, position: R, expansion: R) -> R:
        """A hyperschedule folds to its expansion's result (the printer prints the call)."""
        return expansion

    def fold(self, node: Expr) -> R:
        """The fold of ``node``: children first, left to right, then the node.

        Iterative, so a long chain ``a + b + c + …`` costs no recursion.
        """
        results: list[R] = []
        stack: list[tuple[Expr, bool]] = [(node, False)]
        while stack:
            item, ready = stack.pop()
            children = item.children()
            if not ready and children:
                stack.append((item, True))
                stack.extend((child, False) for child in reversed(children))
                continue
            method = getattr(self, _METHOD[type(item)], None)
            if method is None:
                raise NotImplementedError(
                    f"{type(self).__name__} has no rule for {type(item).__name__}"
                )
            count = len(children)
            args = results[len(results) - count :] if count else []
            del results[len(results) - count :]
            results.append(method(item, *args))
        return results[0]


_METHOD = {
    Const: "const",
    Param: "param",
    Var: "var",
    LevelRef: "level_ref",
    ScheduleCall: "schedule_call",
    NetCall: "net_call",
    RewardCall: "reward_call",
    RewardGrad: "reward_grad",
    Binary: "binary",
    Neg: "neg",
    Call: "call",
    Index: "index",
    Vector: "vector",
    Hyperschedule: "hyperschedule",
}


def walk(node: Expr) -> Iterator[Expr]:
    """Every node of ``node``, parents before children."""
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        stack.extend(reversed(item.children()))

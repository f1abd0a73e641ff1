"""The intermediate representation: the *withholding graph* of one model.

The checker turns a model's statements into a :class:`ModelIR`: one message, its levels, the
destruction channel ``x[t-1] ⇀ x[t]``, the generation channel ``x[t] ⇀ x[t-1]``, the generation
start ``x[T]``, the nets, the reward and the objective — organised by what the backends (objectives,
Pyro lowering, renderer) need, not by the surface syntax. Parameters are sympy expressions in the
level ``t`` (symbol :data:`dtg.check.symbolic.T_SYMBOL`); numeric tables over ``t = 0..T`` are float64
numpy arrays.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import Span
from .expr import Expr
from .space import Space
from .summary import summarize

__all__ = [
    "Space",
    "Family",
    "Direction",
    "Role",
    "ObjectiveKind",
    "Channel",
    "NetSpec",
    "ScheduleDef",
    "DataSourceSpec",
    "Message",
    "RewardSpec",
    "ObjectiveSpec",
    "ModelIR",
]


class Family(enum.Enum):
    """A channel family: the seam between kernels and objectives (DESIGN.md §4)."""

    LINEAR_GAUSSIAN = "GaussianShuffle"  # Normal(a(t) x, s(t)), a and s fixed
    NORMAL = "Normal"  # any other Normal (nets in the mean or std, or x non-linear)
    MASK = "Mask"  # absorbing: each position masked with prob 1 - keep(t)
    SHUFFLE = "Shuffle"  # uniform: each position resampled with prob 1 - keep(t)
    MASH_LAST = "MashLast"  # deterministic: masks the last unmasked position
    MASH_RANDOM = "MashRandom"  # masks one unmasked position chosen uniformly
    CATEGORICAL = "Categorical"  # independent categorical per position from logits
    SINGLETON = "Singleton"  # a point: = 0, = masked
    GUESS = "Guess"  # the destruction's posterior at a predicted x[0]

    @property
    def label(self) -> str:
        return self.value


class Role(enum.StrEnum):
    """What the message is: training data, or a sampler's target known through a reward."""

    DATA = "data"
    TARGET = "target"


class Direction(enum.Enum):
    DESTROY = "destroy"
    GENERATE = "generate"


class ObjectiveKind(enum.Enum):
    DENOISING = "denoising"
    MASKING = "masking"
    ELBO = "elbo"
    TRAJECTORY_BALANCE = "trajectory_balance"
    VARGRAD = "vargrad"
    SUBTB = "subtb"
    DETAILED_BALANCE = "detailed_balance"
    RELATIVE_TRAJECTORY_BALANCE = "relative_trajectory_balance"
    POLICY_GRADIENT = "policy_gradient"


@dataclass(frozen=True)
class NetSpec:
    """A declared net: ``net NAME : (inputs) -> output = arch(options)``.

    :param inputs: input spaces; ``Space("time")`` for a time input.
    :param options: the architecture's options as Python values (numbers, lists, bools, strings).
    """

    name: str
    inputs: tuple[Space, ...]
    output: Space
    arch: str
    options: dict[str, Any]
    span: Span
    parameters: int = 0


@dataclass(frozen=True)
class Channel:
    """One kernel of the withholding graph.

    :param direction: destroy (``x[t-1] ⇀ x[t]``) or generate (``x[t] ⇀ x[t-1]``, or the start).
    :param family: how the backends treat it.
    :param stochastic: ``False`` for ``=`` kernels (deterministic maps, singletons).
    :param source: the level read (``"t-1"``, ``"t"``, or ``None`` for the start).
    :param target: the level defined (``"t"``, ``"t-1"`` or ``"T"``).
    :param text: the kernel as written, canonical (``Normal(sqrt(1 - beta(t)) * x[t-1], …)``).
    :param params: family parameters as sympy expressions in ``t`` (``a``, ``s`` for
        linear-Gaussian; ``keep`` for Mask/Shuffle; ``value`` for singletons).
    :param tables: the same parameters as float64 arrays of length ``T + 1`` (entry ``t``).
    :param nets: the nets the kernel calls; non-empty means *learned*.
    :param options: family options (``net``, ``predict``, ``variance``, ``clip`` for ``Guess``).
    :param args: the kernel's arguments by parameter name (``mean``, ``std``, ``keep``,
        ``logits``, ``x``) as typed IR expressions: what the backends evaluate.
    """

    direction: Direction
    family: Family
    stochastic: bool
    source: str | None
    target: str
    text: str
    span: Span
    params: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, np.ndarray] = field(default_factory=dict, compare=False)
    nets: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    latex: str = ""
    args: dict[str, Expr] = field(default_factory=dict)

    @property
    def learned(self) -> bool:
        return bool(self.nets)

    @property
    def single_level(self) -> bool:
        """Whether this is a kernel for one level (``destroy x[2] ~ …``: its source and target
        are level numbers), not a template (``x[t-1]``, ``x[t]``) or the start."""
        return self.source is not None and self.source.isdigit()

    @property
    def name(self) -> str:
        """The label drawn on the diagram's edge."""
        return self.family.label


@dataclass(frozen=True)
class ScheduleDef:
    """``schedule NAME(PARAMS) = BODY``: the body an IR expression whose parameters are ``Var``."""

    name: str
    params: tuple[str, ...]
    body: Expr
    text: str
    span: Span | None = None


@dataclass(frozen=True)
class DataSourceSpec:
    """``data x : SPACE ~ NAME(OPTIONS)`` with its options bound and validated by the checker.

    :param name: the source (``moons``, ``digits``, ``file``…).
    :param options: every option of the source by name, defaults filled.
    """

    name: str
    options: dict[str, Any]
    span: Span | None = None


@dataclass(frozen=True)
class Message:
    """The one message of a model and its levels.

    :param space: the space of ``x[0]`` (the data or the target).
    :param level_space: the space of ``x[1..T]`` (differs from ``space`` for a VAE's latent).
    :param level_spaces: with per-level kernels, the space of each level ``x[0] … x[T]`` (a
        hierarchical VAE's 64 → 16 → 4); empty otherwise.
    :param role: ``"data"`` (``data x``) or ``"target"`` (``space x`` with a reward).
    :param source: the data source call, when given.
    :param masked: whether the ``[MASK]`` value is used (a Mask or MashLast channel).
    """

    name: str
    space: Space
    level_space: Space
    role: Role
    source: DataSourceSpec | None
    span: Span
    masked: bool = False
    level_spaces: tuple[Space, ...] = ()

    def space_at(self, level: int) -> Space:
        """:returns: the space of ``x[level]``."""
        if self.level_spaces:
            return self.level_spaces[level]
        return self.space if level == 0 else self.level_space


@dataclass(frozen=True)
class RewardSpec:
    """``reward NAME(x) = EXPR``: the log-reward ``log r(x[0])``.

    :param body: the IR expression; the parameter ``x`` is lowered to ``x[0]``.
    :param text: the body as written.
    :param log_z: ``log ∫ r(x) dx`` when known: declared (``{ log_z = … }``) or the built-in
        target's.
    :param modes: the declared modes (or the target's), each flattened to the space's size.
    :param mode_radius: a sample within this distance of a mode covers it (``None``: no modes).
    """

    name: str
    param: str | None
    body: Expr
    span: Span
    target: str | None = None  # the built-in target named in the body (gmm25, funnel, manywell)
    text: str = ""
    log_z: float | None = None
    modes: tuple[tuple[float, ...], ...] = ()
    mode_radius: float | None = None


@dataclass(frozen=True)
class ObjectiveSpec:
    """The declared objective with its options resolved to Python values (defaults filled)."""

    kind: ObjectiveKind
    options: dict[str, Any]
    span: Span


@dataclass(frozen=True)
class ModelIR:
    """A checked model.

    :param steps: ``T``, the number of destruction levels.
    :param schedules: each schedule's float64 table over ``t = 0..T`` (``nan`` where undefined).
    :param destroy: the destruction kernel ``x[t-1] ⇀ x[t]`` (with per-level kernels and no
        template: level 1's).
    :param generate: the generation kernel ``x[t] ⇀ x[t-1]`` (likewise).
    :param destroy_levels: with per-level kernels (``destroy x[1] ~ …``), the destruction
        channel of each level ``l = 1 … T`` at index ``l - 1`` (the template where a level has no
        statement of its own); empty otherwise.
    :param generate_levels: likewise for generation: entry ``l - 1`` defines ``x[l-1]`` from
        ``x[l]``.
    :param marginals: for linear-Gaussian destruction: ``mean`` (m_t), ``var`` (v_t) of
        q(x[t] | x[0]) = N(m_t x[0], v_t), and the posterior q(x[t-1] | x[t], x[0]) =
        N(``post_x0``·x[0] + ``post_xt``·x[t], ``post_var``); for Mask/Shuffle: ``alpha``
        (probability that a position is untouched by level t). Arrays of length ``T + 1``.
    """

    name: str
    parent: ModelIR | None
    steps: int
    steps_name: str
    message: Message
    schedules: dict[str, np.ndarray]
    schedule_exprs: dict[str, Any]
    nets: dict[str, NetSpec]
    destroy: Channel
    generate: Channel
    start: Channel
    reward: RewardSpec | None
    objective: ObjectiveSpec
    train: dict[str, Any]
    marginals: dict[str, np.ndarray]
    schedule_defs: dict[str, ScheduleDef] = field(default_factory=dict)
    destroy_levels: tuple[Channel, ...] = ()
    generate_levels: tuple[Channel, ...] = ()
    span: Span | None = None
    #: The front end's syntax node of this model: opaque to every stage after the checker
    #: (the checker reads a parent's statements from it when a child extends it).
    syntax: object = field(default=None, compare=False, repr=False)

    def __repr__(self) -> str:
        """One line (name, levels, families, objective); the fields would be kilobytes."""
        return f"<ModelIR {summarize(self)}>"

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The destruction and generation templates and the start."""
        return (self.destroy, self.generate, self.start)

    @property
    def every_channel(self) -> tuple[Channel, ...]:
        """Every distinct channel: the templates and the start, then the per-level ones."""
        found = [self.destroy, self.generate, self.start]
        for channel in (*self.destroy_levels, *self.generate_levels):
            if all(channel is not other for other in found):
                found.append(channel)
        return tuple(found)

    @property
    def per_level(self) -> bool:
        """Whether some level has a kernel of its own (``destroy x[1] ~ …``)."""
        return bool(self.destroy_levels)

    def destroy_at(self, level: int) -> Channel:
        """:returns: the channel that defines ``x[level]`` from ``x[level-1]`` (1 ≤ level ≤ T)."""
        return self.destroy_levels[level - 1] if self.destroy_levels else self.destroy

    def generate_at(self, level: int) -> Channel:
        """:returns: the channel that defines ``x[level-1]`` from ``x[level]`` (1 ≤ level ≤ T)."""
        return self.generate_levels[level - 1] if self.generate_levels else self.generate

    @property
    def learned_destruction(self) -> bool:
        return any(channel.learned for channel in (self.destroy, *self.destroy_levels))

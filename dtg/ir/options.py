"""The options of each objective and of the ``train`` block: their defaults and valid values.

This is the one table every stage reads: the checker validates ``.dtg`` options against it
(with spans), ``dtg train --set`` validates command-line values against it, and the docs list it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from ..errors import did_you_mean
from .model import ObjectiveKind, Role

__all__ = [
    "OptionSpec",
    "OptionValueError",
    "check_option",
    "OBJECTIVE_OPTIONS",
    "TRAIN_OPTIONS",
    "Weight",
    "Precision",
    "LevelSampling",
    "MaskingTime",
    "DestroyTraining",
    "LogZInit",
    "Advantage",
    "Scoring",
    "MaskingLoss",
    "Predict",
    "Variance",
    "Role",
]


# Modes are enums (StrEnum: each compares equal to its name as written in a .dtg file).
class Weight(enum.StrEnum):
    """The per-level weight of the denoising loss."""

    SIMPLE = "simple"  # Ho et al.'s L_simple
    ELBO = "elbo"
    MIN_SNR = "min_snr"


class MaskingLoss(enum.StrEnum):
    """What the masking objective trains a hybrid ``Mask`` (``redraw``) by."""

    ELBO = "elbo"  # the exact negative ELBO (D3PM's KL per level)
    EPSILON_HYBRID = "epsilon_hybrid"  # hdlm's ε-hybrid weighting: a heuristic, not a bound


class LevelSampling(enum.StrEnum):
    """How an objective draws the level of each example."""

    UNIFORM = "uniform"
    IMPORTANCE = "importance"  # by the running second moment of each level's loss
    ANTITHETIC = "antithetic"  # stratified over the batch


class MaskingTime(enum.StrEnum):
    DISCRETE = "discrete"  # the exact discrete-time ELBO
    CONTINUOUS = "continuous"  # MDLM's −α'(t)/(1 − α(t)) weights


class DestroyTraining(enum.StrEnum):
    """How a learned destruction trains in the trajectory-balance family."""

    JOINT = "joint"
    TLM = "tlm"  # its own loss, a Polyak target copy inside the generation loss
    FIXED = "fixed"


class LogZInit(enum.StrEnum):
    AUTO = "auto"  # the first on-policy batch's ELBO estimate
    ZERO = "zero"


class Advantage(enum.StrEnum):
    BATCH = "batch"  # normalised over the batch
    GROUP = "group"  # normalised within groups of ``group`` samples (GRPO)


class Scoring(enum.StrEnum):
    """How fine-tuning scores a generated sample (masked diffusion; dtg.objectives.scoring)."""

    TRAJECTORY = "trajectory"  # the exact log-probability of the generated trajectory
    DIFFU_GRPO = "diffu_grpo"  # one pass on the fully masked sample (d1)
    COUPLED = "coupled"  # complementary mask pairs at a sampled level (DiffuCoder)


class Predict(enum.StrEnum):
    """What a Gaussian ``Guess`` net predicts."""

    EPSILON = "epsilon"
    SAMPLE = "sample"  # x[0] itself
    V_PREDICTION = "v_prediction"


class Precision(enum.StrEnum):
    """The arithmetic of the nets during training (``torch.autocast``; dtg.runtime.precision)."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"  # with a gradient scaler


class Variance(enum.StrEnum):
    """The variance of a Gaussian ``Guess`` step."""

    POSTERIOR = "posterior"  # the destruction's posterior variance
    BETA = "beta"  # the destruction step's variance


@dataclass(frozen=True)
class OptionSpec:
    """One option: its default and what values it accepts.

    :param kind: ``"number"``, ``"int"``, ``"bool"`` or ``"choice"``.
    :param choices: the valid names for ``"choice"``, in the order of the ``enum``.
    :param enum: the mode enum a ``"choice"`` value is converted to.
    :param low: the smallest valid number (inclusive unless ``open_low``).
    """

    default: Any
    kind: str
    choices: tuple[str, ...] = ()
    enum: type[enum.StrEnum] | None = None
    low: float | None = None
    open_low: bool = False
    high: float | None = None
    doc: str = ""


class OptionValueError(ValueError):
    """A value an option does not accept.

    :param expected: what the option takes, as words after "must be" (``"a whole number"``).
    :param hint: a suggestion (the choice probably meant), or ``None``.
    """

    def __init__(self, expected: str, hint: str | None = None) -> None:
        super().__init__(expected)
        self.expected, self.hint = expected, hint


def check_option(spec: OptionSpec, value: Any) -> Any:
    """The one validator of option values: ``.dtg`` options (the checker adds the location) and
    ``--set``/keyword train options (the runtime adds the option's name) both come here.

    :param spec: the option's table entry.
    :param value: a number, bool or name.
    :returns: the value as the option holds it (a mode enum for choices, ``int`` for whole
        numbers).
    :raises OptionValueError: naming what the option takes.
    """
    if spec.kind == "choice":
        if value not in spec.choices:
            raise OptionValueError(
                "one of " + ", ".join(spec.choices), did_you_mean(str(value), spec.choices)
            )
        return spec.enum(value) if spec.enum is not None else value
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise OptionValueError("true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionValueError("a number")
    if spec.kind == "int":
        # nan and ±inf are not whole numbers either; a Python int is (float() of a huge one
        # would overflow, so it is not converted)
        if isinstance(value, float) and not value.is_integer():
            raise OptionValueError("a whole number")
        value = int(value)
        if abs(value) >= 2**63:  # torch and numpy take 64-bit integers
            raise OptionValueError("a whole number below 2^63")
    elif isinstance(value, int):  # a real-valued option is used as a float: it must fit one
        try:
            float(value)
        except OverflowError:
            raise OptionValueError("a finite number") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionValueError("finite")
    if spec.low is not None and (value < spec.low or (spec.open_low and value <= spec.low)):
        raise OptionValueError(f"{'>' if spec.open_low else '≥'} {spec.low:g}")
    if spec.high is not None and value > spec.high:
        raise OptionValueError(f"≤ {spec.high:g}")
    return value


#: The largest learning rate: Adam's step is about the learning rate, and past ~3e38 it no longer
#: fits a float32 parameter (torch raises); anything near this bound diverges anyway.
_MAX_LR = 1e6


def _num(default: float | None, low: float | None = 0.0, open_low: bool = True, high=None, doc=""):
    return OptionSpec(default, "number", low=low, open_low=open_low, high=high, doc=doc)


def _int(default: int | None, low: int = 1, doc: str = "") -> OptionSpec:
    return OptionSpec(default, "int", low=low, doc=doc)


def _choice(default: enum.StrEnum, *choices: enum.StrEnum, doc: str = "") -> OptionSpec:
    kind = type(default)
    return OptionSpec(default, "choice", tuple(str(c) for c in choices), kind, doc=doc)


_SAMPLER = {
    "explore": _num(0.0, open_low=False, doc="extra generation noise std (off-policy)"),
    "explore_steps": _int(1000, doc="steps over which explore decays to 0"),
    "explore_floor": _num(0.0, open_low=False, doc="exploration std never decayed below"),
    "replay": _int(0, low=0, doc="replay buffer size (0 = on-policy)"),
    "destroy": _choice(
        DestroyTraining.JOINT, *DestroyTraining, doc="how learned destruction trains"
    ),
    "lr_destroy": _num(None, high=_MAX_LR, doc="learning rate of the destruction nets"),
    "tau": _num(0.99, high=1.0, doc="Polyak factor of the target destruction (tlm)"),
    "clip": _num(None, doc="clip each squared residual at this value"),
}

#: Local search (Sendera et al. 2024): MALA from a rank-prioritised buffer of terminal states;
#: odd iterations train on destruction trajectories from the samples it accepted.
_LOCAL_SEARCH = {
    "local_search": OptionSpec(False, "bool", doc="alternate on-policy and local-search batches"),
    "ls_every": _int(100, doc="iterations between local-search rounds"),
    "ls_steps": _int(200, doc="MALA steps per round"),
    "ls_burn_in": _int(100, low=0, doc="MALA steps before accepted proposals are kept"),
    "ls_step_size": _num(0.1, doc="initial MALA step size of each round"),
    "ls_target_accept": _num(
        0.574, high=1.0, doc="acceptance rate the step size is moved toward (±1 % per step)"
    ),
    "ls_buffer": _int(600_000, doc="size of each local-search buffer"),
    "ls_rank_weight": _num(0.01, doc="k of the rank weights 1 / (k N + rank)"),
}

#: Options of each objective, in positional order.
OBJECTIVE_OPTIONS: dict[ObjectiveKind, dict[str, OptionSpec]] = {
    ObjectiveKind.DENOISING: {
        "weight": _choice(Weight.SIMPLE, *Weight, doc="per-level loss weight"),
        "gamma": _num(5.0, doc="min-SNR clamp γ (weight = min_snr)"),
        "sampling": _choice(
            LevelSampling.UNIFORM,
            LevelSampling.UNIFORM,
            LevelSampling.IMPORTANCE,
            doc="how levels are sampled",
        ),
    },
    ObjectiveKind.MASKING: {
        "time": _choice(MaskingTime.DISCRETE, *MaskingTime, doc="ELBO weights"),
        "sampling": _choice(
            LevelSampling.ANTITHETIC,
            LevelSampling.ANTITHETIC,
            LevelSampling.UNIFORM,
            doc="how levels are sampled",
        ),
        "loss": _choice(
            MaskingLoss.ELBO, *MaskingLoss, doc="exact ELBO, or hdlm's ε-hybrid (not a bound)"
        ),
        "hybrid_weight": _num(1.0, doc="λ of the ε-hybrid loss (unmasked tokens' weight)"),
    },
    ObjectiveKind.ELBO: {
        "particles": _int(1, doc="Monte Carlo particles per example"),
        "beta": _num(None, open_low=False, doc="weight β of the KL terms (none: 1, the ELBO)"),
        "kl_warmup": _int(None, low=0, doc="steps over which β ramps linearly from 0 (none: off)"),
        "free_bits": _num(  # a floor past float32's range would be an overflow, not a floor
            None,
            open_low=False,
            high=1e6,
            doc="floor in nats on each latent level's KL (none: off)",
        ),
    },
    ObjectiveKind.TRAJECTORY_BALANCE: {
        "lr_logZ": _num(0.1, high=_MAX_LR, doc="learning rate of log Z"),
        **_SAMPLER,
        "log_z_init": _choice(
            LogZInit.AUTO,
            *LogZInit,
            doc="log Z starts at the first batch's estimate (on-policy), or at 0",
        ),
        **_LOCAL_SEARCH,
    },
    ObjectiveKind.VARGRAD: {**_SAMPLER, **_LOCAL_SEARCH},
    ObjectiveKind.SUBTB: {
        "lambda": _num(0.9, doc="geometric weight of sub-trajectory lengths"),
        "lr_logZ": _num(0.1, high=_MAX_LR, doc="learning rate of log Z"),
        **_SAMPLER,
        **_LOCAL_SEARCH,
    },
    ObjectiveKind.DETAILED_BALANCE: {
        "lr_logZ": _num(0.1, high=_MAX_LR),
        **_SAMPLER,
        **_LOCAL_SEARCH,
    },
    ObjectiveKind.RELATIVE_TRAJECTORY_BALANCE: {
        "beta": _num(1.0, doc="inverse temperature of the reward"),
        "lr_logZ": _num(0.1, high=_MAX_LR, doc="learning rate of log Z"),
        "vargrad": OptionSpec(False, "bool", doc="relative VarGrad (no log Z)"),
        "clip": _num(None, doc="clip each squared residual at this value"),
        "replay": _int(0, low=0, doc="replay buffer size (0 = on-policy)"),
        "log_z_init": _choice(
            LogZInit.AUTO, *LogZInit, doc="log Z starts at the first batch's estimate, or at 0"
        ),
        "scoring": _choice(
            Scoring.TRAJECTORY, *Scoring, doc="exact trajectory or order-free score (Mask)"
        ),
    },
    ObjectiveKind.POLICY_GRADIENT: {
        "clip": _num(1e-4, doc="PPO clip range"),
        "epochs": _int(2, doc="inner epochs per sampled batch"),
        "kl": _num(0.0, open_low=False, doc="KL penalty to the prior"),
        "advantage": _choice(Advantage.BATCH, *Advantage, doc="advantage normalisation"),
        "group": _int(8, low=2, doc="samples per group with advantage = group (GRPO)"),
        "scoring": _choice(
            Scoring.TRAJECTORY, *Scoring, doc="exact trajectory or order-free score (Mask)"
        ),
    },
}

#: Options of the ``train { … }`` block (``dtg train --set KEY=VALUE`` overrides them).
TRAIN_OPTIONS: dict[str, OptionSpec] = {
    "steps": _int(2000, doc="optimisation steps"),
    "batch": _int(256, doc="batch size"),
    "lr": _num(1e-3, high=_MAX_LR, doc="learning rate (Adam)"),
    "seed": _int(0, low=0, doc="random seed"),
    "grad_clip": _num(1.0, doc="gradient norm clip (0 disables)", open_low=False),
    "checkpoint_every": _int(1000, doc="steps between checkpoints"),
    "log_every": _int(50, doc="steps between metric lines"),
    "warmup": _int(0, low=0, doc="linear learning-rate warm-up steps"),
    "ema": _num(0.0, open_low=False, high=1.0, doc="EMA decay of the weights (0 = off)"),
    "shards": _int(0, low=0, doc="random-stream shards per batch (0 = the number of processes)"),
    "eval_every": _int(0, low=0, doc="steps between held-out evaluations (0 = off)"),
    "eval_examples": _int(500, doc="held-out examples per evaluation (a fixed subset)"),
    "eval_levels": _int(
        0, low=0, doc="levels scored per held-out example, weighted T/K (0 = every level)"
    ),
    "keep_best": OptionSpec(
        False, "bool", doc="keep the best held-out checkpoint as best.pt (with eval_every)"
    ),
    "train_size": _int(0, low=0, doc="training examples used, a fixed random subset (0 = all)"),
    "precision": _choice(
        Precision.FP32, *Precision, doc="the nets' arithmetic in training (bf16, fp16: autocast)"
    ),
    "compile": OptionSpec(False, "bool", doc="run the nets through torch.compile in training"),
}

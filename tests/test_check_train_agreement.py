"""``dtg check`` and ``dtg train`` agree (issue 19): every objective option that training refuses,
the checker refuses first, with its location.

For each channel family (Gaussian destruction with a ``Guess``, a learned Normal chain, ``Mask``,
``MashLast``, ``Shuffle``, samplers of real vectors and of tokens, a sampler whose destruction has
a net, fine-tuning of a Gaussian and of a masked model), each objective kind of
:data:`dtg.ir.options.OBJECTIVE_OPTIONS` is written into a tiny model, first with its defaults,
then with each option set to each of its values and to edge and invalid ones. Each text is
either refused by the checker with a span, or it compiles, trains two steps (batch 4) and samples
without any exception. The default suite runs every option value once per family the objective
fits; the slow sweep also runs pairs of options.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path

import pytest
import torch

import dtg
from dtg.errors import DtgRuntimeError
from dtg.ir.options import OBJECTIVE_OPTIONS, OptionSpec, OptionValueError, check_option
from dtg.objectives.balance import subtb_loss
from dtg.objectives.finetune import ppo_clip_loss
from dtg.objectives.trajectories import Trajectories, clip_residuals
from dtg.runtime import train

_DENOISE = """
model m {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 3
  schedule beta(t) = 0.1
  net eps : (real[2], time) -> real[2] = mlp(hidden = [8])
  destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  OBJECTIVE
}
"""
_MASK = """
model m {
  data x : token(17)[64] ~ digits()
  steps T = 2
  schedule alpha(t) = 1 - t/T
  net logits : (token(17)[64], time) -> real[64, 17] = mlp(hidden = [8])
  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(t) / alpha(t-1))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  OBJECTIVE
}
"""
_CHILD = """
model c extends m {
  reward REWARD
  OBJECTIVE
}
"""
#: One tiny model per channel family; ``OBJECTIVE`` is replaced by the objective statement.
FAMILIES: dict[str, str] = {
    "gaussian guess": _DENOISE,
    "normal chain": """
model m {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 1
  net enc : (real[2]) -> real[4] = mlp(hidden = [8])
  net dec : (real[2]) -> real[2] = mlp(hidden = [8])
  destroy  x[t]   ~ Normal(enc(x[t-1])[0:2], exp(0.5 * enc(x[t-1])[2:4]))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Normal(dec(x[t]), 0.2)
  OBJECTIVE
}
""",
    "mask": _MASK,
    "mashlast": """
model m {
  data x : token(3)[3] ~ categorical(probs = [0.6, 0.3, 0.1])
  steps T = 3
  net logits : (token(3)[3]) -> real[3, 3] = transformer(width = 8, depth = 1, heads = 2,
                                                         causal = true)
  destroy  x[t]   = MashLast(x[t-1])
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  OBJECTIVE
}
""",
    "shuffle": """
model m {
  data x : token(3)[1] ~ categorical(probs = [0.6, 0.3, 0.1])
  steps T = 2
  net logits : (token(3)[1], time) -> real[1, 3] = mlp(hidden = [8])
  destroy  x[t]   ~ Shuffle(x[t-1], keep = 1/2)
  generate x[T]   ~ Categorical(logits = 0)
  generate x[t-1] ~ Guess(x[t], logits)
  OBJECTIVE
}
""",
    "sampler": """
model m {
  space x : real[2]
  steps T = 3
  reward logr(x) = gmm25(x)
  schedule s(t) = (T - t) / (T - t + 1)
  net drift : (real[2], time) -> real[2] = mlp(hidden = [8])
  generate x[T]   = 0
  generate x[t-1] ~ Normal(x[t] + drift(x[t], t) / T, sqrt(5 / T))
  destroy  x[t]   ~ Normal(s(t) * x[t-1], sqrt(5 / T * s(t)))
  OBJECTIVE
}
""",
    "sampler, learned destruction": """
model m {
  space x : real[2]
  steps T = 3
  reward logr(x) = gmm25(x)
  schedule s(t) = (T - t) / (T - t + 1)
  net drift : (real[2], time) -> real[2] = mlp(hidden = [8])
  net back  : (real[2], time) -> real[2] = mlp(hidden = [8], zero_init = true)
  generate x[T]   = 0
  generate x[t-1] ~ Normal(x[t] + drift(x[t], t) / T, sqrt(5 / T))
  destroy  x[t]   ~ Normal(s(t) * x[t-1] * (1 + 0.1 * tanh(back(x[t-1], t))), sqrt(5 / T * s(t)))
  OBJECTIVE
}
""",
    "token sampler": """
model m {
  space x : token(17)[64]
  steps T = 2
  reward even(x) = classify(x, classes = [0, 2, 4, 6, 8])
  schedule alpha(t) = 1 - t/T
  net logits : (token(17)[64], time) -> real[64, 17] = mlp(hidden = [8])
  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(t) / alpha(t-1))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  OBJECTIVE
}
""",
    "fine-tuning gaussian": _DENOISE.replace("OBJECTIVE", "objective denoising")
    + _CHILD.replace("REWARD", "r(p) = -sum(p^2)"),
    "fine-tuning mask": _MASK.replace("OBJECTIVE", "objective masking")
    + _CHILD.replace("REWARD", "even(x) = classify(x, classes = [0, 2, 4, 6, 8])"),
}


def values(spec: OptionSpec, more: bool = False) -> list[str]:
    """The valid values of an option, its edges and invalid ones, as ``.dtg`` text.

    :param more: also the values between (the slow sweep).
    """
    if spec.kind == "choice":
        return [*spec.choices, "bogus", "1"]
    if spec.kind == "bool":
        return ["true", "false", "1", "bogus"]
    if spec.kind == "int":
        return ["0", "1", "-1", "1.5", "100", "1e30", "true"] + (["2", "1000"] if more else [])
    found = ["0", "-1", "1e-9", "1", "1e300", "true", "bogus"]
    if spec.high is not None:
        found += [f"{spec.high:g}", f"{spec.high * 1.5:g}"]
    return found + (["0.5", "2", "1e6", "1e30"] if more else [])


def variants(objective: str, more: bool = False) -> list[str]:
    """The option lists to write after ``objective``: none (the defaults), each option at each of
    its values, and (``more``) each two options at the extremes of their valid values."""
    specs = next(s for k, s in OBJECTIVE_OPTIONS.items() if k.value == objective)
    out = [""] + [f"({n} = {v})" for n, spec in specs.items() for v in values(spec, more)]
    if more:
        for (a, sa), (b, sb) in itertools.combinations(specs.items(), 2):
            for va, vb in itertools.product(_extremes(sa), _extremes(sb)):
                out.append(f"({a} = {va}, {b} = {vb})")
    return out


def _extremes(spec: OptionSpec) -> list[str]:
    """The first and last of an option's values that its table accepts."""
    valid = []
    for text in values(spec, True):
        try:
            check_option(spec, _literal(text))
        except OptionValueError:
            continue
        valid.append(text)
    return sorted({valid[0], valid[-1]})


def _literal(text: str) -> bool | int | float | str:
    """A value as the checker reads the literal ``text``."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


#: A number this large may make float32 training overflow, as a learning rate of 1e5 does: such a
#: run may stop at the loss and gradient check ("training stopped at step N: the loss became
#: inf"), a divergence the checker cannot foresee in general, and never with another error.
HUGE = 1e6
#: Disagreements left to the owners of other modules (reported), by objective and option text.


def _huge(options: str) -> bool:
    numbers = re.findall(r"= (-?[0-9.]+(?:e[+-]?[0-9]+)?)", options)
    return any(abs(float(n)) >= HUGE for n in numbers)


def agree(family: str, objective: str, options: str, out: Path) -> str:
    """Check the model; if the checker takes it, compile, train 2 steps (batch 4) and sample.

    :returns: ``"refused"`` (by the checker, with a span), ``"trained"`` or ``"diverged"`` (a
        huge value, stopped by the loss and gradient check).
    :raises AssertionError: for a refusal without a span, or non-finite samples.
    :raises Exception: whatever training raised otherwise (a disagreement).
    """
    text = FAMILIES[family].replace("OBJECTIVE", f"objective {objective}{options}")
    try:
        program = dtg.loads(text)
    except dtg.DtgError as error:
        assert error.span is not None, f"refused without a location: {error}"
        return "refused"
    model = program.compile("cpu", model=program.models[-1].name)
    try:
        train(model, steps=2, batch=4, out=out, progress=False)
    except DtgRuntimeError as error:
        if _huge(options) and error.message.startswith("training stopped at step"):
            return "diverged"
        raise
    samples = model.sample(2)
    if samples.is_floating_point():
        assert bool(torch.isfinite(samples).all()), "non-finite samples"
    return "trained"


def sweep(family: str, objective: str, more: bool, tmp_path: Path) -> Counter:
    """Every variant of ``objective`` on ``family``; the outcomes, or an assertion listing each
    disagreement (an exception from training what the checker took)."""
    outcomes: Counter = Counter()
    disagreements = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for number, options in enumerate(variants(objective, more)):
            try:
                outcome = agree(family, objective, options, tmp_path / str(number))
            except Exception as error:  # noqa: BLE001 - every exception is a disagreement
                first = str(error).strip().splitlines()[0][:200]
                disagreements.append(f"{objective}{options}: {type(error).__name__}: {first}")
                outcome = "disagreed"
            outcomes[outcome] += 1
            if number == 0 and outcome == "refused":
                break  # the objective does not fit the family: its options are not reached
    finally:
        torch.set_num_threads(threads)
    assert not disagreements, f"{family}: checked, then training failed:\n" + "\n".join(
        disagreements
    )
    return outcomes


PAIRS = [(family, kind.value) for family in FAMILIES for kind in OBJECTIVE_OPTIONS]


@pytest.mark.parametrize("family, objective", PAIRS, ids=[f"{f}: {o}" for f, o in PAIRS])
def test_check_refuses_what_train_would(family: str, objective: str, tmp_path: Path) -> None:
    sweep(family, objective, False, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("family, objective", PAIRS, ids=[f"{f}: {o}" for f, o in PAIRS])
def test_pairs_of_options_and_values_between(family: str, objective: str, tmp_path) -> None:
    sweep(family, objective, True, tmp_path)


def test_every_family_trains_with_some_objective(tmp_path: Path) -> None:
    """The sweep is not vacuous: each family has an objective the checker takes and that
    trains, and each objective trains on some family."""
    trained: dict[str, list[str]] = {family: [] for family in FAMILIES}
    for family, objective in PAIRS:
        if agree(family, objective, "", tmp_path / f"{family}-{objective}") == "trained":
            trained[family].append(objective)
    assert all(trained.values()), trained
    assert {o for found in trained.values() for o in found} == {k.value for k in OBJECTIVE_OPTIONS}


def test_continuous_time_on_mashlast_and_shuffle_is_refused_where_written() -> None:
    """The case issue 19 names: ``masking(time = continuous)`` passed check and failed in train."""
    for family in ("mashlast", "shuffle"):
        text = FAMILIES[family].replace("OBJECTIVE", "objective masking(time = continuous)")
        with pytest.raises(dtg.DtgError, match="time = continuous") as caught:
            dtg.loads(text)
        span = caught.value.span  # the option itself is underlined
        line = text.splitlines()[span.line - 1]
        assert line[span.column - 1 : span.end_column - 1] == "time = continuous", line


# The runtime fixes the sweep led to (each failed with an exception before; issue 19).
def _trajectories(batch: int, steps: int) -> Trajectories:
    g = torch.Generator().manual_seed(0)
    return Trajectories(
        [torch.zeros(batch, 1)] * (steps + 1),
        torch.randn(batch, generator=g),
        torch.randn(batch, steps, generator=g),
        torch.randn(batch, steps, generator=g),
        torch.randn(batch, generator=g),
    )


def test_subtb_weights_of_extreme_lambdas_are_the_limits() -> None:
    """λ^(j−i) is normalised in log space: λ = 1e300 (λ^4 overflowed: NaN) weighs only the whole
    trajectory, a λ whose powers underflow (0/0 before) weighs the one-step segments equally."""
    traj = _trajectories(3, 4)
    flows = torch.randn(3, 5, generator=torch.Generator().manual_seed(2))
    forward = flows[:, 4] + traj.log_pf.sum(1)
    backward = flows[:, 0] + traj.log_pb.sum(1)
    whole = (forward - backward) ** 2
    assert torch.allclose(subtb_loss(flows, traj, 1e300), whole, rtol=1e-5)
    steps = flows[:, 1:] + traj.log_pf - flows[:, :-1] - traj.log_pb
    one_step = (steps**2).mean(1)
    assert torch.allclose(subtb_loss(flows, traj, 1e-30), one_step, rtol=1e-5)
    assert torch.allclose(subtb_loss(flows, traj, 1e-30), subtb_loss(flows, traj, 1, True))


def test_a_clip_beyond_float32_clips_nothing() -> None:
    """``clip = 1e300`` was "value cannot be converted to type float without overflow"."""
    per = torch.tensor([1.0, 3e38, 5.0])
    assert torch.equal(clip_residuals(per, 1e300), per)
    assert torch.equal(clip_residuals(per, 2.0), torch.tensor([1.0, 2.0, 2.0]))
    assert torch.equal(clip_residuals(per, None), per)
    ratio = torch.log(torch.tensor([[0.5, 2.0]]))
    loss = ppo_clip_loss(ratio, torch.zeros(1, 2), torch.ones(1), 1e300)
    assert float(loss) == pytest.approx(-1.25)  # unclipped: −mean(0.5, 2)

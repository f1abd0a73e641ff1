"""Kernels for single levels (``destroy x[1] ~ …``): the hierarchical VAE 64 → 16 → 4.

The ELBO of the compiled model is compared with one written out by hand with the same nets and
the same noise draws; the checker's completeness, duplicate and level rules each have a case.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import EXAMPLES

import dtg
from dtg.check.symbolic import T_SYMBOL
from dtg.errors import DtgError
from dtg.ir.dump import dump_ir

HVAE = """
model hvae {{
  data x : real[64] ~ digits()
  steps T = 2
  net enc1 : (real[64]) -> real[32] = mlp(hidden = [32])
  net enc2 : (real[16]) -> real[8] = mlp(hidden = [16])
  net dec2 : (real[4]) -> real[32] = mlp(hidden = [16])
  net dec1 : (real[16]) -> real[64] = mlp(hidden = [32])
  destroy  x[1] ~ Normal(enc1(x[0])[0:16], exp(0.5 * enc1(x[0])[16:32]))
  destroy  x[2] ~ Normal(enc2(x[1])[0:4], exp(0.5 * enc2(x[1])[4:8]))
  generate x[T] ~ Normal(0, 1)
  generate x[1] ~ Normal(dec2(x[2])[0:16], exp(0.5 * dec2(x[2])[16:32]))
  generate x[0] ~ Normal(dec1(x[1]), 0.2)
  {extra}
  objective {objective}
}}
"""

MIXED = """
model mixed {
  data x : real[2] ~ moons(n = 100)
  steps T = 3
  net enc : (real[2]) -> real[2] = mlp(hidden = [16])
  net mu : (real[1], time) -> real[1] = mlp(hidden = [16])
  net dec : (real[1]) -> real[2] = mlp(hidden = [16])
  destroy  x[1]   ~ Normal(enc(x[0])[0:1], exp(0.5 * enc(x[0])[1:2]))
  destroy  x[t]   ~ Normal(0.9 * x[t-1], 0.3)
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Normal(mu(x[t], t), 0.3)
  generate x[0]   ~ Normal(dec(x[1]), 0.2)
  objective elbo
}
"""


def hvae(extra: str = "", objective: str = "elbo", replace: tuple[str, str] = ("", "")) -> str:
    return HVAE.format(extra=extra, objective=objective).replace(*replace)


def log_normal(value: torch.Tensor, mean: torch.Tensor, std) -> torch.Tensor:
    """log N(value; mean, std²) summed over the last axis, in float64, from the formula."""
    value, mean = value.double(), mean.double()
    std = torch.as_tensor(std).double()
    z = (value - mean) / std
    return (-0.5 * z**2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)


def hand_written_terms(model, x: torch.Tensor, seed: int):
    """(−log p(x|z1) [B], KL_1 [B], KL_2 [B]) of the 64 → 16 → 4 model, written out."""
    nets = model.nets
    torch.manual_seed(seed)
    noise1, noise2 = torch.randn(x.shape[0], 16), torch.randn(x.shape[0], 4)  # x[1], then x[2]
    h1 = nets["enc1"](x)
    m1, s1 = h1[:, :16], torch.exp(0.5 * h1[:, 16:32])
    z1 = m1 + s1 * noise1
    h2 = nets["enc2"](z1)
    m2, s2 = h2[:, :4], torch.exp(0.5 * h2[:, 4:8])
    z2 = m2 + s2 * noise2
    g2 = nets["dec2"](z2)
    rec = -log_normal(x, nets["dec1"](z1), 0.2)
    kl1 = log_normal(z1, m1, s1) - log_normal(z1, g2[:, :16], torch.exp(0.5 * g2[:, 16:32]))
    kl2 = log_normal(z2, m2, s2) - log_normal(z2, torch.zeros_like(z2), 1.0)
    return rec, kl1, kl2


@pytest.fixture
def model(one_thread):
    torch.manual_seed(0)
    return dtg.loads(hvae()).compile(device="cpu")


def test_each_level_has_its_own_space_and_kernel() -> None:
    ir = dtg.loads(hvae()).model()
    assert [tuple(ir.message.space_at(k).shape) for k in range(3)] == [(64,), (16,), (4,)]
    assert [ir.destroy_at(k).nets for k in (1, 2)] == [("enc1",), ("enc2",)]
    assert [ir.generate_at(k).nets for k in (1, 2)] == [("dec1",), ("dec2",)]
    assert ir.per_level and "x[1] : real[16], x[2] : real[4]" in dump_ir(ir)


def test_elbo_equals_the_hand_written_one(model) -> None:
    x = torch.rand(32, 64, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    nelbo = model.nelbo(x)
    with torch.no_grad():
        rec, kl1, kl2 = hand_written_terms(model, x, 5)
    # float32 nets: agreement to float32 rounding of terms of a few hundred nats
    assert float((nelbo.double() - (rec + kl1 + kl2)).abs().max()) < 1e-3
    torch.manual_seed(5)
    kl = model.per_level_kl(x)
    assert kl["kl_level_1"] == pytest.approx(kl1.mean().item(), abs=1e-4)
    assert kl["kl_level_2"] == pytest.approx(kl2.mean().item(), abs=1e-4)


def hand_written_float64(model, x: torch.Tensor, seed: int):
    torch.set_default_dtype(torch.float64)  # the noise drawn in float64, as the model's
    try:
        return hand_written_terms(model, x, seed)
    finally:
        torch.set_default_dtype(torch.float32)


def test_elbo_and_its_gradient_in_float64_equal_the_hand_written_ones(model) -> None:
    model = model.double()
    x = torch.rand(32, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.manual_seed(9)
    loss = model.loss(x)
    loss.backward()
    got = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    reference = sum(hand_written_float64(model, x, 9)).mean()
    assert abs(float(loss.detach()) - float(reference.detach())) < 1e-5
    reference.backward()
    assert len(got) == 16  # four nets, two layers each, weights and biases
    for name, p in model.named_parameters():
        assert torch.allclose(got[name], p.grad, rtol=1e-9, atol=1e-9), name


def test_the_hvae_trains_and_samples_each_level(model) -> None:
    x = torch.rand(64, 64, generator=torch.Generator().manual_seed(3))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = model.loss(x)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < first
    assert model.sample(5).shape == (5, 64)


def test_a_template_covers_the_levels_without_their_own(one_thread) -> None:
    torch.manual_seed(0)
    model = dtg.loads(MIXED).compile(device="cpu")
    ir = model.ir
    assert [tuple(ir.message.space_at(k).shape) for k in range(4)] == [(2,), (1,), (1,), (1,)]
    assert ir.destroy_at(2) is ir.destroy_at(3) is ir.destroy and ir.destroy_at(1).nets == ("enc",)
    assert ir.generate_at(1).nets == ("dec",) and ir.generate_at(3).nets == ("mu",)
    assert ir.marginals == {}  # the chain has no closed form
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    model = model.double()
    torch.manual_seed(3)
    nelbo = model.nelbo(x)
    # By hand: level 1 by enc; levels 2, 3 by N(0.9 x, 0.3²); generation by dec, mu, N(0, 1).
    torch.manual_seed(3)
    with torch.no_grad():
        noise = [torch.randn(16, 1, dtype=torch.float64) for _ in range(3)]
        h = model.nets["enc"](x)
        z = [x, h[:, :1] + torch.exp(0.5 * h[:, 1:2]) * noise[0]]
        z += [0.9 * z[1] + 0.3 * noise[1]]
        z += [0.9 * z[2] + 0.3 * noise[2]]
        log_q = log_normal(z[1], h[:, :1], torch.exp(0.5 * h[:, 1:2]))
        log_q = log_q + log_normal(z[2], 0.9 * z[1], 0.3) + log_normal(z[3], 0.9 * z[2], 0.3)
        mu = model.nets["mu"]
        log_p = log_normal(z[3], torch.zeros_like(z[3]), 1.0)
        for t in (3, 2):
            time = torch.full((16,), t / 3, dtype=torch.float64)
            log_p = log_p + log_normal(z[t - 1], mu(z[t], time), 0.3)
        log_p = log_p + log_normal(x, model.nets["dec"](z[1]), 0.2)
    assert torch.allclose(nelbo, log_q - log_p, atol=1e-9)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (hvae(replace=("  destroy  x[2] ~ Normal(enc2(x[1])[0:4], exp(0.5 * enc2(x[1])[4:8]))\n", "")),
         "x[2] has no destroy kernel"),
        (hvae(replace=("  generate x[1] ~ Normal(dec2(x[2])[0:16], exp(0.5 * dec2(x[2])[16:32]))\n", "")),
         "x[1] has no generation kernel"),
        (hvae("destroy x[T-1] ~ Normal(0, 1)"), "kernel of x[1] given twice"),
        (hvae("destroy x[3] ~ Normal(0, 1)"), "destroy x[3] is outside the chain"),
        (hvae("destroy x[0] ~ Normal(0, 1)"), "destroy x[0] is outside the chain"),
        (hvae("generate x[2] ~ Normal(0, 1)"), "generation start given twice"),
        (hvae(replace=("enc2(x[1])[0:4],", "enc2(x[0])[0:4],")), "may read x[1] only"),
        (hvae(replace=("dec2(x[2])[0:16],", "dec2(x[2])[0:8],")), "the mean is real[8], but x[1] is real[16]"),
        (hvae(replace=("destroy  x[2] ~ Normal", "destroy  x[2] = Normal")), "must be random"),
        (hvae(replace=("exp(0.5 * enc2(x[1])[4:8])", "-1")), "must be positive"),
        (hvae("generate x[t-1] ~ Normal(0, 1)"), "the template generate x[t-1] covers no level"),
        (hvae("destroy x[t] ~ Normal(x[t-1], 1)"), "the template destroy x[t] covers no level"),
    ],
)  # fmt: skip
def test_level_mistakes_are_located_errors(source: str, message: str) -> None:
    with pytest.raises(DtgError) as caught:
        dtg.loads(source)
    assert message in str(caught.value)
    assert caught.value.span is not None


@pytest.mark.parametrize("objective", ["denoising", "masking", "trajectory_balance"])
def test_other_objectives_refuse_per_level_kernels(objective: str) -> None:
    source = hvae(objective=objective)
    with pytest.raises(DtgError) as caught:
        dtg.loads(source)
    text = str(caught.value)
    rows = source.splitlines()
    first = next(n for n, row in enumerate(rows, 1) if row.strip().startswith("destroy  x[1]"))
    assert f"kernels of their own (line {first})" in text and "elbo trains per-level" in text
    line = next(n for n, row in enumerate(rows, 1) if row.strip().startswith("objective"))
    assert caught.value.span.line == line


def test_a_template_that_cannot_cover_a_level_says_which() -> None:
    source = MIXED.replace(
        "destroy  x[1]   ~ Normal(enc(x[0])[0:1], exp(0.5 * enc(x[0])[1:2]))",
        "destroy  x[2]   ~ Normal(enc(x[1])[0:1], exp(0.5 * enc(x[1])[1:2]))",
    )
    with pytest.raises(DtgError) as caught:
        dtg.loads(source)
    text = str(caught.value)
    assert "the template cannot cover this level: x[2] is real[1] (set by destroy x[2]" in text
    assert "destroy x[3] ~" in text  # the hint: give x[3] a kernel of its own
    assert caught.value.span.line == 9  # the template


def test_the_example_checks_and_is_formatted() -> None:
    program = dtg.load(EXAMPLES / "hvae_digits.dtg")
    ir = program.model()
    assert [ir.message.space_at(k).size for k in range(3)] == [64, 16, 4]
    assert ir.objective.kind.value == "elbo"
    shown = repr(ir)
    assert "T = 2 (real[64] → real[16] → real[4])" in shown
    assert (
        "destroy Normal [enc1] | Normal [enc2]" in shown
        and "Normal [dec1] | Normal [dec2]" in shown
    )


CATEGORICAL_TEMPLATE = """
model cat {
  data x : token(3)[4] ~ categorical(probs = [0.2, 0.3, 0.5], n = 100)
  steps T = 2
  net enc : (token(3)[4]) -> real[2] = mlp(hidden = [8])
  net dec : (real[2]) -> real[4, 3] = mlp(hidden = [8])
  destroy  x[1]   ~ Normal(enc(x[0]), 0.5)
  destroy  x[2]   ~ Normal(0.5 * x[1], 0.5)
  generate x[T]   ~ Normal(0, 1)
  generate x[1]   ~ Normal(0.5 * x[2], 0.5)
  generate x[t-1] ~ Categorical(dec(x[t]))
  objective elbo
}
"""


def test_a_token_x0_takes_its_own_categorical_not_a_template() -> None:
    with pytest.raises(DtgError) as caught:
        dtg.loads(CATEGORICAL_TEMPLATE)
    assert "the generation template must be a Normal, not Categorical" in str(caught.value)
    fixed = CATEGORICAL_TEMPLATE.replace(
        "generate x[t-1] ~ Categorical(dec(x[t]))", "generate x[0] ~ Categorical(dec(x[1]))"
    )
    torch.manual_seed(0)
    model = dtg.loads(fixed).compile("cpu")
    samples = model.sample(5)
    assert samples.shape == (5, 4) and samples.dtype == torch.long and int(samples.max()) < 3
    x = torch.randint(0, 3, (8, 4), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(model.nelbo(x)).all()


NEGATIVE_TEMPLATE_STD = MIXED.replace(
    "destroy  x[t]   ~ Normal(0.9 * x[t-1], 0.3)",
    "destroy  x[t]   ~ Normal(0.9 * x[t-1], 0.1 * (2.5 - t))",
).replace(
    "generate x[t-1] ~ Normal(mu(x[t], t), 0.3)",
    "generate x[t-1] ~ Normal(mu(x[t], t), 0.3)\n  destroy  x[3] ~ Normal(0.5 * x[2], 0.1)",
)


def test_a_templates_std_is_checked_on_the_middle_levels_it_covers() -> None:
    with pytest.raises(DtgError) as caught:  # level 2 only: 0.1 · (2.5 − 2) > 0 … at t = 3 < 0
        dtg.loads(NEGATIVE_TEMPLATE_STD.replace("2.5 - t", "1.5 - t"))
    assert "std = -0.05 at level t = 2" in str(caught.value)
    ir = dtg.loads(NEGATIVE_TEMPLATE_STD).model()  # 0.05 at t = 2; t = 3 has its own kernel
    assert ir.destroy_at(2) is ir.destroy and ir.destroy_at(3) is not ir.destroy


def test_a_levels_own_std_is_checked_at_its_level_only() -> None:
    own = hvae(replace=("exp(0.5 * enc2(x[1])[4:8])", "0.1 * (t - 1)"))
    std = dtg.loads(own).model().destroy_at(2).params["std"]  # 0.1 · (t − 1): 0 at t = 1 only
    assert float(std.subs(T_SYMBOL, 2)) == pytest.approx(0.1)
    with pytest.raises(DtgError) as caught:
        dtg.loads(hvae(replace=("exp(0.5 * enc2(x[1])[4:8])", "0.1 * (t - 2)")))
    assert "is 0 at level t = 2" in str(caught.value)
    point = (
        hvae(replace=("exp(0.5 * enc2(x[1])[4:8])", "0"))
        .replace("generate x[T] ~ Normal(0, 1)", "generate x[T] = 0")
        .replace("enc2(x[1])[0:4]", "0 * enc2(x[1])[0:4]")
    )
    torch.manual_seed(0)
    model = dtg.loads(point).compile("cpu")  # a deterministic last step into the point 0
    assert torch.isfinite(model.nelbo(torch.rand(4, 64))).all()


def test_a_generation_template_that_cannot_cover_a_level_names_both() -> None:
    text = hvae(replace=("  generate x[0] ~ Normal(dec1(x[1]), 0.2)\n", "")).replace(
        "generate x[1] ~ Normal(dec2(x[2])[0:16], exp(0.5 * dec2(x[2])[16:32]))",
        "generate x[t-1] ~ Normal(dec1(x[t]), 0.2)",
    )
    with pytest.raises(DtgError) as caught:
        dtg.loads(text)
    text = str(caught.value)
    assert "cannot cover both x[1] → x[0] (real[16] → real[64]) and x[2] → x[1]" in text


def test_a_child_cannot_respell_its_parents_level() -> None:
    parent = hvae().replace("model hvae", "model par")
    child = "model child extends par {\n  destroy x[T-1] ~ Normal(enc1(x[0])[0:16], 0.2)\n}\n"
    with pytest.raises(DtgError) as caught:
        dtg.loads(parent + child)
    assert "cannot replace the kernel of x[1] that its parent defines" in str(caught.value)

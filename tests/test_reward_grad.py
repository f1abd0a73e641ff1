"""``grad(logr, x[t])``: the reward's gradient in a kernel (the Langevin parametrisation).

The gradients of the built-in targets are compared with their closed forms written out here,
a plug-in reward's with central finite differences; the clip, the zeroing of non-finite
entries, the checker's refusals and a zero TB residual for an exact reverse chain written with
``grad`` complete it.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pyro
import pytest
import torch
from conftest import ROOT
from pyro.infer import Trace_ELBO

import dtg
from dtg import plugins
from dtg.backends.pyro_source import emit_pyro
from dtg.backends.torch.expr import Env
from dtg.errors import DtgError
from dtg.ir.expr import RewardGrad, walk
from dtg.ir.printer import to_text
from dtg.objectives.balance import tb_loss

SAMPLER = """
model lp {{
  space x : real[{dim}]
  steps T = 4
  reward logr(x) = {reward}
  net drift : (real[{dim}], time) -> real[{dim}] = mlp(hidden = [8], zero_init = true)
  net scale : (time) -> real = mlp(hidden = [8], zero_init = true, out_bias = 0.01)
  generate x[T]   = 0
  generate x[t-1] ~ Normal(x[t] + drift(x[t], t) + scale(t) * {grad}, 0.5)
  destroy  x[t]   ~ Normal((T - t) / (T - t + 1) * x[t-1], sqrt(0.25 * (T - t) / (T - t + 1)))
  objective trajectory_balance
}}
"""


def gradient_of(reward: str, dim: int, x: torch.Tensor, grad: str = "grad(logr, x[t])"):
    """Evaluate the IR of ``grad(…)`` in the generation kernel at ``x`` (float64)."""
    model = dtg.loads(SAMPLER.format(dim=dim, reward=reward, grad=grad)).compile("cpu").double()
    mean = model.ir.generate.args["mean"]
    node = next(n for n in walk(mean) if isinstance(n, RewardGrad))
    closure = model.expr.compile(node)
    t = torch.ones(x.shape[0], dtype=torch.float64)
    return closure(Env(x.shape[0], t, {"next": x}))


def gmm25_gradient(x: np.ndarray) -> np.ndarray:
    """∇ log (1/25 Σ_k N(x; μ_k, 0.3 I)) = Σ_k w_k (μ_k − x) / 0.3."""
    means = np.array([(a, b) for a in (-10, -5, 0, 5, 10) for b in (-10, -5, 0, 5, 10)], float)
    diff = means[None] - x[:, None]  # [B, 25, 2]
    log_w = -0.5 * (diff**2).sum(-1) / 0.3
    w = np.exp(log_w - log_w.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return (w[..., None] * diff).sum(1) / 0.3


def funnel_gradient(x: np.ndarray) -> np.ndarray:
    """log p = −x0²/18 − Σ xi² e^{−x0}/2 − 9 x0/2 + c."""
    x0, rest = x[:, :1], x[:, 1:]
    d0 = -x0 / 9 + 0.5 * (rest**2).sum(1, keepdims=True) * np.exp(-x0) - 4.5
    return np.concatenate([d0, -rest * np.exp(-x0)], axis=1)


def manywell_gradient(x: np.ndarray) -> np.ndarray:
    """Σ over wells (a, b) of −a⁴ + 6a² + 0.5a − 0.5b²."""
    out = np.empty_like(x)
    a, b = x[:, 0::2], x[:, 1::2]
    out[:, 0::2] = -4 * a**3 + 12 * a + 0.5
    out[:, 1::2] = -b
    return out


@pytest.mark.parametrize(
    ("target", "dim", "closed_form", "scale"),
    [
        ("gmm25", 2, gmm25_gradient, 6.0),
        ("funnel", 10, funnel_gradient, 1.0),
        ("manywell", 32, manywell_gradient, 1.5),
    ],
)
def test_builtin_targets_gradients_equal_their_closed_forms(target, dim, closed_form, scale):
    x = torch.randn(64, dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = x * scale
    expected = np.clip(closed_form(x.numpy()), -100, 100)
    got = gradient_of(f"{target}(x)", dim, x, "grad(logr, x[t], clip = 100)").numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_a_plugin_rewards_gradient_equals_finite_differences() -> None:
    def bumpy(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(3 * x[:, 0]) * x[:, 1] - 0.25 * (x**4).sum(-1)

    dtg.register_reward("bumpy_grad_test", bumpy)
    try:
        x = torch.randn(16, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        got = gradient_of("bumpy_grad_test(x)", 2, x)
        h = 1e-6
        for i in range(2):
            step = torch.zeros(2, dtype=torch.float64)
            step[i] = h
            numeric = (bumpy(x + step) - bumpy(x - step)) / (2 * h)
            assert torch.allclose(got[:, i], numeric.clamp(-100, 100), atol=1e-6)
    finally:
        plugins.unregister_reward("bumpy_grad_test")


def test_the_clip_and_non_finite_entries() -> None:
    x = torch.tensor([[1.0, 0.0], [-2.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    # log r = 50 p0² (gradient 100 p0, clipped to ±150) − sqrt(|p1|) (its gradient is ∞ at 0)
    text = SAMPLER.format(
        dim=2, reward="50 * p[0]^2 - sqrt(abs(p[1]))", grad="grad(logr, x[t], clip = 150)"
    ).replace("reward logr(x)", "reward logr(p)")
    model = dtg.loads(text).compile("cpu").double()
    node = next(
        n for n in walk(model.ir.generate.args["mean"])
        if isinstance(n, RewardGrad)
    )  # fmt: skip
    got = model.expr.compile(node)(Env(3, torch.ones(3, dtype=torch.float64), {"next": x}))
    assert got[:, 0].tolist() == [100.0, -150.0, 0.0]
    assert got[:, 1].tolist() == [0.0, 0.0, 0.0]  # non-finite entries are zeroed


def test_the_gradient_is_detached_and_works_while_sampling() -> None:
    model = dtg.loads(SAMPLER.format(dim=2, reward="gmm25(x)", grad="grad(logr, x[t])")).compile(
        "cpu"
    )
    with torch.no_grad():
        samples = model.sample(8)
    assert samples.shape == (8, 2) and torch.isfinite(samples).all()
    traj = model.trajectory(8)
    loss = tb_loss(torch.zeros(()), traj).mean()
    loss.backward()  # no second-order terms: the gradient only feeds the nets
    assert model.nets["scale"].body[-1].bias.grad is not None


EXACT = """
model exact {
  space x : real[2]
  steps T = 10
  reward logr(x) = -0.5 * sum(x^2) - log(2 * pi)
  schedule beta(t) = 0.1
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Normal(sqrt(1 - beta(t)) * (2 * x[t] + grad(logr, x[t])), sqrt(beta(t)))
  objective trajectory_balance
}
"""


def test_a_langevin_parametrised_exact_reverse_chain_balances() -> None:
    """For N(0, I), grad log r(x) = −x, so the mean is √(1−β)·x: the exact reverse kernel."""
    model = dtg.loads(EXACT).compile("cpu").double()
    torch.manual_seed(0)
    traj = model.trajectory(256)
    delta = traj.log_start + traj.log_pf.sum(1) - traj.log_reward - traj.log_pb.sum(1)
    assert delta.abs().max().item() < 1e-5
    wrong = dtg.loads(EXACT.replace("(2 * x[t] +", "(2.1 * x[t] +")).compile("cpu").double()
    traj = wrong.trajectory(256)
    delta = traj.log_start + traj.log_pf.sum(1) - traj.log_reward - traj.log_pb.sum(1)
    assert delta.std().item() > 0.01


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (("reward logr(x) = gmm25(x)\n", ""), "this model has no reward"),
        (("grad(logr, x[t])", "grad(logq, x[t])"), "must name the model's reward 'logr', not logq"),
        (("grad(logr, x[t])", "grad(logr, x[t-1])"), "cannot be read here"),
        (("grad(logr, x[t])", "grad(logr, 2 * x[t])"), "grad is taken at a level of the message"),
        (("grad(logr, x[t])", "grad(logr, x[t], clip = -1)"), "clip must be a positive number"),
        (("grad(logr, x[t])", "grad(logr, x[t], scale = 1)"), "grad(logr, x[t]) takes"),
        (("gmm25(x)", "gmm25(x) + grad(logr, x)"), "grad cannot be used inside the reward"),
        (
            ("steps T = 4", "steps T = 4\n  schedule g(t) = sum(grad(logr, x[t]))"),
            "grad cannot be used here",
        ),
        (
            ("generate x[T]   = 0", "generate x[T]   ~ Normal(grad(logr, x[T]), 1)"),
            "grad cannot be used here",
        ),
    ],
)
def test_mistakes_are_located(replace, message) -> None:
    text = SAMPLER.format(dim=2, reward="gmm25(x)", grad="grad(logr, x[t])")
    if replace[0].startswith("reward"):
        text = (
            text.replace("  reward logr(x) = gmm25(x)\n", "")
            .replace("space x : real[2]", "data x : real[2] ~ moons()")
            .replace("trajectory_balance", "elbo")
        )
    else:
        text = text.replace(*replace)
    with pytest.raises(DtgError) as caught:
        dtg.loads(text)
    assert message in str(caught.value)
    assert caught.value.span is not None


def test_printed_and_dumped_as_written() -> None:
    text = SAMPLER.format(dim=2, reward="gmm25(x)", grad="grad(logr, x[t], clip = 10)")
    ir = dtg.loads(text).model()
    assert "scale(t) * grad(logr, x[t], clip = 10)" in to_text(ir.generate.args["mean"])
    assert math.isclose(
        next(n for n in walk(ir.generate.args["mean"]) if isinstance(n, RewardGrad)).clip,
        10.0,
    )


def test_the_emitted_pyro_source_computes_the_same_elbo(tmp_path) -> None:
    text = SAMPLER.format(dim=2, reward="gmm25(x)", grad="grad(logr, x[t], clip = 5)")
    torch.manual_seed(0)
    model = dtg.loads(text).compile("cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "emitted_lp.py"
    path.write_text(emit_pyro(model.ir))
    spec = importlib.util.spec_from_file_location("emitted_lp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.load_weights(model.state_dict())
    x = 4 * torch.randn(32, 2, generator=torch.Generator().manual_seed(2))
    losses = []
    for model_fn, guide_fn in ((module.model, module.guide), model.pyro()):
        pyro.set_rng_seed(0)
        losses.append(float(Trace_ELBO().differentiable_loss(model_fn, guide_fn, x).detach()))
    assert abs(losses[0] - losses[1]) <= 1e-5 * max(1.0, abs(losses[0])), losses
    assert "reward_grad(x_next, 5.0)" in path.read_text()


def test_the_kernel_latex_writes_nabla_log_r() -> None:
    ir = dtg.load(ROOT / "examples" / "gmm25_lp.dtg").model()
    assert (
        r"\nabla \log r\left(x_{t}\right) \operatorname{scale}\left(t\right)" in ir.generate.latex
    )


def test_a_reward_that_does_not_read_x_has_gradient_zero() -> None:
    x = torch.randn(5, 2, dtype=torch.float64)
    assert gradient_of("-1.5", 2, x).abs().max().item() == 0.0
    model = dtg.loads(SAMPLER.format(dim=2, reward="-1.5", grad="grad(logr, x[t])")).compile("cpu")
    assert torch.isfinite(model.sample(4)).all()


TOKENS = """
model tokens {
  space x : token(3)[4]
  steps T = 2
  reward logr(x) = count_twos(x)
  net f : (token(3)[4], time) -> real[4, 3] = mlp(hidden = [8])
  destroy  x[t]   ~ Shuffle(x[t-1], keep = 1/2)
  generate x[T]   ~ Categorical(logits = 0)
  generate x[t-1] ~ Categorical(logits = f(x[t], t) + sum(grad(logr, x[t])))
  objective trajectory_balance
}
"""


def test_grad_on_a_token_space_is_refused() -> None:
    dtg.register_reward("count_twos", lambda x: (x == 2).float().sum(-1))
    try:
        with pytest.raises(DtgError) as caught:
            dtg.loads(TOKENS)
    finally:
        plugins.unregister_reward("count_twos")
    assert "grad needs a real space" in str(caught.value) and caught.value.span.line == 9

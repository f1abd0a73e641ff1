"""The Pyro lowering, the ``elbo`` objective and ``--emit pyro``, checked against independent paths.

* a small DDPM: Pyro's ``Trace_ELBO`` (many vectorised particles) agrees with the closed-form
  negative ELBO of the denoising path within 4 standard errors;
* probabilistic PCA with the encoder set to the exact posterior: ELBO = log-likelihood;
* a small VAE trains through the ordinary loop;
* site names, shapes and ``is_observed`` flags; no Pyro state shared between compiled models;
* the emitted source gives the same log-densities as the in-memory lowering.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import math
import shutil

import pyro
import pytest
import torch
from conftest import EXAMPLES
from pyro import poutine
from pyro.infer import SVI, Predictive, Trace_ELBO

import dtg
from dtg.backends.pyro import ChannelDistribution, lower
from dtg.backends.pyro_source import emit_pyro
from dtg.channels.base import level_tensor
from dtg.errors import DtgRuntimeError

DDPM = """
model ddpm_small {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 20
  schedule beta(t) = 1e-3 + (0.3 - 1e-3) * (t - 1) / (T - 1)
  net eps : (real[2], time) -> real[2] = mlp(hidden = [16])
  destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps, predict = epsilon)
  objective denoising(weight = elbo)
}
"""

PPCA = """
model ppca {
  data x : real[3]
  steps T = 1
  net enc : (real[3]) -> real[4] = mlp(hidden = [])
  net dec : (real[2]) -> real[3] = mlp(hidden = [])
  destroy  x[t]   ~ Normal(enc(x[t-1])[0:2], exp(0.5 * enc(x[t-1])[2:4]))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Normal(dec(x[t]), 0.5)
  objective elbo
}
"""

MASKED = """
model masked_small {
  data x : token(4)[5]
  steps T = 5
  schedule alpha(t) = 1 - t/T
  net logits : (token(4)[5], time) -> real[5, 4] = mlp(hidden = [16])
  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(t) / alpha(t-1))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective elbo
}
"""


@pytest.fixture(autouse=True)
def one_thread():
    """Small nets run fastest on one thread (and do not fight other processes for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_vae(hidden: int = 64, latent: int = 8) -> str:
    text = (EXAMPLES / "vae_digits.dtg").read_text()
    text = text.replace("[256, 256]", f"[{hidden}]").replace("real[16]", f"real[{latent}]")
    text = text.replace("real[32]", f"real[{2 * latent}]").replace("[0:16]", f"[0:{latent}]")
    return text.replace("[16:32]", f"[{latent}:{2 * latent}]")


@functools.cache
def program(source: str):
    """Parse and check once (sympy is slow); each compile builds fresh nets."""
    return dtg.loads(source, file=str(EXAMPLES / "test_pyro.dtg"))


@functools.cache
def dataset(source: str):
    return program(source).compile("cpu").dataset()


def compiled(source: str, seed: int = 0, device: torch.device | str = "cpu", **replace: str):
    for old, new in replace.items():
        source = source.replace(old, new)
    torch.manual_seed(seed)
    model = program(source).compile(device)
    if model.ir.message.source is not None:
        # loaded once per source (on the CPU), then on the model's device
        model.dataset = lambda seed=0: dataset(source).to(device)
    return model


def traces(model_fn, guide_fn, data):
    guide = poutine.trace(guide_fn).get_trace(data)
    model = poutine.trace(poutine.replay(model_fn, trace=guide)).get_trace(data)
    return model, guide


def sample_sites(trace) -> dict:
    return {
        name: site
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and name != "batch"
    }


@pytest.mark.device
def test_sites_names_shapes_and_observed_flags(device):
    m = compiled(DDPM, device=device)
    model_fn, guide_fn = m.pyro()
    x = m.dataset().train[:5]
    model, guide = traces(model_fn, guide_fn, x)
    sites = sample_sites(model)
    assert list(sites) == [f"x_{t}" for t in range(20, -1, -1)]
    assert all(tuple(s["value"].shape) == (5, 2) for s in sites.values())
    assert [s["is_observed"] for s in sites.values()] == [False] * 20 + [True]
    assert all(s["fn"].event_shape == (2,) and s["fn"].batch_shape == (5,) for s in sites.values())
    assert list(sample_sites(guide)) == [f"x_{t}" for t in range(1, 21)]
    assert all(s["value"].device == x.device for s in sites.values())
    prior = poutine.trace(model_fn).get_trace(n=3)
    assert not any(s["is_observed"] for s in sample_sites(prior).values())
    assert all(s["value"].device == x.device for s in sample_sites(prior).values())
    vae = compiled(small_vae(), device=device)
    model, guide = traces(*vae.pyro(), vae.dataset().train[:4])
    assert tuple(model.nodes["x_1"]["value"].shape) == (4, 8)
    assert tuple(model.nodes["x_0"]["value"].shape) == (4, 64)


@pytest.mark.device
def test_every_site_scores_like_its_channel(device):
    m = compiled(DDPM, device=device, **{"predict = epsilon": "predict = v_prediction, clip = 1"})
    x = m.dataset().train[:6]
    model, guide = traces(*m.pyro(), x)
    for t in range(1, 21):
        level = level_tensor(t, 6, m.device)
        new, old = (
            guide.nodes[f"x_{t}"]["value"],
            guide.nodes[f"x_{t - 1}"]["value"] if t > 1 else x,
        )
        ours = model.nodes[f"x_{t - 1}"]["fn"].log_prob(old)
        assert torch.allclose(ours, m.generate.log_prob(old, new, level), rtol=1e-5, atol=1e-4)
        ours = guide.nodes[f"x_{t}"]["fn"].log_prob(new)
        assert torch.allclose(ours, m.destroy.log_prob(new, old, level), rtol=1e-5, atol=1e-4)


@pytest.mark.device
def test_reward_is_a_factor_and_singletons_are_delta(device):
    m = dtg.load(EXAMPLES / "gmm25_learned.dtg").compile(device)
    model_fn, guide_fn = m.pyro()
    x = torch.randn(6, 2).to(device)
    model, guide = traces(model_fn, guide_fn, x)
    assert isinstance(model.nodes["x_10"]["fn"], pyro.distributions.Delta)
    factor = model.nodes["log_reward"]
    assert factor["is_observed"] and torch.allclose(factor["fn"].log_factor, m.reward_fn(x))
    assert torch.all(guide.nodes["x_10"]["value"] == 0)


@pytest.mark.device
def test_nets_are_shared_not_copied(device):
    m = compiled(DDPM, device=device)
    model_fn, _ = m.pyro()
    trace = poutine.trace(model_fn).get_trace(n=2)
    params = [site for site in trace.nodes.values() if site["type"] == "param"]
    own = {id(p) for p in m.nets["eps"].parameters()}
    assert params and {id(site["value"].unconstrained()) for site in params} == own
    store = pyro.get_param_store()
    assert all(id(store.get_param(site["name"]).unconstrained()) in own for site in params)


@pytest.mark.device
def test_trace_elbo_agrees_with_closed_form_denoising_nelbo(device):
    m = compiled(DDPM, seed=1, device=device)  # fixed random weights
    x = m.dataset().train[:64]
    model_fn, guide_fn = lower(m, register=False)
    particles, batch, repeats = 512, x.shape[0], 400
    elbo = Trace_ELBO(num_particles=particles, vectorize_particles=True, max_plate_nesting=1)
    with torch.no_grad():
        estimate = elbo.loss(model_fn, guide_fn, x) / batch
        # −log weights [P, B] of an independent draw of the same size, for the standard error
        # (the variance of each example's particles; the examples are fixed).
        plate = pyro.plate("particles", particles, dim=-2)
        model, guide = traces(plate(model_fn), plate(guide_fn), x)
        weights = sum(-s["fn"].log_prob(s["value"]) for s in sample_sites(model).values())
        weights = weights + sum(s["fn"].log_prob(s["value"]) for s in sample_sites(guide).values())
        se_pyro = float(weights.var(0).sum().sqrt()) / (batch * math.sqrt(particles))
        # The closed form: analytic KL per level at one x[t] per level, repeated.
        closed = m.nelbo(x.repeat(repeats, 1)).reshape(repeats, batch)
        se_closed = float(closed.var(0).sum().sqrt()) / (batch * math.sqrt(repeats))
    se = math.sqrt(se_pyro**2 + se_closed**2)
    reference = float(closed.mean())
    assert se < 0.01 * abs(reference)  # the check has teeth
    assert abs(estimate - reference) < 4 * se, (estimate, reference, se)


@pytest.mark.device
def test_probabilistic_pca_elbo_equals_log_likelihood(device):
    """The weights and the exact log-likelihood are made on the CPU, the model runs on
    ``device``."""
    m = compiled(PPCA, device=device)
    torch.manual_seed(3)
    sigma, d = 0.5, torch.tensor([1.5, 0.7])
    q, _ = torch.linalg.qr(torch.randn(3, 2))
    w, mu = q * d, torch.randn(3)  # orthogonal columns: WᵀW = diag(d²)
    # Exact posterior: z | x ~ N(Σ Wᵀ(x − μ)/σ², Σ) with Σ = (I + WᵀW/σ²)⁻¹, diagonal here.
    cov = 1.0 / (1.0 + d**2 / sigma**2)
    gain = cov[:, None] * w.T / sigma**2
    with torch.no_grad():
        enc, dec = m.nets["enc"].body[0], m.nets["dec"].body[0]
        enc.weight.copy_(torch.cat([gain, torch.zeros(2, 3)]))
        enc.bias.copy_(torch.cat([-gain @ mu, cov.log()]))
        dec.weight.copy_(w)
        dec.bias.copy_(mu)
    x = torch.randn(64, 3) * 2
    nll = -torch.distributions.MultivariateNormal(mu, w @ w.T + sigma**2 * torch.eye(3)).log_prob(x)
    x, nll = x.to(device), nll.to(device)
    # Sampled estimator (Trace_ELBO's terms): log p(x, z) − log q(z | x) = log p(x) for every z.
    model, guide = traces(*lower(m, register=False), x)
    weight = sum(s["fn"].log_prob(s["value"]) for s in sample_sites(model).values())
    weight = weight - guide.nodes["x_1"]["fn"].log_prob(guide.nodes["x_1"]["value"])
    assert torch.allclose(-weight, nll, atol=1e-4, rtol=1e-5)
    # The objective's estimator (T = 1: mean-field, analytic KL) is exact in expectation.
    assert m.objective.detect_analytic(x)
    repeats = 400
    with torch.no_grad():
        values = m.nelbo(x.repeat(repeats, 1)).reshape(repeats, 64)
        loss = float(m.loss(x.repeat(repeats, 1)))
    se = float(values.var(0).sum().sqrt()) / (64 * math.sqrt(repeats))
    assert m.objective.analytic and abs(float(values.mean()) - float(nll.mean())) < 4 * se
    assert abs(loss - float(nll.mean())) < 4 * se


@pytest.mark.device
def test_vae_trains_through_the_ordinary_loop(device):
    m = compiled(small_vae(), device=device)
    data = m.dataset()
    train, test = data.train, data.test[:256]
    before = float(m.nelbo(test).mean())
    opt = torch.optim.Adam(m.param_groups(2e-3))
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        batch = train[torch.randint(len(train), (128,), generator=generator)]
        loss = m.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = float(m.nelbo(test).mean())
    assert m.objective.analytic is True
    assert after < 0.25 * before, (before, after)  # about 548 -> 46 nats


def test_two_compiled_models_share_no_pyro_state():
    a, b = compiled(small_vae(), seed=1), compiled(small_vae(), seed=2)
    x = a.dataset().train[:16]
    store = pyro.get_param_store()
    keys = set(store.keys())
    a.loss(x).backward()  # the elbo objective registers nothing
    assert set(store.keys()) == keys
    names = {}
    for m in (a, b):
        model_fn, guide_fn = m.pyro()
        model, guide = traces(model_fn, guide_fn, x)
        names[m] = {n for t in (model, guide) for n, s in t.nodes.items() if s["type"] == "param"}
    assert names[a] and not names[a] & names[b]
    frozen = [p.detach().clone() for p in a.parameters()]
    svi = SVI(*b.pyro(), pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO(max_plate_nesting=1))
    before_b = [p.detach().clone() for p in b.parameters()]
    svi.step(x)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), frozen, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(b.parameters(), before_b, strict=True))


@pytest.mark.device
def test_discrete_channels_lower_with_their_own_log_prob(device):
    m = compiled(MASKED, device=device)
    x = torch.randint(4, (8, 5)).to(device)
    model_fn, guide_fn = m.pyro()
    model, guide = traces(model_fn, guide_fn, x)
    site = model.nodes["x_2"]
    assert isinstance(site["fn"], ChannelDistribution) and site["value"].dtype == torch.long
    expected = m.generate.log_prob(
        site["value"], model.nodes["x_3"]["value"], level_tensor(3, 8, m.device)
    )
    assert torch.equal(site["fn"].log_prob(site["value"]), expected)
    assert torch.all(model.nodes["x_5"]["value"] == 4)  # the all-[MASK] start
    loss = m.loss(x)
    loss.backward()
    assert torch.isfinite(loss) and m.objective.analytic is False
    assert m.nets["logits"].body[0].weight.grad is not None


@pytest.mark.device
def test_particles_and_predictive_are_vectorised(device):
    m = compiled(small_vae(), device=device, **{"objective elbo": "objective elbo(particles = 4)"})
    x = m.dataset().train[:8]
    assert torch.isfinite(m.loss(x))
    model_fn, _ = m.pyro()
    samples = Predictive(model_fn, num_samples=3, parallel=True)(n=5)
    assert tuple(samples["x_0"].shape) == (3, 5, 64) and samples["x_0"].device == x.device


def _import(path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", ["ddpm", "vae", "learned_variance", "gmm25_learned"])
def test_emitted_source_gives_the_same_log_densities(case, tmp_path):
    if case == "ddpm":
        m = compiled(DDPM)
    elif case == "vae":
        m = compiled(small_vae())
    elif case == "learned_variance":
        m = compiled(
            (EXAMPLES / "learned_variance_moons.dtg").read_text(),
            **{"64, 64": "8", "128, 128": "8"},
        )
    else:
        m = dtg.load(EXAMPLES / "gmm25_learned.dtg").compile("cpu")
    torch.manual_seed(5)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.3)  # zero-initialised nets too
    path = tmp_path / f"emitted_{case}.py"
    path.write_text(emit_pyro(m.ir))
    emitted = _import(path, f"emitted_{case}")
    emitted.load_weights(m.state_dict())
    x = m.dataset().train[:16] if m.ir.message.role == "data" else torch.randn(16, 2)
    model, guide = traces(*m.pyro(), x)
    other_guide = poutine.trace(poutine.replay(emitted.guide, trace=guide)).get_trace(x)
    other_model = poutine.trace(poutine.replay(emitted.model, trace=guide)).get_trace(x)
    for ours, theirs in ((model, other_model), (guide, other_guide)):
        assert list(sample_sites(ours)) == list(sample_sites(theirs))
        a, b = float(ours.log_prob_sum().detach()), float(theirs.log_prob_sum().detach())
        assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (a, b)


def test_emit_rejects_discrete_families_and_the_cli_writes_source(tmp_path):
    with pytest.raises(DtgRuntimeError, match="emit pyro"):
        emit_pyro(dtg.loads(MASKED).model(None))
    from dtg.cli.compile import cmd_compile

    out = tmp_path / "vae.py"
    args = argparse.Namespace(
        file=str(EXAMPLES / "vae_digits.dtg"), emit="pyro", model=None, output=str(out)
    )
    assert cmd_compile(args) == 0
    compile(out.read_text(), str(out), "exec")


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot is not installed")
def test_render_model():
    m = compiled(DDPM)
    model_fn, _ = m.pyro()
    graph = pyro.render_model(
        model_fn, model_args=(m.dataset().train[:4],), render_distributions=True
    )
    assert all(f"x_{t}" in graph.source for t in range(21)) and "batch" in graph.source

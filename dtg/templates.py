"""``dtg new``: starter ``.dtg`` files, one per model family.

Each template is a complete model with a comment header, small nets and a small training
budget, so that ``dtg new ddpm my_model.dtg`` followed by ``dtg check my_model.dtg`` works at
once. ``$name`` in a template is the model name (the new file's stem).
"""

from __future__ import annotations

import re
from string import Template

__all__ = ["TEMPLATES", "DESCRIPTIONS", "render", "check_model_name"]

_HEADER = "# Made with `dtg new {template}`; check it with `dtg check`.\n"

#: Template name → the template text (``$name`` is the model name).
TEMPLATES: dict[str, str] = {
    "ddpm": """\
# Gaussian diffusion (DDPM) on two-moons points: destruction adds Gaussian noise along a
# cosine schedule (beta clipped at 0.999, as improved-diffusion does: the cosine reaches 0 at
# t = T, where guessing the noise could not recover x[0]); generation starts from N(0, 1) and a
# net guesses the noise at each level.
model $name {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 50
  schedule abar(t) = cos(pi / 2 * (t / T + 0.008) / 1.008)^2
  schedule beta(t) = min(1 - abar(t) / abar(t - 1), 0.999)

  net eps : (real[2], time) -> real[2] = mlp(hidden = [64, 64])

  destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps, predict = epsilon)

  objective denoising(weight = simple)
  train { steps = 1000, batch = 256, lr = 2e-3 }
}
""",
    "mdlm": """\
# Masked diffusion (MDLM-style) on 8x8 digits as 64 tokens of 17 grey levels: destruction
# masks tokens, keeping each with probability alpha(t) / alpha(t-1); generation unmasks them.
model $name {
  data x : token(17)[64] ~ digits()
  steps T = 64
  schedule alpha(t) = 1 - t / T

  net logits : (token(17)[64], time) -> real[64, 17] = transformer(width = 64, depth = 2, heads = 4)

  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(t) / alpha(t - 1))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)

  objective masking
  train { steps = 500, batch = 64, lr = 1e-3 }
}
""",
    "autoregressive": """\
# An autoregressive model as destroy-then-generate: destruction masks the last unmasked
# token, so generation writes the 64 pixels of a digit left to right, one per level.
model $name {
  data x : token(17)[64] ~ digits()
  steps T = 64

  net logits : (token(17)[64], time) -> real[64, 17] = transformer(width = 64, depth = 2, heads = 4)

  destroy  x[t]   = MashLast(x[t-1])
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)

  objective masking
  train { steps = 500, batch = 64, lr = 1e-3 }
}
""",
    "sampler": """\
# A diffusion sampler for an unnormalised density (no data): generation runs from x[T] = 0
# to a sample, trained with trajectory balance against the reward logr = log density.
model $name {
  space x : real[2]
  steps T = 10
  reward logr(x) = gmm25(x)

  net drift : (real[2], time) -> real[2] = mlp(hidden = [64, 64])

  generate x[T]   = 0
  generate x[t-1] ~ Normal(x[t] + drift(x[t], t) / T, sqrt(5 / T))
  destroy  x[t]   ~ Normal((T - t) / (T - t + 1) * x[t-1], sqrt(5 / T * (T - t) / (T - t + 1)))

  objective trajectory_balance(lr_logZ = 0.1)
  train { steps = 500, batch = 128, lr = 1e-3 }
}
""",
    "vae": """\
# A variational autoencoder as a one-step destroy-then-generate model: the encoder is a
# learned destruction kernel into an 8-D latent level x[1], the decoder generates x[0].
model $name {
  data x : real[64] ~ digits()
  steps T = 1

  net enc : (real[64]) -> real[16] = mlp(hidden = [128])
  net dec : (real[8]) -> real[64] = mlp(hidden = [128])

  destroy  x[t]   ~ Normal(enc(x[t-1])[0:8], exp(0.5 * enc(x[t-1])[8:16]))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Normal(dec(x[t]), 0.2)

  objective elbo
  train { steps = 500, batch = 128, lr = 1e-3 }
}
""",
    "rtb": """\
# Fine-tuning toward a reward with relative trajectory balance (RTB). The parent, a small
# DDPM on two moons, is trained first; the child starts from it, keeps the parent's
# generation chain as a frozen prior, and learns to sample prior(x) * exp(r(x)).
# (`extends` resolves within one file, so the parent lives here too.)
model ${name}_parent {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 50
  schedule abar(t) = cos(pi / 2 * (t / T + 0.008) / 1.008)^2
  schedule beta(t) = min(1 - abar(t) / abar(t - 1), 0.999)

  net eps : (real[2], time) -> real[2] = mlp(hidden = [64, 64])

  destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps, predict = epsilon)

  objective denoising(weight = simple)
  train { steps = 1000, batch = 256, lr = 2e-3 }
}

# The reward favours points near (1, 0): a log-reward, added to the prior's log-density.
model $name extends ${name}_parent {
  reward r(x) = -sum((x - [1, 0])^2)
  objective relative_trajectory_balance(beta = 1)
  train { steps = 300, batch = 128, lr = 1e-4 }
}
""",
}

#: Template name → one line for ``dtg new --help``.
DESCRIPTIONS: dict[str, str] = {
    "ddpm": "Gaussian diffusion on 2-D points (denoising)",
    "mdlm": "masked diffusion on digit tokens (masking)",
    "autoregressive": "left-to-right generation of digit tokens (masking)",
    "sampler": "diffusion sampler for a 2-D density (trajectory balance)",
    "vae": "variational autoencoder on digits (elbo)",
    "rtb": "reward fine-tuning of a DDPM parent (relative trajectory balance)",
}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_RESERVED = {
    "model", "extends", "data", "space", "steps", "schedule", "net", "destroy", "generate",
    "reward", "objective", "train", "real", "token", "time",
}  # fmt: skip


def check_model_name(name: str) -> str:
    """Check that ``name`` can be a model name.

    :param name: the proposed name (usually a file's stem).
    :returns: ``name`` unchanged.
    :raises ValueError: with a readable reason and a suggestion.
    """
    if name in _RESERVED:
        raise ValueError(f"'{name}' is a dtg keyword and cannot name a model; pick another name")
    if not _IDENTIFIER.match(name):
        fixed = re.sub(r"[^A-Za-z_0-9]", "_", name)
        fixed = f"m_{fixed}" if not fixed or fixed[0].isdigit() else fixed
        raise ValueError(
            f"'{name}' is not a valid model name: use letters, digits and '_', not starting "
            f"with a digit (for example '{fixed}')"
        )
    return name


def render(template: str, name: str) -> str:
    """The text of a template for a model called ``name``.

    :param template: a key of :data:`TEMPLATES`.
    :param name: the model name (checked with :func:`check_model_name`).
    :returns: the ``.dtg`` source, starting with a line that says how it was made.
    :raises KeyError: for an unknown template.
    :raises ValueError: for an invalid model name.
    """
    text = TEMPLATES[template]
    check_model_name(name)
    return _HEADER.format(template=template) + Template(text).substitute(name=name)

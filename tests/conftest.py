"""Shared test helpers: paths, the golden-error harness, and the test device.

**The test device.** ``DTG_TEST_DEVICE`` (``cpu``, the default; ``cuda``; ``cuda:N``) is read
once per session. Tests marked ``@pytest.mark.device`` take the :func:`device` fixture instead of
a hard-coded ``"cpu"`` and run there: ``DTG_TEST_DEVICE=cuda python -m pytest -m device -q`` is
the GPU run. A CUDA device that is not there stops the whole run at start (exit status 4, a usage
error naming what was asked for and what was found): nothing skips the device it was asked to
run on. Collection refuses a test marked ``device`` that does not take the fixture (it would
silently stay on the CPU) and one that takes it without the mark (``-m device`` would miss it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BAD = ROOT / "tests" / "bad"

#: A 3-step sampler with a learned Normal generation chain, for fine-tuning tests: add a child.
SMALL_SAMPLER = """
model base {
  space x : real[2]
  steps T = 3
  reward r(x) = -0.5 * sum(x^2)
  schedule beta(t) = 0.2
  net f : (real[2], time) -> real[2] = mlp(hidden = [4])
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Normal(f(x[t], t), 0.5)
  objective trajectory_balance
}
"""


def moons_model(
    name: str = "tiny", beta: str = "0.1", data: str = "moons(n = 400)", train: str = ""
) -> str:
    """A 4-level Gaussian diffusion of 2-D toy data with a tiny MLP (the run-level tests' model:
    held-out curves, compare, export); ``train`` goes inside ``train { batch = 16, … }``."""
    return f"""model {name} {{
  data x : real[2] ~ {data}
  steps T = 4
  schedule beta(t) = {beta}
  net eps : (real[2], time) -> real[2] = mlp(hidden = [16])
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising(weight = elbo)
  train {{ batch = 16, {train} }}
}}
"""


# ----------------------------------------------------------------------------- the test device

#: The environment variable naming the device of the ``device`` tests, and what it accepts.
DEVICE_VARIABLE = "DTG_TEST_DEVICE"
ACCEPTED_DEVICES = "cpu (the default), cuda or cuda:N"
_DEVICE_NAME = re.compile(r"cpu|cuda(:\d+)?")
_session_device: str = "cpu"


def test_device_name(environ: dict[str, str] | None = None) -> str:
    """The device ``DTG_TEST_DEVICE`` names (``cpu`` when unset or empty), checked for form only.

    :raises pytest.UsageError: for anything but ``cpu``, ``cuda`` or ``cuda:N``.
    """
    value = (os.environ if environ is None else environ).get(DEVICE_VARIABLE, "").strip()
    value = value or "cpu"
    if not _DEVICE_NAME.fullmatch(value):
        raise pytest.UsageError(
            f"{DEVICE_VARIABLE}={value!r} is not a test device: use {ACCEPTED_DEVICES}"
        )
    return value


test_device_name.__test__ = False  # a helper, not a test (its name starts with "test")


def _check_cuda(name: str) -> None:
    """Stop the run unless CUDA device ``name`` exists; then keep float32 float32 on it.

    TF32 is switched off for matmuls and cuDNN convolutions: with it, an Ampere-or-later GPU
    rounds float32 products to a 10-bit mantissa (errors near 1e-3), and the tolerances of
    :func:`tolerance` would have to cover that instead of only the order of reductions.
    """
    import torch  # heavy: only a CUDA session pays for it here

    asked = f"{DEVICE_VARIABLE}={name}"
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise pytest.UsageError(
            f"{asked}, but CUDA is not available here (torch {torch.__version__}, {build}): "
            "the device tests will not run on the CPU instead; unset it to test on the CPU"
        )
    index = int(name.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise pytest.UsageError(
            f"{asked}, but this machine has {count} CUDA device(s) (cuda:0 … cuda:{count - 1})"
        )
    torch.cuda.set_device(index)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def pytest_configure(config: pytest.Config) -> None:
    global _session_device
    name = test_device_name()
    if name != "cpu":
        _check_cuda(name)
    _session_device = name


def pytest_report_header(config: pytest.Config) -> str:
    return f"dtg test device: {_session_device} ({DEVICE_VARIABLE})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a ``device`` mark without the fixture, and the fixture without the mark."""
    for item in items:
        marked = item.get_closest_marker("device") is not None
        parametrized = "device" in getattr(getattr(item, "callspec", None), "params", {})
        takes = "device" in getattr(item, "fixturenames", ()) and not parametrized
        if marked and not takes:
            raise pytest.UsageError(
                f"{item.nodeid} is marked device but does not take the device fixture (it would "
                f"run on the CPU whatever {DEVICE_VARIABLE} says): add the argument device"
            )
        if takes and not marked:
            raise pytest.UsageError(
                f"{item.nodeid} takes the device fixture but is not marked device (pytest -m "
                "device would leave it out): add @pytest.mark.device"
            )


@pytest.fixture(scope="session")
def device():
    """The ``torch.device`` of the ``device`` tests (``DTG_TEST_DEVICE``; the CPU by default).

    ``cuda`` comes with its index (``cuda:0``), as a tensor's ``.device`` does, so that the two
    compare equal.
    """
    import torch  # heavy: only the tests that ask for this fixture need torch

    device = torch.device(_session_device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def on_cuda(device) -> bool:
    return device.type == "cuda"


def tolerance(device, cpu: float, cuda: float) -> float:
    """A tolerance for ``device``: ``cpu`` on the CPU (unchanged), ``cuda`` on a GPU.

    Why CUDA gets its own: its kernels sum in another order (tree reductions over blocks, tiled
    matmuls), so float32 results differ from the CPU's in the last bits, a few ulps of the sum
    (1.2e-7 relative each) growing with the number of terms; ``atomicAdd`` makes some reductions
    (``index_add``, scatter-adds, embedding gradients) vary from run to run as well. TF32 is off in a CUDA session (:func:`_check_cuda`), so float32 stays
    float32; float64 tests keep tolerances near the CPU's. Statistical tests keep their bounds
    (standard errors): the CUDA random stream differs, the estimator does not.

    :param cpu: the tolerance the test has always had on the CPU.
    :param cuda: the tolerance on CUDA, never smaller than ``cpu``.
    """
    assert cuda >= cpu, "CUDA's tolerance is the CPU's or looser"
    return cuda if on_cuda(device) else cpu


def assert_resume_is_exact(make, folder: Path, steps: int, first: int) -> None:
    """Train ``make()`` for ``steps`` straight, and another ``make()`` for ``first`` steps then
    resumed to ``steps``: the weights must be equal, bit for bit."""
    import torch  # heavy: only the run-level tests that call this need torch

    import dtg

    straight = make()
    dtg.train(straight, steps=steps, out=folder / "straight", progress=False)
    dtg.train(make(), steps=first, out=folder / "halves", progress=False)
    again = make()
    dtg.train(again, steps=steps, out=folder / "halves", resume=True, progress=False)
    for p, q in zip(straight.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)


def example_paths() -> list[Path]:
    return sorted(EXAMPLES.glob("*.dtg"))


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def one_thread():
    """One torch thread: small nets run faster and steadier on a shared 2-core machine, and
    reductions round as when the regression record was made (threads split them differently)."""
    import torch  # heavy: only the tests that ask for this fixture need torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<(?:[^<>]|<[^<>]*>)*>|[^\s\]]+)')
_EDGE = re.compile(r"^\s*(\w+) -> (\w+) \[(.*)\]$")
_NODE = re.compile(r"^\s*(\w+) \[(.*)\]$")


def _attrs(text: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(text)}


def parse_dot(source: str) -> tuple[dict[str, dict], list[tuple[str, str, dict]]]:
    """Nodes (id -> attributes) and edges (tail, head, attributes) of a DOT text (the render
    tests read diagrams with it)."""
    nodes, edges = {}, []
    for line in source.splitlines():
        if m := _EDGE.match(line):
            edges.append((m[1], m[2], _attrs(m[3])))
        elif (m := _NODE.match(line)) and m[1] not in ("node", "edge", "graph"):
            nodes[m[1]] = _attrs(m[2])
    return nodes, edges

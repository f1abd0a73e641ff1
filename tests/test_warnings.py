"""Other libraries' warnings stay out of the command line's output unless --verbose (issue 18)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, SMALL_SAMPLER

from dtg.cli import main
from dtg.cli.quiet import CPP_LOG_LEVEL, quiet_warnings
from dtg.errors import DtgError

PICKLE_NOTE = "Detected pickle protocol 5"  # torch.serialization's UserWarning

# A plug-in that warns twice on import: once as if torch did (module torch.fake), once itself.
WARNING_PLUGIN = """
import warnings

warnings.warn_explicit("a note from torch", UserWarning, "torch/fake.py", 1, module="torch.fake")
warnings.warn("a note from the plug-in")
"""


def shown(module: str, verbose: bool) -> bool:
    """Whether a UserWarning attributed to ``module`` gets through ``quiet_warnings``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_warnings(verbose):
            warnings.warn_explicit("note", UserWarning, "x.py", 1, module=module)
    return len(caught) == 1


@pytest.mark.parametrize(
    "module",
    [
        "torch",
        "torch.serialization",
        "pyro.poutine.trace_struct",
        "numpy.lib",
        "matplotlib",
        "dtgx",
    ],
)
def test_other_libraries_warnings_are_hidden_unless_verbose(module: str) -> None:
    assert not shown(module, verbose=False)
    assert shown(module, verbose=True)


@pytest.mark.parametrize("module", ["dtg", "dtg.runtime.loop", "dtg_plugin_my_rewards"])
def test_dtgs_own_and_the_plugins_warnings_still_show(module: str) -> None:
    assert shown(module, verbose=False)


def test_the_filters_and_environment_are_restored() -> None:
    name, level = CPP_LOG_LEVEL
    before = list(warnings.filters)
    saved = os.environ.pop(name, None)
    try:
        with quiet_warnings(False):
            assert os.environ[name] == level  # torch's C++ logger, for processes started now
        assert name not in os.environ
        with quiet_warnings(True):
            assert name not in os.environ
        os.environ[name] = "INFO"  # the user's own setting is kept
        with quiet_warnings(False):
            assert os.environ[name] == "INFO"
    finally:
        os.environ.pop(name, None)
        if saved is not None:
            os.environ[name] = saved
    assert warnings.filters == before


def pickle5_checkpoint(tmp_path: Path) -> Path:
    import torch  # heavy: only these tests need it

    path = tmp_path / "protocol5.pt"
    torch.save({"format_version": 1}, path, pickle_protocol=5)
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop(CPP_LOG_LEVEL[0], None)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def warnings_of_loading(path: Path, verbose: bool) -> list[str]:
    """The warnings that get through ``quiet_warnings`` while dtg refuses ``path``."""
    from dtg.runtime.checkpoint import load_checkpoint  # heavy: imports torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_warnings(verbose), pytest.raises(DtgError, match="cannot read checkpoint"):
            load_checkpoint(path)
    return [str(w.message) for w in caught]


def test_a_real_torch_warning_is_hidden_unless_verbose(tmp_path: Path) -> None:
    checkpoint = pickle5_checkpoint(tmp_path)
    assert any(PICKLE_NOTE in text for text in warnings_of_loading(checkpoint, verbose=True))
    assert warnings_of_loading(checkpoint, verbose=False) == []


def test_the_cli_hides_torchs_warning_unless_verbose(tmp_path: Path, capsys) -> None:
    checkpoint = pickle5_checkpoint(tmp_path)
    command = ["sample", str(EXAMPLES / "ddpm_moons.dtg"), "--checkpoint", str(checkpoint)]
    for argv, expected in ((command, False), (["--verbose", *command], True)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(argv) == 1  # dtg refuses the file either way
        assert "cannot read checkpoint" in capsys.readouterr().err
        assert any(PICKLE_NOTE in str(w.message) for w in caught) == expected


def test_the_cli_shows_the_plugins_own_warning(tmp_path: Path) -> None:
    program = tmp_path / "base.dtg"
    program.write_text(SMALL_SAMPLER, encoding="utf-8")
    plugin = tmp_path / "noisy.py"
    plugin.write_text(WARNING_PLUGIN, encoding="utf-8")
    quiet = run("-m", "dtg", "check", str(program), "--plugin", str(plugin))
    assert quiet.returncode == 0, quiet.stderr
    assert "a note from the plug-in" in quiet.stderr and "a note from torch" not in quiet.stderr
    loud = run("-m", "dtg", "--verbose", "check", str(program), "--plugin", str(plugin))
    assert "a note from the plug-in" in loud.stderr and "a note from torch" in loud.stderr

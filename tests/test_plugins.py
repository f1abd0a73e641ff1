"""Python rewards only through the user's explicit plug-in (dtg.plugins)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from conftest import SMALL_SAMPLER

import dtg
from dtg import names
from dtg.cli import main
from dtg.ir.expr import Builtin
from dtg.names import MATH_FUNCTIONS
from dtg.plugins import PluginError, rewards, unregister_reward
from dtg.targets import TARGETS

CHILD = (
    SMALL_SAMPLER
    + """model child extends base {
  reward near(x) = 2 * near_one(x)
  objective relative_trajectory_balance
}
"""
)

PLUGIN = """
import dtg

@dtg.register_reward("near_one")
def near_one(x):
    return -((x - 1.0) ** 2).sum(dim=1)
"""


@pytest.fixture(autouse=True)
def clean_registry():
    yield
    unregister_reward("near_one")


def test_without_the_plugin_the_name_is_unknown_with_a_hint() -> None:
    with pytest.raises(dtg.DtgNameError, match="unknown function 'near_one'") as info:
        dtg.loads(CHILD)
    assert "register_reward" in info.value.format() and "--plugin" in info.value.format()
    assert info.value.span.line == 14


def test_a_registered_reward_is_called_on_the_samples() -> None:
    dtg.register_reward("near_one", lambda x: -((x - 1.0) ** 2).sum(dim=1))
    model = dtg.loads(CHILD).compile("cpu", model="child")
    x = torch.tensor([[1.0, 1.0], [0.0, 2.0], [3.0, -1.0]])
    expected = 2 * torch.tensor([0.0, -2.0, -8.0])  # 2 * near_one(x), written out
    assert torch.allclose(model.reward_fn(x), expected)


def test_plugin_rewards_are_for_reward_statements_only() -> None:
    dtg.register_reward("near_one", lambda x: x.sum(dim=1))
    text = CHILD.replace("Normal(f(x[t], t), 0.5)", "Normal(near_one(x[t]) + f(x[t], t), 0.5)")
    with pytest.raises(dtg.DtgTypeError, match="reward statement only"):
        dtg.loads(text)


def test_a_wrong_shape_from_the_plugin_is_a_clear_error() -> None:
    dtg.register_reward("near_one", lambda x: x)  # [B, 2] instead of [B]
    model = dtg.loads(CHILD).compile("cpu", model="child")
    with pytest.raises(dtg.DtgRuntimeError, match=r"must return a tensor of shape \[3\]"):
        model.reward_fn(torch.zeros(3, 2))


def test_bad_registrations_are_refused() -> None:
    with pytest.raises(PluginError, match="built-in"):
        dtg.register_reward("sqrt", lambda x: x)
    with pytest.raises(PluginError, match="identifier"):
        dtg.register_reward("not a name", lambda x: x)
    with pytest.raises(PluginError, match="function"):
        dtg.register_reward("fine", 3)


def test_cli_plugin_flag(tmp_path: Path, capsys) -> None:
    program = tmp_path / "child.dtg"
    program.write_text(CHILD)
    plugin = tmp_path / "my_rewards.py"
    plugin.write_text(PLUGIN)
    assert main(["check", str(program)]) == 1  # unknown function without the plug-in
    assert "near_one" in capsys.readouterr().err
    assert main(["check", str(program), "--plugin", str(plugin)]) == 0
    assert "near_one" in rewards()
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    assert main(["check", str(program), "--plugin", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "broken.py failed: RuntimeError: boom" in err and "Traceback" not in err
    assert main(["check", str(program), "--plugin", str(tmp_path / "missing.py")]) == 2
    assert "no such plug-in file" in capsys.readouterr().err


def test_a_dtg_file_cannot_load_a_plugin(tmp_path: Path) -> None:
    """Nothing in the language names Python: a file that tries is a syntax or name error,
    and the would-be plug-in never runs."""
    sentinel = tmp_path / "ran"
    (tmp_path / "evil.py").write_text(f"open({str(sentinel)!r}, 'w').close()\n")
    for attempt in ('plugin "evil.py"\n', 'import "evil.py"\n'):
        with pytest.raises(dtg.DtgError):
            dtg.loads(attempt + CHILD, file=str(tmp_path / "p.dtg"))
    with pytest.raises(dtg.DtgError):
        dtg.loads(CHILD.replace("near_one(x)", 'plugin("evil.py")'), file=str(tmp_path / "p.dtg"))
    assert not sentinel.exists()


@pytest.mark.parametrize("name", sorted({*names.RESERVED_NAMES, *TARGETS}))
def test_every_built_in_name_is_refused(name: str) -> None:
    with pytest.raises(PluginError, match="built-in"):
        dtg.register_reward(name, lambda x: x.sum(dim=1))
    assert name not in rewards()


def test_the_name_lists_match_the_language() -> None:
    """dtg.names is the plain list of what the sympy meanings and the IR's built-ins define."""
    assert set(names.MATH_FUNCTIONS) == set(MATH_FUNCTIONS)
    functions = {*names.MATH_FUNCTIONS, *names.BINARY_FUNCTIONS, *names.REDUCTIONS}
    assert functions == {builtin.value for builtin in Builtin}
    assert set(names.BUILTIN_FUNCTIONS) == functions | {names.CLASSIFY, names.GRAD} | set(
        names.HYPERSCHEDULES
    )


def test_plugins_import_nothing_from_the_checker() -> None:
    """The registry is a leaf the checker reads; importing the checker back would be a circle."""
    tree = ast.parse(Path(dtg.plugins.__file__).read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    imported = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    assert "names" in imported  # the reserved names come from dtg.names
    assert not [m for m in imported if m.startswith(("check", "dtg.check"))]
    assert not [m for m in imported if m.split(".")[0] in ("torch", "pyro")]


# ---------------------------------------------------------------- sys.exit in a plug-in (issue 18)


@pytest.mark.parametrize(
    ("body", "called"),
    [
        ("import sys\n\nsys.exit(0)\n", "called sys.exit(0) (line 3)"),
        ("raise SystemExit\n", "called sys.exit() (line 1)"),
        ("import sys\nsys.exit('bye')\n", "called sys.exit('bye') (line 2)"),
    ],
)
def test_a_plugin_that_exits_on_import_is_a_plugin_failure(
    tmp_path: Path, capsys, body: str, called: str
) -> None:
    # before issue 18: SystemExit went through, and `dtg check` ended silently with status 0
    plugin = tmp_path / "quits.py"
    plugin.write_text(body)
    program = tmp_path / "base.dtg"
    program.write_text(SMALL_SAMPLER)
    assert main(["check", str(program), "--plugin", str(plugin)]) == 2
    err = capsys.readouterr().err
    assert f"the plug-in {plugin} {called}; a plug-in must not exit" in err
    assert "Traceback" not in err


def test_load_plugin_reports_generator_exit(tmp_path: Path) -> None:
    plugin = tmp_path / "odd.py"
    plugin.write_text("x = 1\nraise GeneratorExit\n")
    with pytest.raises(PluginError, match=r"odd\.py failed: GeneratorExit \(line 2\)"):
        dtg.load_plugin(plugin)


def test_ctrl_c_while_a_plugin_loads_stays_an_interrupt(tmp_path: Path, capsys) -> None:
    plugin = tmp_path / "slow.py"
    plugin.write_text("raise KeyboardInterrupt\n")
    program = tmp_path / "base.dtg"
    program.write_text(SMALL_SAMPLER)
    assert main(["check", str(program), "--plugin", str(plugin)]) == 130
    assert "interrupted" in capsys.readouterr().err


QUITTING_REWARD = """
import sys

import dtg


@dtg.register_reward("near_one")
def near_one(x):
    sys.exit(3)
"""


def test_a_reward_that_exits_while_training_is_a_user_error(tmp_path: Path, capsys) -> None:
    plugin = tmp_path / "quits.py"
    plugin.write_text(QUITTING_REWARD)
    program = tmp_path / "base.dtg"
    program.write_text(SMALL_SAMPLER.replace("-0.5 * sum(x^2)", "near_one(x)"))
    argv = ["train", str(program), "--plugin", str(plugin), "--steps", "2", "--batch", "4"]
    status = main([*argv, "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 1, err
    assert f"the plug-in reward 'near_one' in {plugin} called sys.exit(3) (line 9)" in err
    assert "internal error" not in err


def test_a_reward_that_raises_names_its_file_and_line() -> None:
    def broken(x):
        return {}["missing"]

    line = broken.__code__.co_firstlineno + 1
    dtg.register_reward("near_one", broken)
    model = dtg.loads(CHILD).compile("cpu", model="child")
    with pytest.raises(dtg.DtgRuntimeError) as info:
        model.reward_fn(torch.zeros(3, 2))
    message = info.value.message
    assert "the plug-in reward 'near_one' in " in message and __file__ in message
    assert f"failed: KeyError: 'missing' (line {line})" in message

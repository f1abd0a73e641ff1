"""``dtg new``: every template checks, is already formatted, and the command is careful."""

from __future__ import annotations

import pytest

import dtg
import dtg.cli
from dtg.fmt import format_source
from dtg.syntax import ast, parse
from dtg.templates import DESCRIPTIONS, TEMPLATES, check_model_name, render

FAMILIES = ["ddpm", "mdlm", "autoregressive", "sampler", "vae", "rtb"]


def test_every_family_has_a_template() -> None:
    assert set(FAMILIES) <= set(TEMPLATES) and set(TEMPLATES) == set(DESCRIPTIONS)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_template_checks_and_is_formatted(template: str) -> None:
    text = render(template, "my_model")
    program = dtg.loads(text, file=f"{template}.dtg")
    assert program.models[-1].name == "my_model"
    assert text.startswith("# ") and text.splitlines()[1].startswith("# ")  # a comment header
    assert format_source(text) == text
    for model in parse(text).models:  # small budgets
        train = [s for s in model.statements if isinstance(s, ast.Train)]
        steps = [o.value.value for t in train for o in t.options if o.name == "steps"]
        assert steps and steps[0] <= 1000


def test_rtb_is_self_contained() -> None:
    program = dtg.loads(render("rtb", "tuned"))
    assert [m.name for m in program.models] == ["tuned_parent", "tuned"]
    assert "relative_trajectory_balance" in render("rtb", "tuned")


@pytest.mark.parametrize("name", ["2fast", "my-model", "", "a.b", "model", "steps"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        check_model_name(name)
    assert check_model_name("ok_Name2") == "ok_Name2"


@pytest.fixture
def cli():
    assert dtg.cli.new.register in dtg.cli.COMMANDS
    return dtg.cli.main


def test_cli_new(cli, tmp_path, capsys) -> None:
    path = tmp_path / "moons_model.dtg"
    assert cli(["new", "ddpm", str(path)]) == 0
    assert "created" in capsys.readouterr().out
    assert dtg.loads(path.read_text()).models[0].name == "moons_model"
    before = path.read_text()
    assert cli(["new", "vae", str(path)]) == 2  # refuses to overwrite
    assert "already exists" in capsys.readouterr().err and path.read_text() == before
    assert cli(["new", "vae", str(path), "--force"]) == 0
    assert "vae" in path.read_text()
    assert cli(["new", "mdlm", str(tmp_path / "plain")]) == 0  # .dtg is added
    assert (tmp_path / "plain.dtg").exists()


def test_cli_new_usage_errors(cli, tmp_path, capsys) -> None:
    assert cli(["new", "nosuch", str(tmp_path / "a.dtg")]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert cli(["new", "ddpm", str(tmp_path / "my-model.dtg")]) == 2
    assert "my_model" in capsys.readouterr().err  # the suggestion
    assert cli(["new", "ddpm", str(tmp_path / "a.txt")]) == 2
    assert cli(["new", "ddpm", str(tmp_path / "no" / "dir" / "a.dtg")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_new_help_lists_templates(cli, capsys) -> None:
    with pytest.raises(SystemExit):
        cli(["new", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in FAMILIES)

"""The command line: exit codes 0 / 1 / 2 and no tracebacks, whole flag names, lazy stages."""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import textwrap

import pytest
from conftest import BAD, EXAMPLES, ROOT, example_paths

from dtg.cli import build_parser, main
from dtg.cli.errors import UsageError

MOONS = str(EXAMPLES / "ddpm_moons.dtg")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dtg", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_check_examples_ok() -> None:
    paths = [str(p.relative_to(ROOT)) for p in example_paths()]
    result = run("check", *paths)
    assert result.returncode == 0, result.stderr
    for path in paths:
        assert f"ok: {path} (1 model)" in result.stdout


def test_check_bad_files_one_located_error_each() -> None:
    paths = [str(p.relative_to(ROOT)) for p in sorted(BAD.glob("*.dtg"))]
    result = run("check", *paths)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for path in paths:
        assert result.stderr.count(f"{path}:") >= 1, path
    headline_count = sum(1 for line in result.stderr.splitlines() if ": error: " in line)
    assert headline_count == len(paths)


def test_usage_errors_exit_2() -> None:
    for args in (("check",), ("check", "no/such/file.dtg"), ("--bogus",), ("frobnicate",), ()):
        result = run(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr
        assert "error" in result.stderr


def test_mixed_good_and_bad_exit_1() -> None:
    result = run("check", "examples/ddpm_moons.dtg", "tests/bad/empty.dtg")
    assert result.returncode == 1
    assert "ok: examples/ddpm_moons.dtg" in result.stdout
    assert "tests/bad/empty.dtg:1:1: error:" in result.stderr


def test_console_script_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("dtg ")


# ----------------------------------------------------------------------------- flags


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The main parser and every subcommand's parser."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices.values())
    return found


def test_every_parser_wants_whole_flag_names() -> None:
    parsers = _parsers(build_parser())
    assert {p.prog for p in parsers} >= {"dtg", "dtg train", "dtg sample", "dtg render"}
    assert all(p.allow_abbrev is False for p in parsers)
    with pytest.raises(UsageError, match="unrecognized arguments: --step 10"):
        build_parser().parse_args(["train", MOONS, "--step", "10"])
    with pytest.raises(UsageError, match="unrecognized arguments: --plug p.py"):
        build_parser().parse_args(["check", MOONS, "--plug", "p.py"])
    args = build_parser().parse_args(["train", MOONS, "--steps", "10"])
    assert args.steps == 10


@pytest.mark.parametrize(
    "argv,unknown,flag",
    [
        (["train", MOONS, "--step", "10"], "--step 10", "--steps"),
        (["train", MOONS, "--step=10"], "--step=10", "--steps"),
        (["sample", MOONS, "--checkpoint", "c.pt", "--sed", "3"], "--sed 3", "--seed"),
        (["render", MOONS, "--equation"], "--equation", "--equations"),
        (["fmt", MOONS, "--chek"], "--chek", "--check"),
    ],
)
def test_an_unknown_flag_gets_a_did_you_mean(argv, unknown: str, flag: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dtg: error: unrecognized arguments: {unknown}; ")
    assert f"did you mean '{flag}'?" in err and "Traceback" not in err


def test_a_far_flag_gets_no_guess(capsys) -> None:
    assert main(["check", MOONS, "--zzzzzz"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --zzzzzz" in err and "did you mean" not in err


def test_render_choices_are_checked_with_the_stage_values(capsys) -> None:
    assert main(["render", MOONS, "--view", "sideways"]) == 2
    err = capsys.readouterr().err
    choices = "'compact', 'unrolled', 'zoom', 'schedule'"  # the stage's views and the heat map
    assert f"invalid choice: 'sideways' (choose from {choices})" in err
    assert "[--view {compact,unrolled,zoom,schedule}]" in err


# ----------------------------------------------------------------------------- files


def test_compile_writes_a_file_and_refuses_a_folder(tmp_path, capsys) -> None:
    out = tmp_path / "ast.txt"
    assert main(["compile", MOONS, "--emit", "ast", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("Model name='ddpm_moons'")
    assert f"wrote {out}" in capsys.readouterr().err
    assert main(["compile", MOONS, "--emit", "ast", "-o", str(tmp_path)]) == 2
    assert f"dtg: error: {tmp_path} is a directory" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["ast.txt"]  # no temporary file left


# ----------------------------------------------------------------------------- layout


HEAVY_PREFIXES = (
    "torch",
    "pyro",
    "graphviz",
    "matplotlib",
    "dtg.runtime",
    "dtg.render",
    "dtg.backends",
)


def test_building_the_parser_imports_no_stage() -> None:
    """What ``import dtg`` did not import, parsing any command line does not import either."""
    lines = [
        ["check", MOONS],
        ["compile", MOONS, "--emit", "pyro"],
        ["render", MOONS, "-o", "x.png"],
        ["fmt", MOONS],
        ["new", "ddpm", "x.dtg"],
        ["train", MOONS, "--steps", "3"],
        ["sample", MOONS, "--checkpoint", "c.pt"],
        ["eval", MOONS, "--checkpoint", "c.pt"],
    ]
    code = textwrap.dedent(
        f"""
        import json, sys
        import dtg
        before = set(sys.modules)
        from dtg.cli import build_parser
        for argv in {lines!r}:
            build_parser().parse_args(argv)
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    added = json.loads(result.stdout)
    assert "dtg.cli.train" in added  # the command modules themselves are imported
    assert [m for m in added if m.startswith(HEAVY_PREFIXES)] == []


def test_command_modules_do_not_import_the_cli_package() -> None:
    """``dtg.cli`` imports the command modules; importing it back from them would be a circle."""
    for path in sorted((ROOT / "dtg" / "cli").glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                named = (node.module or "", node.level)
                assert named not in (("", 1), ("dtg.cli", 0)), f"{path.name}:{node.lineno}"
                assert not (
                    node.level == 2
                    and node.module is None
                    and any(a.name == "cli" for a in node.names)
                )
            elif isinstance(node, ast.Import):
                assert all(a.name != "dtg.cli" for a in node.names), f"{path.name}:{node.lineno}"

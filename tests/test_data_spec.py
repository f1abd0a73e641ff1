"""Tests for the data package's typed pieces: which spaces data may have, the bound source
(:class:`~dtg.ir.model.DataSourceSpec`), loading from it, and a torch-free import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import dtg
import dtg.data
from dtg.data import (
    DataError,
    DataSourceSpec,
    bind_source,
    check_data_space,
    check_source,
    load_source,
)
from dtg.errors import DtgDataError, Span
from dtg.ir.space import Space
from dtg.runtime.data_source import load_dataset, load_source_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _same(a: dtg.data.Dataset, b: dtg.data.Dataset, seed: int) -> None:
    """Bitwise equality of two datasets: tensors, dtypes, meta and the first batch."""
    for x, y in [(a.train, b.train), (a.test, b.test)]:
        assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)
    assert a.meta.keys() == b.meta.keys()
    for key, value in a.meta.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b.meta[key]), key
        else:
            assert value == b.meta[key], key
    batch_a = next(a.batches(32, torch.Generator().manual_seed(seed)))
    batch_b = next(b.batches(32, torch.Generator().manual_seed(seed)))
    assert torch.equal(batch_a, batch_b)


# --------------------------------------------------------------------------------------------
# which spaces data may have


@pytest.mark.parametrize(
    ("space", "says"),
    [
        (Space.time(), "'time'"),
        (Space("real", (0,)), "dimensions must be positive"),
        (Space("real", (4, 0)), "dimensions must be positive"),
        (Space("token", (3,)), "positive number of token values"),
        (Space("token", (3,), 0), "positive number of token values"),
        (Space("real", (2,), 5), "no vocabulary"),
    ],
)
def test_check_data_space_refusals(space: Space, says: str) -> None:
    with pytest.raises(DataError, match=says):
        check_data_space(space)
    with pytest.raises(DataError, match=says):  # check_source refuses it before any option
        check_source("file", {"path": "p.npy"}, space)


@pytest.mark.parametrize(
    "space",
    [Space("real", (2,)), Space("token", (8, 8), 17), Space.scalar(), Space("token", (1,), 1)],
)
def test_check_data_space_accepts(space: Space) -> None:
    assert check_data_space(space) is space


def test_check_data_space_refuses_what_data_cannot_be() -> None:
    with pytest.raises(DataError, match="'time'"):
        check_data_space(Space("time", ()))


# --------------------------------------------------------------------------------------------
# the bound source


def test_bind_source_binds_positional_and_keeps_span() -> None:
    span = Span("m.dtg", 3, 22, 3, 41)
    spec = bind_source("file", ["p.npy"], {}, Space("real", (3,)), span)
    assert isinstance(spec, DataSourceSpec)
    assert (spec.name, spec.options, spec.span) == ("file", {"path": "p.npy", "key": None}, span)
    # options stay as bound (not normalised): loading normalises them exactly once
    probs = bind_source("categorical", [[1, 3]], {}, Space("token", (2,), 2)).options["probs"]
    assert probs == [1, 3]


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "space", "says"),
    [
        ("moons", [], {}, Space("real", (3,)), r"real\[2\] points"),
        ("moons", [], {"nois": 0.1}, Space("real", (2,)), "no option 'nois'"),
        ("moon", [], {}, Space("real", (2,)), "unknown data source"),
        ("categorical", [[0.5, 0.5]], {}, Space("token", (4,), 3), "2 values"),
        ("digits", [], {}, Space.time(), "'time'"),
    ],
)
def test_bind_source_refusals(name: str, args: list, kwargs: dict, space: Space, says: str) -> None:
    with pytest.raises(DataError, match=says):
        bind_source(name, args, kwargs, space)


@pytest.mark.parametrize(
    ("name", "args", "space"),
    [
        ("categorical", [[0.6, 0.3, 0.1], 500], Space("token", (4,), 3)),
        ("moons", [0.1, 300], Space("real", (2,))),
        ("digits", [[7, 2]], Space("token", (8, 8), 5)),
    ],
)
def test_loading_from_the_spec_equals_loading_from_the_call(
    name: str, args: list, space: Space
) -> None:
    spec = bind_source(name, args, {}, space)
    from_spec = load_source_spec(spec, space, "cpu", seed=4)
    keywords = dict(zip(dtg.data.source_options(name), args, strict=False))
    _same(from_spec, load_source(name, keywords, space, seed=4), seed=4)


@pytest.mark.parametrize(
    ("example", "name", "options", "space"),
    [
        ("ddpm_moons.dtg", "moons", {"noise": 0.05}, Space("real", (2,))),
        ("mdlm_digits.dtg", "digits", {}, Space("token", (64,), 17)),
    ],
)
def test_checked_example_loads_as_its_written_call(
    example: str, name: str, options: dict, space: Space
) -> None:
    """The checker's spec of an example, loaded, equals the call as written in the file."""
    message = dtg.load(EXAMPLES / example).model().message
    assert isinstance(message.source, DataSourceSpec) and message.source.name == name
    from_spec = load_source_spec(message.source, message.space, "cpu", seed=2)
    _same(from_spec, load_source(name, options, space, seed=2), seed=2)


def _model(tmp_path: Path, declaration: str) -> SimpleNamespace:
    """A stand-in for a compiled model: its checked IR, its program and its device."""
    text = (EXAMPLES / "ddpm_moons.dtg").read_text(encoding="utf-8")
    text = text.replace("data x : real[2] ~ moons(noise = 0.05)", declaration)
    path = tmp_path / "m.dtg"
    path.write_text(text, encoding="utf-8")
    program = dtg.load(path)
    return SimpleNamespace(ir=program.model(), program=program, device=torch.device("cpu"))


def test_load_dataset_reads_a_file_beside_the_model(tmp_path: Path) -> None:
    rows = np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32)
    np.save(tmp_path / "points.npy", rows)
    model = _model(tmp_path, 'data x : real[2] ~ file("points.npy")')
    dataset = load_dataset(model, seed=1)
    assert dataset is not None and dataset.train.device == torch.device("cpu")
    order = np.argsort(np.concatenate([dataset.meta["index_train"], dataset.meta["index_test"]]))
    both = np.concatenate([dataset.train.numpy(), dataset.test.numpy()])[order]
    np.testing.assert_array_equal(both, rows)
    assert dataset.meta["path"] == str(tmp_path / "points.npy")


def test_load_dataset_error_is_located_at_the_call(tmp_path: Path) -> None:
    model = _model(tmp_path, 'data x : real[2] ~ file("missing.npy")')
    with pytest.raises(DtgDataError) as info:
        load_dataset(model)
    error = info.value
    assert "missing.npy: no such file" in error.message
    assert error.span is not None and (error.span.line, error.span.column) == (3, 22)
    text = error.format()
    assert "m.dtg:3:22" in text and 'file("missing.npy")' in text and "^" in text


def test_load_dataset_of_a_sampler_is_none() -> None:
    model = SimpleNamespace(ir=SimpleNamespace(message=SimpleNamespace(role="target")))
    assert load_dataset(model) is None


# --------------------------------------------------------------------------------------------
# the package's imports


def test_torch_names_load_on_first_use() -> None:
    from dtg.data import dataset

    assert dtg.data.Dataset is dataset.Dataset and dtg.data.load_source is dataset.load_source
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        dtg.data.nothing  # noqa: B018 - the attribute access is the test


def test_checking_a_source_never_imports_torch() -> None:
    """With torch made unimportable, the checker's uses of the package still work."""
    script = textwrap.dedent(
        """
        import sys

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")

        sys.meta_path.insert(0, NoTorch())
        import dtg.data
        from dtg.data import SOURCES, DataError, bind_options, bind_source, check_source
        from dtg.ir.space import Space

        spec = bind_source("moons", [], {"noise": 0.1}, Space("real", (2,)))
        check_source("file", bind_options("file", ["x.pt"]), Space("real", (3,)))
        check_source("digits", {"classes": [1]}, Space("token", (64,), 17))
        rows = SOURCES["moons"].load({"noise": 0.1, "n": 100}, Space("real", (2,)), 0, None)
        try:
            check_source("moons", {}, Space("real", (3,)))
        except DataError:
            pass
        try:
            dtg.data.Dataset
        except ImportError:
            lazy = True
        else:
            lazy = False
        print(rows.train.shape, "torch" in sys.modules, lazy)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(90,", "2)", "False", "True"]

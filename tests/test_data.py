"""Tests for dtg.data: toys, digits, files, option checking and user-facing errors."""

from __future__ import annotations

import os
import pickle
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from dtg.data import (
    REQUIRED,
    SOURCES,
    DataError,
    Dataset,
    bind_options,
    check_source,
    load_source,
    source_options,
)
from dtg.ir.space import Space

R2 = Space("real", (2,))
TOYS = ["moons", "circles", "eight_gaussians", "swiss_roll", "checkerboard"]


# --------------------------------------------------------------------------------------------
# spaces, registry, options


def test_space_str_in_messages() -> None:
    assert str(Space("real", (2,))) == "real[2]"
    assert str(Space("token", (64,), 17)) == "token(17)[64]"
    assert str(Space("real", (8, 8))) == "real[8, 8]"


def test_source_options_and_suggestions() -> None:
    assert set(SOURCES) == set(TOYS) | {"digits", "file", "categorical", "images"}
    assert source_options("moons") == {"noise": 0.05, "n": 20000}
    assert source_options("file") == {"path": REQUIRED, "key": None}
    with pytest.raises(DataError) as info:
        source_options("moon")
    assert "moon" in info.value.message and info.value.hint == "did you mean 'moons'?"


def test_bind_options() -> None:
    assert bind_options("file", ["p.npy"]) == {"path": "p.npy", "key": None}
    assert bind_options("moons", [], {"noise": 0.1})["noise"] == 0.1
    with pytest.raises(DataError, match="no option 'nois'") as info:
        bind_options("moons", [], {"nois": 0.1})
    assert info.value.hint == "did you mean 'noise'?"
    with pytest.raises(DataError, match="twice"):
        bind_options("file", ["a.npy"], {"path": "b.npy"})
    with pytest.raises(DataError, match="at most"):
        bind_options("checkerboard", [1, 2])
    with pytest.raises(DataError, match="needs option 'path'"):
        bind_options("file")


@pytest.mark.parametrize(
    ("name", "opts"),
    [
        ("moons", {"noise": -1.0}),
        ("moons", {"noise": "big"}),
        ("moons", {"n": 2.5}),
        ("circles", {"factor": 1.5}),
        ("eight_gaussians", {"radius": 0}),
        ("digits", {"classes": [1, 12]}),
        ("digits", {"classes": []}),
        ("digits", {"classes": [3, 3]}),
        ("file", {"path": 3}),
    ],
)
def test_bad_option_values(name: str, opts: dict) -> None:
    space = Space("real", (64,)) if name == "digits" else R2
    with pytest.raises(DataError) as info:
        check_source(name, opts, space)
    assert name in info.value.message


# --------------------------------------------------------------------------------------------
# toys


@pytest.mark.parametrize("name", TOYS)
def test_toy_shapes_determinism_scale(name: str) -> None:
    ds = load_source(name, {"n": 2000}, R2, seed=3)
    assert isinstance(ds, Dataset)
    assert ds.train.shape == (1800, 2) and ds.test.shape == (200, 2)
    assert ds.train.dtype == torch.float32 and ds.test.dtype == torch.float32
    assert torch.isfinite(ds.train).all()
    assert ds.meta["source"] == name and ds.meta["seed"] == 3 and ds.meta["n_test"] == 200
    again = load_source(name, {"n": 2000}, R2, seed=3)
    assert torch.equal(ds.train, again.train) and torch.equal(ds.test, again.test)
    other = load_source(name, {"n": 2000}, R2, seed=4)
    assert not torch.equal(ds.train, other.train)
    x = torch.cat([ds.train, ds.test])
    assert x.mean(0).abs().max() < 0.6
    assert ((x.std(0) > 0.7) & (x.std(0) < 2.0)).all()
    assert x.abs().max() < 5.0


def test_toy_default_size() -> None:
    ds = load_source("moons", {"noise": 0.05}, R2)
    assert ds.n_train == 18000 and ds.n_test == 2000


def test_eight_gaussians_modes() -> None:
    x = load_source("eight_gaussians", {"std": 0.05}, R2).train.double()
    angle = torch.atan2(x[:, 1], x[:, 0]) / (np.pi / 4)
    assert (angle - angle.round()).abs().max() < 0.15
    assert (x.norm(dim=1) - 2.0).abs().max() < 0.3


def test_checkerboard_pattern() -> None:
    x = load_source("checkerboard", {}, R2).train.double()
    assert x.abs().max() <= 2.0
    assert ((torch.floor(x[:, 0]) + torch.floor(x[:, 1])) % 2 == 0).all()


def test_moons_noise_free_on_arcs() -> None:
    x = load_source("moons", {"noise": 0.0, "n": 1000}, R2).train.double() / 2 + torch.tensor(
        [0.5, 0.25], dtype=torch.float64
    )
    on_outer = (x.norm(dim=1) - 1).abs() < 1e-5
    on_inner = ((x - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1) - 1).abs() < 1e-5
    assert (on_outer | on_inner).all() and on_outer.any() and on_inner.any()


@pytest.mark.parametrize("space", [Space("real", (3,)), Space("token", (2,), 5)])
def test_toy_space_mismatch(space: Space) -> None:
    with pytest.raises(DataError) as info:
        load_source("moons", {}, space)
    msg = info.value.message
    assert "moons" in msg and "real[2]" in msg and str(space) in msg


# --------------------------------------------------------------------------------------------
# digits


@pytest.fixture(scope="module")
def sk_digits() -> tuple[np.ndarray, np.ndarray]:
    sk = pytest.importorskip("sklearn.datasets")
    b = sk.load_digits()
    return b.data, b.target


def test_digits_real(sk_digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = sk_digits
    ds = load_source("digits", {}, Space("real", (64,)), seed=0)
    assert ds.train.dtype == torch.float32 and ds.train.shape[1:] == (64,)
    assert ds.n_train + ds.n_test == 1797 and ds.n_test == round(0.2 * 1797)
    assert ds.train.min() >= -1 and ds.train.max() <= 1
    idx = ds.meta["index_train"].numpy()
    np.testing.assert_allclose(ds.train.numpy(), images[idx] / 8 - 1, atol=1e-6)
    np.testing.assert_array_equal(ds.meta["labels_train"].numpy(), labels[idx])
    np.testing.assert_array_equal(ds.meta["labels_test"].numpy(), labels[ds.meta["index_test"]])


def test_digits_split_disjoint_and_seeded() -> None:
    a = load_source("digits", {}, Space("real", (64,)), seed=0)
    tr, te = set(a.meta["index_train"].tolist()), set(a.meta["index_test"].tolist())
    assert not tr & te and len(tr | te) == 1797
    b = load_source("digits", {}, Space("real", (64,)), seed=0)
    c = load_source("digits", {}, Space("real", (64,)), seed=1)
    assert torch.equal(a.meta["index_test"], b.meta["index_test"])
    assert not torch.equal(a.meta["index_test"], c.meta["index_test"])


def test_digits_tokens(sk_digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = sk_digits
    ds = load_source("digits", {}, Space("token", (64,), 17))
    assert ds.train.dtype == torch.int64
    np.testing.assert_array_equal(ds.train.numpy(), images[ds.meta["index_train"].numpy()])
    ds4 = load_source("digits", {}, Space("token", (64,), 4))
    vals = torch.unique(torch.cat([ds4.train, ds4.test]))
    assert vals.tolist() == [0, 1, 2, 3]
    ds2 = load_source("digits", {}, Space("token", (8, 8), 2))
    assert ds2.train.shape[1:] == (8, 8) and set(torch.unique(ds2.train).tolist()) == {0, 1}


def test_digits_classes() -> None:
    ds = load_source("digits", {"classes": [3, 1]}, Space("real", (64,)))
    labels = torch.cat([ds.meta["labels_train"], ds.meta["labels_test"]])
    assert set(labels.tolist()) == {1, 3}
    assert ds.meta["options"]["classes"] == [1, 3]


def test_digits_space_mismatch() -> None:
    with pytest.raises(DataError, match=r"digits.*real\[10\]"):
        load_source("digits", {}, Space("real", (10,)))


# --------------------------------------------------------------------------------------------
# batches


def test_batches_deterministic() -> None:
    ds = load_source("moons", {"n": 100}, R2)
    b1 = list(zip(range(3), ds.batches(16, torch.Generator().manual_seed(0)), strict=False))
    b2 = list(zip(range(3), ds.batches(16, torch.Generator().manual_seed(0)), strict=False))
    for (_, x), (_, y) in zip(b1, b2, strict=True):
        assert x.shape == (16, 2) and torch.equal(x, y)
    rows = {tuple(r) for r in ds.train.tolist()}
    assert all(tuple(r) in rows for _, x in b1 for r in x.tolist())
    assert not torch.equal(b1[0][1], b1[1][1])


# --------------------------------------------------------------------------------------------
# files: formats


def _arr(n: int = 20, d: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


def _load(tmp_path: Path, name: str, space: Space, seed: int = 0, **opts: object) -> Dataset:
    return load_source("file", {"path": name, **opts}, space, seed=seed, base_dir=tmp_path)


def _all_rows(ds: Dataset) -> np.ndarray:
    order = np.argsort(np.concatenate([ds.meta["index_train"], ds.meta["index_test"]]))
    return np.concatenate([ds.train.numpy(), ds.test.numpy()])[order]


def test_file_npy(tmp_path: Path) -> None:
    a = _arr()
    np.save(tmp_path / "points.npy", a)
    ds = _load(tmp_path, "points.npy", Space("real", (3,)), seed=1)
    assert ds.n_train == 18 and ds.n_test == 2 and ds.train.dtype == torch.float32
    np.testing.assert_array_equal(_all_rows(ds), a)
    assert ds.meta["path"] == str(tmp_path / "points.npy")
    again = _load(tmp_path, "points.npy", Space("real", (3,)), seed=1)
    assert torch.equal(ds.test, again.test)


def test_file_relative_to_base_dir_and_absolute(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "p.npy", _arr())
    assert _load(tmp_path, "sub/p.npy", Space("real", (3,))).n_train == 18
    assert _load(Path("/"), str(tmp_path / "sub" / "p.npy"), Space("real", (3,))).n_test == 2


def test_file_npz(tmp_path: Path) -> None:
    a = _arr()
    np.savez(tmp_path / "one.npz", data=a)
    np.testing.assert_array_equal(_all_rows(_load(tmp_path, "one.npz", Space("real", (3,)))), a)
    np.savez(tmp_path / "two.npz", x=a, y=a[:, :2])
    ds = _load(tmp_path, "two.npz", Space("real", (2,)), key="y")
    np.testing.assert_array_equal(_all_rows(ds), a[:, :2])
    with pytest.raises(DataError, match="two.npz.*several arrays") as info:
        _load(tmp_path, "two.npz", Space("real", (3,)))
    assert "key" in (info.value.hint or "")
    with pytest.raises(DataError, match="two.npz.*no array named 'z'"):
        _load(tmp_path, "two.npz", Space("real", (3,)), key="z")


def test_file_csv(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("a,b,c\n1,2,3\n4,5,6\n\n7,8,9.5\n")
    ds = _load(tmp_path, "h.csv", Space("real", (3,)))
    np.testing.assert_array_equal(_all_rows(ds), [[1, 2, 3], [4, 5, 6], [7, 8, 9.5]])
    (tmp_path / "n.csv").write_text("1,2,3,4\n5,6,7,8\n")
    ds = _load(tmp_path, "n.csv", Space("real", (2, 2)))
    np.testing.assert_array_equal(_all_rows(ds), [[[1, 2], [3, 4]], [[5, 6], [7, 8]]])
    (tmp_path / "w.csv").write_text("0 1\n2 3\n")
    ds = _load(tmp_path, "w.csv", Space("token", (2,), 4))
    assert ds.train.dtype == torch.int64
    np.testing.assert_array_equal(_all_rows(ds), [[0, 1], [2, 3]])


def test_file_pt(tmp_path: Path) -> None:
    t = torch.from_numpy(_arr())
    torch.save(t, tmp_path / "t.pt")
    np.testing.assert_array_equal(_all_rows(_load(tmp_path, "t.pt", Space("real", (3,)))), t)
    torch.save({"a": t, "b": t[:, :1]}, tmp_path / "d.pt")
    ds = _load(tmp_path, "d.pt", Space("real", (1,)), key="b")
    np.testing.assert_array_equal(_all_rows(ds), t[:, :1])
    torch.save(t.to(torch.bfloat16), tmp_path / "bf.pt")
    assert _load(tmp_path, "bf.pt", Space("real", (3,))).train.dtype == torch.float32


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_file_pt_never_unpickles(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump(_Evil(marker), f)
    torch.save({"x": [1, 2, 3]}, tmp_path / "list.pt")
    with pytest.raises(DataError, match="evil.pt"):
        _load(tmp_path, "evil.pt", Space("real", (3,)))
    assert not marker.exists()
    with pytest.raises(DataError, match="list.pt.*not a tensor"):
        _load(tmp_path, "list.pt", Space("real", (3,)))


def test_file_tokens_and_1d(tmp_path: Path) -> None:
    np.save(tmp_path / "tok.npy", np.array([[0, 4], [3, 2], [1, 1]], dtype=np.int32))
    ds = _load(tmp_path, "tok.npy", Space("token", (2,), 5))
    assert ds.train.dtype == torch.int64
    np.save(tmp_path / "ftok.npy", np.array([[0.0, 4.0], [3.0, 2.0]]))
    assert _load(tmp_path, "ftok.npy", Space("token", (2,), 5)).n_train == 1
    np.save(tmp_path / "flat.npy", np.arange(10.0))
    assert _load(tmp_path, "flat.npy", Space("real", (1,))).train.shape == (9, 1)


# --------------------------------------------------------------------------------------------
# files: errors


def _err(tmp_path: Path, name: str, space: Space, **opts: object) -> DataError:
    with pytest.raises(DataError) as info:
        _load(tmp_path, name, space, **opts)
    assert name in info.value.message
    return info.value


def test_error_missing_and_folder(tmp_path: Path) -> None:
    e = _err(tmp_path, "nope.npy", R2)
    assert "no such file" in e.message and str(tmp_path) in e.message
    (tmp_path / "dir.npy").mkdir()
    assert "folder" in _err(tmp_path, "dir.npy", R2).message


def _err_in_time(tmp_path: Path, name: str, space: Space) -> DataError:
    """:func:`_err`, failing (not hanging) when the load blocks: opening a named pipe for reading
    waits for a writer, so a loader that opens one before checking what it is never returns."""
    found: list[BaseException] = []

    def load() -> None:
        try:
            _load(tmp_path, name, space)
        except BaseException as error:  # noqa: BLE001 - handed to the test below
            found.append(error)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():  # release the blocked open, then fail
        os.close(os.open(tmp_path / name, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"loading {name} blocked")
    assert len(found) == 1 and isinstance(found[0], DataError), found
    assert name in found[0].message
    return found[0]


@pytest.mark.skipif(os.name != "posix", reason="named pipes, devices and sockets")
def test_error_special_files_say_what_they_are(tmp_path: Path, monkeypatch) -> None:
    os.mkfifo(tmp_path / "pipe.npy")
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "null.npy").symlink_to(os.devnull)
    (tmp_path / "zeros.csv").symlink_to("/dev/zero")
    (tmp_path / "gone.npy").symlink_to("removed.npy")
    for name in ("pipe.npy", "pipe.csv"):
        error = _err_in_time(tmp_path, name, R2)
        assert error.message == f"{name}: is a named pipe (FIFO), not a data file"
        assert "regular .npy, .npz, .csv or .pt file" in (error.hint or "")
    for name in ("null.npy", "zeros.csv", "/dev/null", "/dev/zero"):
        assert _err(tmp_path, name, R2).message == f"{name}: is a character device, not a data file"
    assert _err(tmp_path, "gone.npy", R2).message == (
        "gone.npy: is a symbolic link to removed.npy, which does not exist"
    )
    monkeypatch.chdir(tmp_path)  # a socket's path is limited to ~100 bytes: bind a short one
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind("s.npy")
        assert _err(tmp_path, "s.npy", R2).message == "s.npy: is a socket, not a data file"
    finally:
        server.close()
    np.save(tmp_path / "real.npy", _arr(d=2))  # a link to a regular file is followed
    (tmp_path / "link.npy").symlink_to("real.npy")
    assert _load(tmp_path, "link.npy", R2).n_train == 18


def test_error_unsupported_and_empty(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("1 2\n")
    assert "unsupported" in _err(tmp_path, "a.txt", R2).message
    for name in ["e.npy", "e.csv", "e.pt", "e.npz"]:
        (tmp_path / name).write_bytes(b"")
        assert "empty" in _err(tmp_path, name, R2).message
    (tmp_path / "blank.csv").write_text("\n\n")
    assert "no rows" in _err(tmp_path, "blank.csv", R2).message
    (tmp_path / "head.csv").write_text("x,y\n")
    assert "no rows" in _err(tmp_path, "head.csv", R2).message


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("bad.npy", b"\x93NUMPY garbage \x00\x01\x02" * 10, "cannot read"),
        ("pickled.npy", pickle.dumps([[1.0, 2.0]]), "not a .npy file"),
        ("bad.npz", b"garbage" * 10, "not a .npz file"),
        ("bad2.npz", b"PK\x03\x04garbage" * 10, "not a .npz file"),
        ("bad.pt", b"garbage \x00\x01\x02" * 10, "cannot read"),
        ("bad2.pt", b"PK\x03\x04garbage" * 10, "cannot read"),
    ],
)
def test_error_corrupt(tmp_path: Path, name: str, content: bytes, says: str) -> None:
    (tmp_path / name).write_bytes(content)
    assert says in _err(tmp_path, name, R2).message


def test_error_object_array(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert "never unpickles" in _err(tmp_path, "obj.npy", R2).message
    np.save(tmp_path / "str.npy", np.array([["a", "b"], ["c", "d"]]))
    assert "not numbers" in _err(tmp_path, "str.npy", R2).message


def test_error_wrong_shape(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", _arr(d=2))
    e = _err(tmp_path, "p.npy", Space("real", (3,)))
    assert "real[3]" in e.message and "[3]" in e.message and "[2]" in e.message
    np.save(tmp_path / "s.npy", np.float32(1.0))
    assert "single number" in _err(tmp_path, "s.npy", R2).message


def test_error_too_few_rows(tmp_path: Path) -> None:
    np.save(tmp_path / "zero.npy", np.zeros((0, 2)))
    assert "no rows" in _err(tmp_path, "zero.npy", R2).message
    np.save(tmp_path / "one.npy", np.zeros((1, 2)))
    assert "only 1 row" in _err(tmp_path, "one.npy", R2).message


def test_error_nan_inf_rows(tmp_path: Path) -> None:
    a = _arr(d=2)
    a[7, 1] = np.nan
    np.save(tmp_path / "nan.npy", a)
    e = _err(tmp_path, "nan.npy", R2)
    assert "row 7" in e.message and "NaN" in e.message
    b = _arr(d=2).astype(np.float64)
    b[4, 0] = np.inf
    b[9, 0] = np.nan
    np.save(tmp_path / "inf.npy", b)
    e = _err(tmp_path, "inf.npy", R2)
    assert "row 4" in e.message and "infinite" in e.message
    np.save(tmp_path / "big.npy", np.array([[0.0, 0.0], [1e300, 0.0]]))
    assert "row 1" in _err(tmp_path, "big.npy", R2).message
    (tmp_path / "nan.csv").write_text("x,y\n1,2\n3,nan\n")
    assert "line 3" in _err(tmp_path, "nan.csv", R2).message


def test_error_csv_contents(tmp_path: Path) -> None:
    (tmp_path / "txt.csv").write_text("1,2\n3,abc\n")
    e = _err(tmp_path, "txt.csv", R2)
    assert "line 2" in e.message and "'abc'" in e.message
    (tmp_path / "rag.csv").write_text("1,2\n3,4\n5\n")
    assert "line 3" in _err(tmp_path, "rag.csv", R2).message
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81")
    assert "not a text file" in _err(tmp_path, "bin.csv", R2).message


def test_error_tokens(tmp_path: Path) -> None:
    space = Space("token", (2,), 5)
    np.save(tmp_path / "hi.npy", np.array([[0, 1], [2, 3], [4, 5], [9, 9]]))
    e = _err(tmp_path, "hi.npy", space)
    assert "row 2" in e.message and "5" in e.message and "0..4" in e.message
    np.save(tmp_path / "neg.npy", np.array([[0, 1], [-1, 3]]))
    assert "row 1" in _err(tmp_path, "neg.npy", space).message
    np.save(tmp_path / "frac.npy", np.array([[0.0, 1.0], [2.0, 3.0], [1.5, 2.0]]))
    e = _err(tmp_path, "frac.npy", space)
    assert "row 2" in e.message and "1.5" in e.message and "non-integer" in e.message
    np.save(tmp_path / "tnan.npy", np.array([[0.0, 1.0], [np.nan, 2.0]]))
    assert "row 1" in _err(tmp_path, "tnan.npy", space).message
    (tmp_path / "t.csv").write_text("0,1\n2,7\n")
    assert "line 2" in _err(tmp_path, "t.csv", space).message


def test_error_key_on_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "k.npy", _arr(d=2))
    assert "key" in _err(tmp_path, "k.npy", R2, key="x").message


def test_categorical_source_matches_its_probabilities() -> None:
    space = Space("token", (1,), 3)
    ds = load_source("categorical", {"probs": [0.6, 0.3, 0.1], "n": 20000}, space, seed=1)
    counts = torch.bincount(ds.train.flatten(), minlength=3).double() / ds.train.numel()
    assert torch.allclose(counts, torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64), atol=0.02)
    with pytest.raises(DataError, match="3 values"):
        load_source("categorical", {"probs": [0.6, 0.3, 0.1]}, Space("token", (1,), 4))

"""The ``images(path)`` source (issue 24): a folder of PNGs written by the test, read, scaled,
split, and an unreadable file named in the error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dtg
from dtg.runtime.plots import picture_kind, plot_samples

MODEL = """model pictures {{
  data x : {space} ~ images("faces")
  steps T = 4
  schedule beta(t) = 0.1
  net eps : ({space}, time) -> {space} = unet(channels = 8, mults = [1, 2], groups = 4)
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
  train {{ steps = 3, batch = 4 }}
}}
"""


def write_pictures(folder: Path, n: int = 20, size: tuple[int, int] = (24, 16)) -> np.ndarray:
    folder.mkdir()
    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 256, size=(n, size[1], size[0], 3), dtype=np.uint8)
    for i, rgb in enumerate(pictures):
        Image.fromarray(rgb).save(folder / f"p{i:02d}.png")
    (folder / "notes.txt").write_text("not a picture, and not read")
    return pictures


def load(tmp_path: Path, space: str):
    path = tmp_path / "m.dtg"
    path.write_text(MODEL.format(space=space))
    return dtg.load(path).compile("cpu")


def test_a_folder_of_pngs_is_read_scaled_and_split(tmp_path: Path) -> None:
    pictures = write_pictures(tmp_path / "faces", size=(16, 16))  # already 16 × 16: no resize
    data = load(tmp_path, "real[3, 16, 16]").dataset(0)
    assert data.n_train == 18 and data.n_test == 2
    assert tuple(data.train.shape[1:]) == (3, 16, 16)
    assert float(data.train.min()) >= -1.0 and float(data.train.max()) <= 1.0
    rows = np.concatenate([data.train.numpy(), data.test.numpy()])
    expected = pictures.transpose(0, 3, 1, 2) / 127.5 - 1.0  # [N, C, H, W] in [−1, 1]
    gaps = np.abs(rows.reshape(20, 1, -1) - expected.reshape(1, 20, -1)).max(axis=2)  # [row, pic]
    assert (gaps.min(axis=0) < 1e-6).all() and (gaps.min(axis=1) < 1e-6).all()  # each, once


def test_grey_pictures_are_centre_cropped_and_resized(tmp_path: Path) -> None:
    write_pictures(tmp_path / "faces", size=(24, 16))  # 24 wide, 16 high
    data = load(tmp_path, "real[1, 8, 8]").dataset(0)
    assert tuple(data.train.shape[1:]) == (1, 8, 8)
    from dtg.data.dataset import load_source
    from dtg.ir.space import Space

    grey = load_source("images", {"path": str(tmp_path / "faces")}, Space("real", (1, 8, 8)))
    tokens = load_source(
        "images", {"path": str(tmp_path / "faces")}, Space("token", (1, 8, 8), vocab=4)
    )
    assert tokens.train.dtype.is_floating_point is False
    assert set(tokens.train.unique().tolist()) <= {0, 1, 2, 3}
    levels = ((grey.train + 1) * 127.5 * 3 / 255).round().long()  # the same pixels, 4 levels
    assert (levels - tokens.train).abs().max() == 0


def test_an_unreadable_picture_is_named(tmp_path: Path) -> None:
    write_pictures(tmp_path / "faces", n=4, size=(8, 8))
    (tmp_path / "faces" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(dtg.DtgDataError, match="cannot read broken.png"):
        load(tmp_path, "real[3, 8, 8]").dataset(0)


def test_a_missing_folder_and_a_flat_space_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(dtg.DtgDataError, match="no such folder: faces"):
        load(tmp_path, "real[1, 8, 8]").dataset(0)
    source = MODEL.format(space="real[1, 8, 8]").replace(
        'data x : real[1, 8, 8] ~ images("faces")', 'data x : real[64] ~ images("faces")'
    )
    with pytest.raises(dtg.DtgDataError, match=r"gives pictures as \[C, H, W\]"):
        dtg.loads(source, file=str(tmp_path / "flat.dtg"))


def test_image_spaces_plot_as_grids(tmp_path: Path) -> None:
    from dtg.ir.space import Space

    rgb, grey = Space("real", (3, 16, 16)), Space("real", (1, 12, 10))
    assert picture_kind(rgb) == picture_kind(grey) == "images"
    samples = np.random.default_rng(0).uniform(-1, 1, size=(10, 3, 16, 16))
    out = plot_samples(samples, rgb, tmp_path / "grid.png", reference=samples[:3])
    assert out.stat().st_size > 1000


def test_uint8_image_arrays_are_scaled_like_pictures(tmp_path: Path) -> None:
    from dtg.data.dataset import load_source
    from dtg.ir.space import Space

    pixels = np.random.default_rng(0).integers(0, 256, size=(20, 3, 4, 4), dtype=np.uint8)
    np.save(tmp_path / "x.npy", pixels)
    np.save(tmp_path / "x_float.npy", pixels.astype(np.float32))
    image = Space("real", (3, 4, 4))
    scaled = load_source("file", {"path": str(tmp_path / "x.npy")}, image)
    raw = load_source("file", {"path": str(tmp_path / "x_float.npy")}, image)
    assert torch.allclose(scaled.train, raw.train / 127.5 - 1.0, atol=1e-6)  # floats stay raw
    np.save(tmp_path / "flat.npy", pixels.reshape(20, 48))
    flat = load_source("file", {"path": str(tmp_path / "flat.npy")}, Space("real", (48,)))
    assert float(flat.train.max()) > 1.0  # only image spaces are scaled


def test_the_crop_is_central_and_16_bit_grey_is_scaled(tmp_path: Path) -> None:
    from dtg.data.dataset import load_source
    from dtg.ir.space import Space

    folder = tmp_path / "wide"
    folder.mkdir()
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, size=(16, 24), dtype=np.uint8)  # 24 wide, 16 high
    framed = np.full((16, 24), 255, dtype=np.uint8)
    framed[:, :4] = framed[:, 20:] = 0  # black outside the middle 16 columns
    for i in range(2):
        Image.fromarray(framed).save(folder / f"p{i}.png")
    loaded = load_source("images", {"path": str(folder)}, Space("real", (1, 8, 8)))
    assert float(loaded.train.mean()) > 0.95  # the crop kept the white middle, not the frame
    by_hand = Image.fromarray(framed[:, 4:20]).resize((8, 8), Image.Resampling.LANCZOS)
    want = np.asarray(by_hand, dtype=np.float32) / 127.5 - 1
    assert np.abs(loaded.train[0, 0].numpy() - want).max() < 0.15  # edges: resampling support

    deep = tmp_path / "deep"
    deep.mkdir()
    for i in range(2):
        Image.fromarray(grey.astype(np.uint16) * 257).save(deep / f"p{i}.png")  # 16-bit grey
    sixteen = load_source("images", {"path": str(deep)}, Space("real", (1, 16, 24)))
    assert np.allclose(sixteen.train[0, 0].numpy(), grey / 127.5 - 1, atol=1e-6)

"""The ``images(path)`` source: a folder of PNG or JPEG pictures as ``real[C, H, W]`` images.

Every ``.png``, ``.jpg`` or ``.jpeg`` file directly in the folder (sorted by name) is read with
Pillow, converted to the declared channels (C = 1 grey, C = 3 RGB), centre-cropped to the
declared aspect ratio H : W and resized to H × W (Lanczos) — after the picture's EXIF rotation,
and with 16-bit grey pictures brought to 8 bits — then scaled: ``real`` pixels to
[−1, 1] (p/127.5 − 1, a grid of step 2/255 that ``dequantize = true`` spreads noise over),
``token(V)`` pixels to the V levels ``round(p (V − 1) / 255)``. 10 % of the images (at least
one) are held out as test, chosen by the seed. A file Pillow cannot read is an error naming it.
``path`` is relative to the ``.dtg`` file's folder.

References: Pillow's ``Image.open``, ``ImageOps.fit`` (centre crop and resize).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..ir.space import Space, SpaceKind
from .errors import DataError
from .rows import Rows

__all__ = ["IMAGE_STEP", "check_images", "load_images"]

#: The grid step of real pixels scaled to [−1, 1] from 256 levels.
IMAGE_STEP = 2.0 / 255.0
_SUFFIXES = (".png", ".jpg", ".jpeg")


def check_images(options: dict[str, Any], space: Space) -> None:
    """Check ``path`` (text) and the declared space: ``real[C, H, W]`` or ``token(V)[C, H, W]``
    with C = 1 or 3.

    :raises DataError: for another space or a path that is not text.
    """
    path = options["path"]
    if not isinstance(path, (str, Path)) or not str(path):
        raise DataError(f"images: option path must be a folder name, got {path!r}")
    if len(space.shape) != 3 or space.shape[0] not in (1, 3):
        raise DataError(
            f"images() gives pictures as [C, H, W] with C = 1 (grey) or 3 (RGB), but the data "
            f"is declared {space}",
            "declare e.g. real[1, 28, 28] or real[3, 32, 32]",
        )


def _files(folder: Path, shown: str) -> list[Path]:
    if not folder.exists():
        raise DataError(f"images: no such folder: {shown}")
    if not folder.is_dir():
        raise DataError(f"images: {shown} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES and p.is_file())
    if len(files) < 2:
        raise DataError(
            f"images: {shown} holds {len(files)} .png/.jpg picture(s); at least 2 are needed "
            "(one is held out as test)"
        )
    return files


def _read(path: Path, channels: int, height: int, width: int) -> np.ndarray:
    # Pillow is optional for checking: imported only when pictures are read
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            picture = ImageOps.exif_transpose(picture)  # a camera's rotation, applied
            if picture.mode.startswith("I"):  # 16- or 32-bit grey: to 8 bits by its range
                deep = np.asarray(picture, dtype=np.float64)
                if deep.max(initial=0) > 65535 or deep.min(initial=0) < 0:
                    raise ValueError(f"{picture.mode} values outside 0 … 65535")
                scale = 257.0 if deep.max(initial=0) > 255 else 1.0
                picture = Image.fromarray(np.rint(deep / scale).astype(np.uint8))
            picture = picture.convert("L" if channels == 1 else "RGB")
            fitted = ImageOps.fit(picture, (width, height), Image.Resampling.LANCZOS)
            pixels = np.asarray(fitted, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"images: cannot read {path.name} in {path.parent}: {error}") from None
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)  # [C, H, W], 0 … 255


def load_images(options: Mapping[str, Any], space: Space, seed: int, base_dir: Path | None) -> Rows:
    """Read, scale and split the pictures (see the module docstring).

    :returns: the rows, with the file names in ``meta["files"]``.
    :raises DataError: naming the folder or the unreadable file.
    """
    shown = str(options["path"])
    folder = Path(shown) if Path(shown).is_absolute() or base_dir is None else base_dir / shown
    files = _files(folder, shown)
    channels, height, width = space.shape
    pixels = np.stack([_read(p, channels, height, width) for p in files])  # uint8 [N, C, H, W]
    if space.kind == SpaceKind.TOKEN:
        data = np.rint(pixels.astype(np.float64) * ((space.vocab or 256) - 1) / 255.0).astype(
            np.int64
        )
    else:
        data = (pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).astype(np.float32)
    perm = np.random.default_rng(seed).permutation(len(files))
    n_test = max(1, len(files) // 10)
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return Rows(data[train], data[test], {"files": [p.name for p in files]})

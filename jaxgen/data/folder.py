"""`folder:PATH`: a folder of PNG / JPEG images, one subfolder per class (PATH/<class>/), or a fixed split
(PATH/train/<class>/ and PATH/test/<class>/), read with Pillow into uint8 [N, S, S, C].

Every image is centre-cropped to a square and area-resized (PIL's BOX filter) to `image_size`, or, when it
is None, to the smallest square side among the images (all equal: no resize). Transparent images are
composited onto white; the images stay one grey channel when all of them are greyscale, else all are RGB.
Classes are the sorted subfolder names; files are read in sorted order, so the arrays are the same on every
machine. Host side only (numpy, Pillow)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from jaxgen.data.arrays import SPLIT_SEED, check_size, holdout
from jaxgen.errors import UserError

EXTENSIONS = (".png", ".jpg", ".jpeg")
GREY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")
SPLITS = ("train", "test")
# What Pillow raises on a file it cannot decode: UnidentifiedImageError and "truncated" are OSErrors,
# a broken PNG chunk is a SyntaxError, a huge image a DecompressionBombError.
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
LAYOUT = "PATH/<class>/*.png|jpg (or PATH/train/<class>/ and PATH/test/<class>/)"

Files = list[tuple[str, int]]  # (path, label)


def _subfolders(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _images_in(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        found = (e.path for e in entries if e.name.lower().endswith(EXTENSIONS) and e.is_file())
        return sorted(found)


def layout(root: Path) -> tuple[dict[str, Files | None], tuple[str, ...]]:
    """({"train": files, "test": files or None}, class names) of the folder, without reading an image."""
    # PATH/train/ and PATH/test/ (and no other subfolder) is a fixed split; either alone is that split
    # only (the other None). Otherwise each subfolder is a class and 1 in 10 per class is held out.
    where = f"folder:{root}"
    if not root.is_dir():
        raise UserError(f"{where}: no such folder: point folder:PATH at {LAYOUT}")
    top = _subfolders(root)
    parts = [s for s in SPLITS if s in top] if top and set(top) <= set(SPLITS) else []
    folders = {s: root / s for s in parts} if parts else {"all": root}
    classes = {s: _subfolders(f) for s, f in folders.items()}
    names = tuple(sorted(set().union(*classes.values())))
    if not names:
        raise UserError(f"{where} has no class subfolders: put the images in {LAYOUT}")
    label = {c: i for i, c in enumerate(names)}
    files = {s: [(p, label[c]) for c in classes[s] for p in _images_in(folders[s] / c)] for s in folders}
    if not any(files.values()):
        raise UserError(f"{where} has no .png/.jpg/.jpeg images in its class folders ({', '.join(names)})")
    if parts:
        return {s: files.get(s) for s in SPLITS}, names
    every = files["all"]
    train_idx, test_idx = holdout(np.array([y for _, y in every], np.int32))
    return {"train": [every[i] for i in train_idx], "test": [every[i] for i in test_idx]}, names


def _unreadable(path: str, e: BaseException) -> UserError:
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    return UserError(f"cannot read image {path} ({reason}): replace or remove that file")


def _headers(paths: list[str]) -> tuple[str, int, set[tuple[int, int]]]:
    """(mode "L" or "RGB" for all, smallest square side, every (w, h) seen), reading headers only."""
    grey, sizes = True, set()
    for path in paths:
        try:
            with Image.open(path) as im:
                mode, size = im.mode, im.size
        except _PIL_ERRORS as e:
            raise _unreadable(path, e) from None
        grey = grey and mode in GREY_MODES
        sizes.add(size)
    return ("L" if grey else "RGB"), min(min(wh) for wh in sizes), sizes


def square_image(im: Image.Image, mode: str, size: int) -> np.ndarray:
    """IM on white (if transparent), in MODE, centre-cropped to a square and BOX-resized to SIZE: uint8."""
    if im.has_transparency_data:
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        im = Image.new(mode, im.size, "white")
        im.paste(rgba, mask=rgba.getchannel("A"))
    elif im.mode != mode:
        im = im.convert(mode)
    w, h = im.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    if side != size:
        im = im.resize((size, size), Image.Resampling.BOX, box=box)
    elif w != h:
        im = im.crop(box)
    return np.asarray(im)


def _decode(paths: list[str], mode: str, size: int) -> np.ndarray:
    """uint8 [N, SIZE, SIZE, C] of the files, in order (one pass: open, composite, crop, resize)."""
    out = np.empty((len(paths), size, size, 1 if mode == "L" else 3), np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as im:
                im.load()  # decode now: a truncated file fails here, inside the try
                if im.format == "JPEG":  # phone photos store their rotation in EXIF
                    im = ImageOps.exif_transpose(im)
                out[i] = square_image(im, mode, size).reshape(out.shape[1:])
        except _PIL_ERRORS as e:
            raise _unreadable(path, e) from None
    return out


def read(root: Path, image_size: int | None) -> tuple[dict | None, dict | None, tuple[str, ...]]:
    """(train, test, class names) of folder:ROOT: uint8 [N, S, S, C] images, int32 labels."""
    # Each split in a fixed shuffled order: the files are sorted by class, and the first images of a
    # split (figures, quick checks) should mix the classes.
    splits, names = layout(root)
    paths = [p for files in splits.values() if files for p, _ in files]
    mode, side, sizes = _headers(paths)
    if image_size:
        w, h = min(sizes, key=min)
        what = f"the {w}x{h} images" if len(sizes) == 1 else f"the smallest image ({w}x{h})"
        check_size(image_size, side, side, "", f"{what} of folder:{root}")
    out = {}
    for i, (name, files) in enumerate(splits.items()):
        if not files:  # an absent split, or one whose class folders hold no image
            out[name] = None
            continue
        order = np.random.default_rng([SPLIT_SEED, 1, i]).permutation(len(files))
        files = [files[j] for j in order]
        images = _decode([p for p, _ in files], mode, image_size or side)
        out[name] = {"image": images, "label": np.array([y for _, y in files], np.int32)}
    return out["train"], out["test"], names

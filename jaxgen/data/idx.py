"""The IDX format of the official MNIST / Fashion-MNIST files: read, write, and a folder of the four files
as train and test splits (gzipped or not) of uint8 [N, H, W, C] images."""

from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np

from jaxgen.errors import UserError

IMAGE_SIDE = 28  # MNIST's (and Fashion-MNIST's) side; other IDX images may have any size
IMAGE_DIM = IMAGE_SIDE * IMAGE_SIDE

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}  # fmt: skip
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}  # fmt: skip


def _open(path: Path, mode: str):
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped if its name ends in .gz) into a native-endian numpy array."""
    path = Path(path)
    try:
        with _open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise UserError(f"cannot read IDX file {path}: {e}; check the file or download it again") from None
    # Header: two zero bytes, a dtype code, the number of dims, then each dim as a big-endian uint32.
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES or data[3] == 0:
        raise UserError(f"{path} is not an IDX file (bad magic number {data[:4].hex()}); download it again")
    ndim, dtype = data[3], np.dtype(_IDX_DTYPES[data[2]])
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"{path} is truncated inside its IDX header; download it again")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise UserError(f"{path} has {len(data)} bytes, its header {shape} needs {expected}; get it again")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ARRAY as one IDX file (gzipped if PATH ends in .gz)."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None or not 1 <= array.ndim <= 255:
        raise UserError(f"cannot write {array.dtype} {array.shape} as IDX: use (u)int8/int16/int32/float")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with _open(Path(path), "wb") as f:
        f.write(header + array.astype(_IDX_DTYPES[code], copy=False).tobytes())


def find(folder: Path, stem: str) -> Path | None:
    """The file of `stem` in `folder`: official name, gzipped or not, or the train-images.idx3-ubyte form."""
    # Accept the official names, gzipped or not, and the common "train-images.idx3-ubyte" variant.
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
    return None


def idx_splits(folder: Path) -> tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]:
    expected = ", ".join(s for pair in IDX_FILES.values() for s in pair)
    if not folder.is_dir():
        raise UserError(f"IDX folder {folder} not found: point idx:PATH at a folder of {expected} (.gz ok)")
    splits = {}
    for name, (images_stem, labels_stem) in IDX_FILES.items():
        images_path, labels_path = find(folder, images_stem), find(folder, labels_stem)
        if images_path is None and labels_path is None:
            splits[name] = None
            continue
        if images_path is None or labels_path is None:
            missing = images_stem if images_path is None else labels_stem
            raise UserError(f"{folder} has half of the {name} split: add {missing} (or .gz) beside the other")
        images, labels = read_idx(images_path), read_idx(labels_path)
        channels_ok = images.ndim == 3 or (images.ndim == 4 and images.shape[3] in (1, 3))
        if images.dtype != np.uint8 or not channels_ok or 0 in images.shape[1:]:
            raise UserError(
                f"{images_path} holds {images.dtype}{list(images.shape)}: need uint8[N, H, W] (MNIST: 28x28)"
            )
        if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
            got = f"{labels.dtype}{list(labels.shape)}"
            raise UserError(
                f"{labels_path} has {got} labels for {len(images)} images: need integer [N]; fix it"
            )
        if len(labels) and labels.min() < 0:
            raise UserError(f"{labels_path} has negative labels: number the classes 0..K-1")
        images = images[..., None] if images.ndim == 3 else images  # [N, H, W, C]: the pixels as stored
        splits[name] = {"image": images, "label": labels.astype(np.int32)}
    if splits["train"] is None and splits["test"] is None:
        raise UserError(f"IDX folder {folder} has no MNIST files: expected {expected} (each may end in .gz)")
    return splits["train"], splits["test"]

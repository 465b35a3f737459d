"""Data: where examples come from (sources: a spec -> host arrays and splits) and how they reach the device
(batches: pure functions of (seed, step), epoch shuffles, augmentation, normalisation).

`jaxgen.data.load(spec, image_size)`, `from_arrays`, `save_npz` and the other source functions are
re-exported here (host side, no JAX); device batching is `from jaxgen.data import batches`.
"""

from jaxgen.data.arrays import save_npz
from jaxgen.data.sources import (
    IMAGE_DIM,
    IMAGE_SIDE,
    MOON_COMPONENTS,
    SPEC_FORMS,
    TOY_CLASSES,
    TOYS,
    Dataset,
    from_arrays,
    load,
    parse_spec,
    read_idx,
    split,
    toy_classes,
    toy_logpdf,
    with_validation,
    write_idx,
)

__all__ = [
    "IMAGE_DIM",
    "IMAGE_SIDE",
    "MOON_COMPONENTS",
    "SPEC_FORMS",
    "TOYS",
    "TOY_CLASSES",
    "Dataset",
    "from_arrays",
    "load",
    "parse_spec",
    "read_idx",
    "save_npz",
    "split",
    "toy_classes",
    "toy_logpdf",
    "with_validation",
    "write_idx",
]

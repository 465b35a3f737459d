"""The best judge Fréchet a generator of the training images can hope for: real training images scored as if
they were samples, against the reference images a GAN report uses.

    python experiments/judge_ceiling.py --data embedded --judge runs/judge-mlp-ls0 \
        --reference idx:../shared/data/mnist-test5k [--n 2500] [--draws 3]
    python experiments/judge_ceiling.py --data fashion --judge runs/judge-fashion-shift2 --n 2000

A generator that learnt its training images' distribution perfectly scores what those images score (up to
sampling noise): this is the floor its Fréchet distance is measured against, and it is above the
real-vs-real figure `Judge.report` prints (two halves of the reference set) when the training images and
the reference differ, or when the judge was trained on the training images (its features of images it has
seen differ from those of images it has not). Prints one JSON line per draw, then their range.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from jaxgen import data
from jaxgen.judge import Judge


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="embedded", help="the training images (a --data spec)")
    p.add_argument("--judge", required=True, help="a classifier run directory (jaxgen train mlp)")
    p.add_argument("--reference", default="", help="a --data spec whose test split is the reference; "
                   "default: --data's own test split")  # fmt: skip
    p.add_argument("--n", type=int, default=2500, help="training images per draw (as a GAN eval)")
    p.add_argument("--draws", type=int, default=3)
    args = p.parse_args()
    judge = Judge(args.judge)
    ds = data.load(args.data)
    train = np.asarray(data.split(ds, "train")["image"], np.float32) / 255.0
    ref = data.load(args.reference).test if args.reference else ds.test
    ref01 = np.asarray(ref["image"], np.float32) / 255.0
    rng = np.random.default_rng(0)
    scores = []
    for draw in range(args.draws):
        x = train[rng.permutation(len(train))[: args.n]]
        rep = judge.report(x, ref01)
        scores.append(rep["judge_frechet"])
        keep = ("judge_frechet", "judge_frechet_real", "judge_confidence", "judge_confidence_real", "judge_n")
        print(json.dumps({"data": args.data, "reference": args.reference or args.data, "draw": draw,
                          **{k: rep[k] for k in keep}}))  # fmt: skip
    print(json.dumps({"training_images_frechet_min": min(scores), "max": max(scores)}))


if __name__ == "__main__":
    main()

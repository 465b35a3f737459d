"""A trained classifier run of jaxgen's own (`jaxgen train mlp`, an MLP or with `--set arch=conv` a CNN) as
the judge of generated images, and the one report every generator gets from it (Judge.report).

In the judge's last hidden features (not FID: no Inception network), a set of images is compared with real
test images by the Fréchet distance, KID, precision / recall / density / coverage and the judge's class
shares, and so are three references of the same size: other real test images (the floor), training images
(what a copy of the training data scores) and a probabilistic-PCA sampler (the line to clear). A judge
favours generators built like itself (on Fashion-MNIST an MLP judge ranked the MLP GAN ahead of DCGAN and a
CNN judge the reverse: docs/quality.md), so every table is reported under judges of two architectures
(tasks.base.judge_reports), and a ranking is claimed only where they agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import metrics, runs
from jaxgen.errors import UserError
from jaxgen.tasks.base import in_batches

BATCH = 1000
MIN_N = 20  # images per set below which no measure here means anything
PPCA_K = 16  # components of the probabilistic-PCA reference (docs/quality.md: the line to clear)
PPCA_FIT = 10_000  # training images it is fitted to (all of them up to this many)
PRDC_K = 5  # Naeem et al.'s k
KID_SUBSETS = 100


class Judge:
    """The newest good checkpoint of an mlp run, applied to float images in [0, 1]."""

    def __init__(self, run_dir: str | Path):
        run_dir = Path(run_dir)
        if not (run_dir / "config.json").exists():
            raise UserError(
                f"--judge {run_dir}: no jaxgen run there; train one with jaxgen train mlp --workdir {run_dir}"
            )
        run = runs.load_run(run_dir)
        task_name, spec, _ = run
        if task_name != "mlp":
            raise UserError(
                f"--judge {run_dir} is a {task_name} run: the judge must be an mlp run (jaxgen train mlp)"
            )
        if spec.startswith("toy:"):
            raise UserError(
                f"--judge {run_dir} was trained on {spec}: the judge must be an mlp run on images"
            )
        task, state, step, digest, ds, *_ = runs.restore_for_eval(run_dir, run=run)
        self.class_names = tuple(ds.class_names)
        self.shape = tuple(task.shape)  # (H, W, C) of the images it was trained on: what it can judge
        self.run_dir, self.step, self.params_sha256 = str(run_dir), step, digest
        self.arch = task.cfg.arch  # mlp or conv: a report names the kind of judge it asked
        self.params = state.params
        model = task.model
        self._apply = jax.jit(lambda p, x: model.apply(p, x, train=False, features=True))

    def __call__(self, images01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities [N, classes], last hidden features [N, F]) of float images in [0, 1] of the
        judge's own shape ([N, H, W, C], or flat rows of as many numbers)."""
        x = np.asarray(images01, np.float32)
        if int(np.prod(x.shape[1:])) != int(np.prod(self.shape)):
            shown = "x".join(map(str, x.shape[1:]))
            raise UserError(
                f"--judge {self.run_dir} judges {'x'.join(map(str, self.shape))} images, these are {shown}:"
                " train the judge on the same data (jaxgen train mlp --data SPEC --set arch=conv)"
            )
        logits, feats = in_batches(
            lambda chunk: self._apply(self.params, jnp.asarray(chunk)), x.reshape(len(x), *self.shape), BATCH
        )
        return np.asarray(jax.nn.softmax(logits)), feats

    def report(
        self, samples01: np.ndarray, real01: np.ndarray, train01: np.ndarray | None = None, *, seed: int = 0
    ) -> dict[str, Any]:
        """How this judge sees generated images, beside three references of the same size n.

        n = min(len(samples), len(real) // 2); n real images drawn at random (seed) are the reference every
        set is compared with, in the judge's last hidden features. Sets: `samples` (the generator's first n);
        `real` (n other real images: the floor, what a perfect generator of the test distribution scores);
        with the training images, `training` (n of them, as if they were samples: what a copy of the
        training data scores, the ceiling on small data) and `ppca` (n draws of a probabilistic PCA with
        PPCA_K components fitted to them, clipped to [0, 1]: the line any generator must clear).
        Each set gets `measures` (Fréchet, KID, precision, recall, density, coverage, class shares)."""
        samples01, real01 = np.asarray(samples01, np.float32), np.asarray(real01, np.float32)
        n = min(len(samples01), len(real01) // 2)
        if n < MIN_N:
            raise UserError(
                f"the judge compares {n} images per set ({len(samples01)} samples, {len(real01)} real), under"
                f" {MIN_N}: sample more, or give --data a larger test split"
            )
        rng = np.random.default_rng(seed)
        halves = rng.permutation(len(real01))  # test splits may come in class order (image folders do)
        reference, other = real01[np.sort(halves[:n])], real01[np.sort(halves[n : 2 * n])]
        sets = {"samples": samples01[:n], "real": other}
        if train01 is not None:
            train01 = np.asarray(train01, np.float32)
            sets["training"] = train01[np.sort(rng.choice(len(train01), min(n, len(train01)), replace=False))]
            fit = train01[rng.choice(len(train01), min(PPCA_FIT, len(train01)), replace=False)]
            ppca = metrics.ppca_sample(fit.reshape(len(fit), -1), PPCA_K, n, seed)
            sets["ppca"] = np.clip(ppca, 0.0, 1.0).astype(np.float32).reshape(n, *train01.shape[1:])
        ref_probs, ref_feats = self(reference)
        ref_shares = _shares(ref_probs)
        out: dict[str, Any] = {
            "judge": self.run_dir,
            "judge_arch": self.arch,
            "judge_step": self.step,
            "n": int(n),
            "class_names": list(self.class_names),
            "reference_class_shares": [round(float(f), 4) for f in ref_shares],
        }
        for name, x in sets.items():
            probs, feats = self(x)
            out[name] = measures(feats, probs, ref_feats, ref_shares, seed)
        return out


def measures(
    feats: np.ndarray, probs: np.ndarray, ref_feats: np.ndarray, ref_shares: np.ndarray, seed: int = 0
) -> dict[str, Any]:
    """One set of images against the reference, in judge features: Fréchet distance; KID (unbiased, mean
    and std over KID_SUBSETS subsets of min(1000, n)); precision, recall, density, coverage (Naeem et al.
    2020, k = PRDC_K); the share of each class the judge sees, its smallest, the total-variation distance
    of the shares from the reference's, and the judge's mean confidence."""
    kid_mean, kid_std = metrics.kid(feats, ref_feats, subsets=KID_SUBSETS, subset_size=1000, seed=seed)
    shares = _shares(probs)
    return {
        "frechet": round(metrics.frechet_distance(feats, ref_feats), 4),
        "kid": round(kid_mean, 6),
        "kid_std": round(kid_std, 6),
        **{k: round(v, 4) for k, v in metrics.prdc(ref_feats, feats, PRDC_K).items()},
        "class_shares": [round(float(f), 4) for f in shares],
        "min_class_share": round(float(shares.min()), 4),
        "class_share_tv": round(float(0.5 * np.abs(shares - ref_shares).sum()), 4),
        "confidence": round(float(probs.max(1).mean()), 4),
    }


def _shares(probs: np.ndarray) -> np.ndarray:
    """The share of images the judge puts in each class (its top class)."""
    return np.bincount(probs.argmax(1), minlength=probs.shape[1]) / max(len(probs), 1)

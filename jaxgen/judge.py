"""A trained classifier run of jaxgen's own (`jaxgen train mlp`, an MLP or with `--set arch=conv` a CNN) as
the judge of generated images: which class, how sure, and a Fréchet distance between its hidden features of
generated and of real images.

This is not FID (no Inception network): it is the Fréchet distance in the judge's last hidden layer,
reported beside the same distance between two halves of real test images, its floor. The judge's
architecture matters: on Fashion-MNIST an MLP judge ranks the MLP GAN far above DCGAN and a CNN judge the
reverse (docs/conv.md, "Which judge"), so a report names its judge and compares generators under one.
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

    def report(self, samples01_NxD: np.ndarray, real01_MxD: np.ndarray) -> dict[str, Any]:
        """How the judge sees generated digits, beside real ones.

        digit_fraction[k]: share of samples the judge calls class k (named class_names[k]);
        judge_confidence: mean top probability;
        judge_frechet: Fréchet distance (judge features) of m samples against half A of the real images,
        judge_frechet_real: the same between real halves B and A (m = half the real set, so the sizes match).
        """
        probs, feats = self(samples01_NxD)
        real_probs, real_feats = self(real01_MxD)
        pred = probs.argmax(1)
        fractions = np.bincount(pred, minlength=probs.shape[1]) / max(len(pred), 1)
        half = len(real_feats) // 2
        m = min(half, len(feats))
        return {
            "judge": self.run_dir,
            "judge_step": self.step,
            "digit_fraction": [round(float(f), 4) for f in fractions],  # by class index (digits or not)
            "class_names": list(self.class_names),
            "min_digit_fraction": round(float(fractions.min()), 4),
            "judge_confidence": round(float(probs.max(1).mean()), 4),
            "judge_confidence_real": round(float(real_probs.max(1).mean()), 4),
            "judge_frechet": round(metrics.frechet_distance(feats[:m], real_feats[:half]), 4),
            "judge_frechet_real": round(
                metrics.frechet_distance(real_feats[half : half + m], real_feats[:half]), 4
            ),
            "judge_n": int(m),
        }

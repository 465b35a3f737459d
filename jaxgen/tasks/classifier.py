"""Classifier: an MLP trained with softmax cross-entropy (optax), AdamW, warm-up + cosine decay.

On images the input is uint8 pixels [B, H, W, C] (scaled to [0, 1] inside the step, randomly distorted
when `augment`); on a toy (`--data toy:moons`, ...) it is the float point itself and the class its label (the
moon, or the mixture component), with no augmentation; its figure is then p(y | x) over the plane.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen import models
from jaxgen.configs.classifier import MLPConfig
from jaxgen.data import Dataset, batches
from jaxgen.errors import UserError
from jaxgen.tasks import base
from jaxgen.tasks.base import Batch, Metrics, State

EVAL_BATCH = 1000


class Classifier:
    """`jaxgen train mlp`: image (or toy point) -> class logits."""

    name = "mlp"

    headline = ("loss", "accuracy")
    eval_headline = ("accuracy", "loss")

    def __init__(self, cfg: MLPConfig, ds: Dataset):
        if ds.num_classes < 2:
            raise UserError(
                f"mlp needs data with at least two classes; {ds.spec!r} has {ds.num_classes}: "
                "use toy:moons, toy:ring8, toy:grid25 or MNIST"
            )
        self.cfg = cfg
        self.kind, self.spec, self.info = ds.kind, ds.spec, ds.info
        self.shape = tuple(ds.shape)  # (H, W, C) of images, (D,) of toy points: the example batch's
        # Affine distortions are for images; a toy point is never distorted.
        self.augment = cfg.augment and ds.kind == "image"
        self.num_classes = ds.num_classes
        self.class_names = ds.class_names  # figures and reports name classes by these
        self.examples_per_step = cfg.batch_size
        self.model = models.classifier_net(cfg, ds.num_classes)
        self.schedule = optax.warmup_cosine_decay_schedule(
            init_value=0.0, peak_value=cfg.lr, warmup_steps=cfg.warmup, decay_steps=cfg.steps
        )
        self.tx = optax.adamw(self.schedule, weight_decay=cfg.weight_decay)
        self._apply = jax.jit(self._eval_logits)

    def _eval_logits(self, params: Any, images: jax.Array) -> jax.Array:
        """Eval-mode logits; with tta=mirror the log of p(y | x) averaged over the image and its mirror."""
        x = batches.normalise(images)
        logits = self.model.apply(params, x, train=False)
        if self.cfg.tta != "mirror":
            return logits
        mirrored = self.model.apply(params, batches.mirror(x), train=False)
        return jnp.logaddexp(jax.nn.log_softmax(logits), jax.nn.log_softmax(mirrored)) - jnp.log(2.0)

    def init(self, key: jax.Array) -> State:
        """Fresh parameters (and BatchNorm statistics) and optimizer state at step 0."""
        variables = self.model.init(key, jnp.zeros((1, *self.shape), jnp.float32))
        trainable, _ = base.split_variables(variables)
        return base.State(step=jnp.zeros((), jnp.int32), params=variables, opt_state=self.tx.init(trainable))

    def loss(self, logits_BxC: jax.Array, labels_B: jax.Array, smoothing: float = 0.0) -> jax.Array:
        """Mean softmax cross-entropy against (optionally smoothed) one-hot labels."""
        targets = optax.smooth_labels(jax.nn.one_hot(labels_B, self.num_classes), smoothing)
        return optax.softmax_cross_entropy(logits_BxC, targets).mean()

    def step(self, state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
        """One AdamW step on the cross-entropy of one (augmented) batch."""
        augment_key, dropout_key = jax.random.split(key)
        x_BxD = batches.normalise(batch["image"])
        if self.augment:
            c = self.cfg
            x_BxD = batches.affine_images(augment_key, x_BxD, c.max_shift, c.max_rotate, c.max_scale, c.hflip)
            if c.erase > 0:  # its own key, so the other draws are the same bits with or without it
                x_BxD = batches.random_erase(jax.random.fold_in(augment_key, 11), x_BxD, c.erase)

        trainable, stats = base.split_variables(state.params)

        def loss_fn(trainable):
            logits, new_stats = base.apply_train(
                self.model, trainable, stats, x_BxD, train=True, rngs={"dropout": dropout_key}
            )
            return self.loss(logits, batch["label"], self.cfg.label_smoothing), (logits, new_stats)

        (loss, (logits, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        updates, opt_state = self.tx.update(grads, state.opt_state, trainable)
        params = {**optax.apply_updates(trainable, updates), **stats}
        metrics = {
            "loss": loss,
            "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"]),
            "grad_norm": base.sampled_norm(state.step, grads),
            "lr": self.schedule(state.step),
        }
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    def logits(self, params: Any, images: np.ndarray) -> np.ndarray:
        """Eval-mode logits for any number of images (or toy points), in fixed-size jitted batches."""
        return base.in_batches(lambda chunk: self._apply(params, chunk), images, EVAL_BATCH)

    def probs(self, params: Any, x: np.ndarray) -> np.ndarray:
        """p(y | x), float64[N, C]: the softmax of the eval-mode logits."""
        logits = np.asarray(self.logits(params, x), np.float64)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def evaluate(
        self,
        params: Any,
        arrays: dict[str, Any],
        key: jax.Array | None = None,
        judge: Any = None,
        full: bool = False,
    ) -> dict[str, float]:
        """Accuracy, balanced accuracy and un-smoothed cross-entropy on a whole split (deterministic: `key` is
        unused; the checkpoint form is already the full one, so `full` changes nothing)."""
        if judge is not None:
            raise UserError("--judge scores generated images: it applies to ae and gan runs, not mlp")
        logits = self.logits(params, np.asarray(arrays["image"]))
        labels = np.asarray(arrays["label"])
        loss = float(self.loss(jnp.asarray(logits), jnp.asarray(labels)))
        right = logits.argmax(-1) == labels
        # the mean of the per-class accuracies over the classes present: what accuracy means when one class
        # is most of the data (people_body is 55 % of the emoji test images)
        present = np.unique(labels)
        balanced = float(np.mean([right[labels == c].mean() for c in present])) if len(present) else 0.0
        return {
            "accuracy": float(np.mean(right)),
            "balanced_accuracy": balanced,
            "loss": loss,
            "n": int(len(labels)),
        }

    def preview(self, params: Any, arrays: dict[str, Any]) -> tuple[str, np.ndarray] | None:
        """The checkpoint image on images (none on toys): the first misclassified test images, titled
        "predicted≠true" (jaxgen.plots.classifier.preview)."""
        if self.kind != "image":
            return None
        from jaxgen.plots import classifier

        return "mistakes", classifier.preview(self, params, arrays)

    def figures(
        self, params: Any, arrays: dict[str, Any], out_dir: Path, step: int | None = None, device: str = "?"
    ) -> list[Path]:
        """A grid of test images with predicted (and, where wrong, true) labels, and a confusion matrix;
        on 2-D toys p(y | x) over the plane with the decision boundary (jaxgen.plots.classifier)."""
        from jaxgen.plots import classifier

        return classifier.figures(self, params, arrays, Path(out_dir), step, device)

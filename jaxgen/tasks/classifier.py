"""Classifier: an MLP trained with softmax cross-entropy (optax), AdamW, warm-up + cosine decay.

On MNIST the input is 784 uint8 pixels (scaled to [0, 1] inside the step, randomly distorted when
`augment`); on a toy (`--data toy:moons`, ...) it is the float point itself and the class its label (the
moon, or the mixture component), with no augmentation; its figure is then p(y | x) over the plane.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen import data
from jaxgen.config import MLPConfig
from jaxgen.data import Dataset
from jaxgen.errors import UserError
from jaxgen.models import MLP, compute_dtype
from jaxgen.tasks.base import Batch, Metrics, State, in_batches, sampled_norm

EVAL_BATCH = 1000


def normalise(images: jax.Array) -> jax.Array:
    """uint8 pixels (kept as uint8 on the device) -> float32 in [0, 1], inside the jitted step; float
    inputs (toy points) are used as they are."""
    if jnp.issubdtype(images.dtype, jnp.integer):
        return images.astype(jnp.float32) / 255.0
    return images.astype(jnp.float32)


class Classifier:
    """`jaxgen train mlp`: image (or toy point) -> class logits."""

    name = "mlp"
    headline = ("loss", "accuracy")

    def __init__(self, cfg: MLPConfig, ds: Dataset):
        if ds.num_classes < 2:
            raise UserError(
                f"mlp needs data with at least two classes; {ds.spec!r} has {ds.num_classes}: "
                "use toy:moons, toy:ring8, toy:grid25 or MNIST"
            )
        self.cfg = cfg
        self.kind, self.spec, self.info = ds.kind, ds.spec, ds.info
        self.input_dim = int(ds.info["dim"]) if ds.kind == "toy" else data.IMAGE_DIM
        # Affine distortions are for images; a toy point is never distorted.
        self.augment = cfg.augment and ds.kind == "image"
        self.num_classes = ds.num_classes
        self.examples_per_step = cfg.batch_size
        self.model = MLP(
            hidden=cfg.hidden,
            num_outputs=ds.num_classes,
            activation=cfg.activation,
            kernel_init=cfg.init,
            dropout=cfg.dropout,
            dtype=compute_dtype(cfg.dtype),
        )
        self.schedule = optax.warmup_cosine_decay_schedule(
            init_value=0.0, peak_value=cfg.lr, warmup_steps=cfg.warmup, decay_steps=cfg.steps
        )
        self.tx = optax.adamw(self.schedule, weight_decay=cfg.weight_decay)
        self._apply = jax.jit(lambda params, images: self.model.apply(params, normalise(images), train=False))

    def init(self, key: jax.Array) -> State:
        """Fresh parameters and optimizer state at step 0."""
        params = self.model.init(key, jnp.zeros((1, self.input_dim), jnp.float32))
        return State(step=jnp.zeros((), jnp.int32), params=params, opt_state=self.tx.init(params))

    def loss(self, logits_BxC: jax.Array, labels_B: jax.Array, smoothing: float = 0.0) -> jax.Array:
        """Mean softmax cross-entropy against (optionally smoothed) one-hot labels."""
        targets = optax.smooth_labels(jax.nn.one_hot(labels_B, self.num_classes), smoothing)
        return optax.softmax_cross_entropy(logits_BxC, targets).mean()

    def step(self, state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
        """One AdamW step on the cross-entropy of one (augmented) batch."""
        augment_key, dropout_key = jax.random.split(key)
        x_BxD = normalise(batch["image"])
        if self.augment:
            c = self.cfg
            x_BxD = data.affine_images(augment_key, x_BxD, c.max_shift, c.max_rotate, c.max_scale)

        def loss_fn(params):
            logits = self.model.apply(params, x_BxD, train=True, rngs={"dropout": dropout_key})
            return self.loss(logits, batch["label"], self.cfg.label_smoothing), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            "loss": loss,
            "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"]),
            "grad_norm": sampled_norm(state.step, grads),
            "lr": self.schedule(state.step),
        }
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    def logits(self, params: Any, images: np.ndarray) -> np.ndarray:
        """Eval-mode logits for any number of images (or toy points), in fixed-size jitted batches."""
        return in_batches(lambda chunk: self._apply(params, chunk), images, EVAL_BATCH)

    def probs(self, params: Any, x: np.ndarray) -> np.ndarray:
        """p(y | x), float64[N, C]: the softmax of the eval-mode logits."""
        logits = np.asarray(self.logits(params, x), np.float64)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def evaluate(
        self, params: Any, arrays: dict[str, Any], key: jax.Array | None = None, judge: Any = None
    ) -> dict[str, float]:
        """Accuracy and un-smoothed cross-entropy on a whole split (deterministic: `key` is unused)."""
        if judge is not None:
            raise UserError("--judge scores generated images: it applies to ae and gan runs, not mlp")
        logits = self.logits(params, np.asarray(arrays["image"]))
        labels = np.asarray(arrays["label"])
        loss = float(self.loss(jnp.asarray(logits), jnp.asarray(labels)))
        return {"accuracy": float(np.mean(logits.argmax(-1) == labels)), "loss": loss, "n": int(len(labels))}

    def figures(
        self, params: Any, arrays: dict[str, Any], out_dir: Path, step: int | None = None
    ) -> list[Path]:
        """A grid of test digits with predicted (and, where wrong, true) labels, and a confusion matrix;
        on 2-D toys p(y | x) over the plane with the decision boundary."""
        from jaxgen import plots

        if self.kind == "toy":
            if self.input_dim != 2:
                return []
            from jaxgen import plots_toy

            return [
                plots_toy.class_probability(self, params, arrays, Path(out_dir) / "p_y_given_x.png", step)
            ]
        images, labels = np.asarray(arrays["image"]), np.asarray(arrays["label"])
        pred = self.logits(params, images).argmax(-1)
        return [
            plots.prediction_grid(images[:64], labels[:64], pred[:64], Path(out_dir) / "predictions.png"),
            plots.confusion(labels, pred, self.num_classes, Path(out_dir) / "confusion.png"),
        ]

"""Autoencoder (and VAE): an image of H x W x C pixels (D = H*W*C numbers) -> `latent_dim` code -> D pixel
logits, trained by the one driver.

Plain AE: per-pixel sigmoid cross-entropy from logits (or squared error of the sigmoid), optionally denoising.
VAE (`variational=true`): q(z|x) = N(mu, diag(exp(logvar))), z by reparameterisation, loss = the negative
ELBO per pixel value: (Σ_pixels BCE + beta KL(q(z|x) || N(0, I))) / D. What the likelihood is: p(x|z) is
one Bernoulli per pixel value (each colour channel its own) whose mean is the decoder's sigmoid, the classic
MNIST choice, applied to intensities in [0, 1]. It is a cross-entropy, not a normalised density of 8-bit
colours, so the ELBO bounds log p(x) under that per-value Bernoulli reading, on grey and colour images
alike; it is reported in nats per image and in bits per dimension (nats / (D ln 2)).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen import data, metrics, models
from jaxgen.configs.autoencoder import AEConfig
from jaxgen.data import Dataset, batches
from jaxgen.tasks import base
from jaxgen.tasks.base import Batch, Metrics, State

EVAL_BATCH = 1000
KNN_K = 5
JUDGE_SAMPLES = 2000
# Training images behind the PCA baseline, the checkpoints' kNN reference set and the code mixture: all of
# them up to REFERENCE_N, beyond that a fixed subsample (seed REFERENCE_SEED, whatever the run's seed), so
# a checkpoint's evaluation costs seconds on 60,000 images. `jaxgen eval` (full=True) classifies by all.
REFERENCE_N = 10_000
REFERENCE_SEED = 0


def kl_to_standard_normal(mu_BxZ: jax.Array, logvar_BxZ: jax.Array) -> jax.Array:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, in nats."""
    return 0.5 * jnp.sum(mu_BxZ**2 + jnp.exp(logvar_BxZ) - 1.0 - logvar_BxZ, axis=-1)


def pixel_bce(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Per-example mean over pixel values (every axis but the first) of the sigmoid cross-entropy of logits
    against targets in [0, 1]."""
    bce = optax.sigmoid_binary_cross_entropy(logits, x)
    return bce.reshape(bce.shape[0], -1).mean(-1)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    """Host-side sigmoid in float64 (pixel probabilities for metrics and figures)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


class Autoencoder:
    """`jaxgen train ae`: image -> code -> image."""

    name = "ae"

    headline = ("loss", "recon_bce")

    def __init__(self, cfg: AEConfig, ds: Dataset):
        self.cfg = cfg
        self.ds = ds
        self.class_names = ds.class_names  # figures and reports name classes by these
        self.examples_per_step = cfg.batch_size
        self.shape = tuple(ds.shape)  # (H, W, C): the decoder makes images of the data's shape
        self.dim = int(np.prod(self.shape))  # numbers per image: the D of "a point in D dimensions"
        self.model = models.autoencoder_net(cfg, self.shape)
        self.schedule = optax.cosine_decay_schedule(cfg.lr, cfg.steps)
        self.tx = optax.adamw(self.schedule, weight_decay=cfg.weight_decay)
        model = self.model
        self._encode = jax.jit(lambda p, x: model.apply(p, x, method=model.encode))  # (mu, logvar | None)
        self._decode = jax.jit(lambda p, z: model.apply(p, z, method=model.decode))
        self._pca: metrics.PCA | None = None

    # ---------------------------------------------------------------- training

    def init(self, key: jax.Array) -> State:
        """Fresh parameters (and BatchNorm statistics) and optimizer state at step 0."""
        variables = self.model.init(key, jnp.zeros((1, *self.shape), jnp.float32))
        trainable, _ = base.split_variables(variables)
        return base.State(step=jnp.zeros((), jnp.int32), params=variables, opt_state=self.tx.init(trainable))

    def loss(self, trainable: Any, stats: dict, x_BxD: jax.Array, target_BxD: jax.Array, key: jax.Array):
        """(loss, (metrics, statistics after the batch)) of one training batch: reconstruction (+ beta KL
        for a VAE), per pixel."""
        z_key, dropout_key = jax.random.split(key)
        rngs = {"dropout": dropout_key}
        model = self.model
        (mu, logvar), stats = base.apply_train(
            model, trainable, stats, x_BxD, True, method=model.encode, rngs=rngs
        )
        z = mu
        if self.cfg.variational:
            z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(z_key, mu.shape)
        logits, stats = base.apply_train(model, trainable, stats, z, True, method=model.decode, rngs=rngs)
        bce_B = pixel_bce(logits, target_BxD)
        out = {"recon_bce": bce_B.mean()}
        if self.cfg.loss == "mse":
            out["recon_mse"] = jnp.mean((jax.nn.sigmoid(logits) - target_BxD) ** 2)
            loss = out["recon_mse"]
        else:
            loss = out["recon_bce"]
        if self.cfg.variational:
            kl_B = kl_to_standard_normal(mu, logvar)
            out["kl"] = kl_B.mean()
            loss = loss + self.cfg.beta * out["kl"] / self.dim
        return loss, (out, stats)

    def step(self, state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
        """One AdamW step on the reconstruction loss of one (augmented, optionally noised) batch."""
        augment_key, noise_key, loss_key = jax.random.split(key, 3)
        x_BxD = batches.normalise(batch["image"])
        c = self.cfg
        if c.augment:
            moved = batches.affine_images(augment_key, x_BxD, c.max_shift, c.max_rotate, c.max_scale, c.hflip)
            x_BxD = jnp.clip(moved, 0, 1)
        noisy = x_BxD
        if c.noise > 0:  # denoising: corrupt the input, reconstruct the clean image
            noisy = jnp.clip(x_BxD + c.noise * jax.random.normal(noise_key, x_BxD.shape), 0.0, 1.0)

        trainable, stats = base.split_variables(state.params)

        def loss_fn(trainable):
            return self.loss(trainable, stats, noisy, x_BxD, loss_key)

        (loss, (parts, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        updates, opt_state = self.tx.update(grads, state.opt_state, trainable)
        params = {**optax.apply_updates(trainable, updates), **stats}
        metrics_ = {
            "loss": loss,
            **parts,
            "grad_norm": base.sampled_norm(state.step, grads),
            "lr": self.schedule(state.step),
        }
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics_

    # ---------------------------------------------------------------- host-side helpers

    def encode_full(self, params: Any, images01: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(mean, log-variance or None) of q(z | x) for float images in [0, 1]."""
        return base.in_batches(
            lambda x: self._encode(params, x), np.asarray(images01, np.float32), EVAL_BATCH
        )

    def encode(self, params: Any, images01: np.ndarray) -> np.ndarray:
        """Codes (a VAE's posterior means) of float images in [0, 1]."""
        return self.encode_full(params, images01)[0]

    def decode_logits(self, params: Any, codes: np.ndarray) -> np.ndarray:
        """Pixel logits of the images that codes decode to."""
        return base.in_batches(lambda z: self._decode(params, z), np.asarray(codes, np.float32), EVAL_BATCH)

    def decode(self, params: Any, codes: np.ndarray) -> np.ndarray:
        """Pixel probabilities in [0, 1] of the images that codes decode to."""
        return _sigmoid(self.decode_logits(params, codes)).astype(np.float32)

    def train_images(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(float images in [0, 1], labels) of the training split the run was trained on: all of it, or at
        most n: the whole split in order when it has no more, else a fixed random n (seed REFERENCE_SEED)
        in training order."""
        arrays = data.split(self.ds, "train")
        images, labels = arrays["image"], arrays["label"]
        if n is not None and n < len(labels):
            rows = np.sort(np.random.default_rng(REFERENCE_SEED).choice(len(labels), n, replace=False))
            images, labels = images[rows], labels[rows]
        return np.asarray(images, np.float32) / 255.0, np.asarray(labels)

    def pca(self) -> metrics.PCA:
        """PCA with latent_dim components, fitted once per task on train_images(REFERENCE_N)."""
        if self._pca is None:
            self._pca = metrics.pca_fit(self.train_images(REFERENCE_N)[0], self.cfg.latent_dim)
        return self._pca

    # ---------------------------------------------------------------- contract

    def evaluate(
        self, params: Any, arrays: dict[str, Any], key: jax.Array, judge: Any = None, full: bool = False
    ) -> dict[str, Any]:
        """Reconstruction error beside PCA with as many components, kNN digit accuracy of codes, sharpness.

        kNN classifies by train_images(REFERENCE_N) at checkpoints, by the whole training split when
        `full` (`jaxgen eval`); knn_reference_n says which, pca_fit_n what the PCA baseline was fitted on."""
        x = np.asarray(arrays["image"], np.float32) / 255.0
        y = np.asarray(arrays["label"])
        train_x, train_y = self.train_images(None if full else REFERENCE_N)
        mu, logvar = self.encode_full(params, x)
        logits = self.decode_logits(params, mu)
        recon = _sigmoid(logits)
        bce_N = np.asarray(pixel_bce(jnp.asarray(logits), jnp.asarray(x)))
        pca = self.pca()
        pca_recon = np.clip(pca.decode(pca.encode(x)), 0.0, 1.0).reshape(x.shape)
        out: dict[str, Any] = {
            "recon_bce": float(bce_N.mean()),
            "recon_mse": metrics.mse(recon, x),  # means over every pixel value: any image shape
            "pca_recon_bce": metrics.bce(pca_recon, x),
            "pca_recon_mse": metrics.mse(pca_recon, x),
            "latent_knn_accuracy": metrics.knn_accuracy(self.encode(params, train_x), train_y, mu, y, KNN_K),
            "pca_knn_accuracy": metrics.knn_accuracy(pca.encode(train_x), train_y, pca.encode(x), y, KNN_K),
            "sharpness_ratio": metrics.sharpness_ratio(recon, x),
            "pca_sharpness_ratio": metrics.sharpness_ratio(pca_recon, x),
            "n": int(len(x)),
            "knn_reference_n": int(len(train_y)),
            "pca_fit_n": int(min(REFERENCE_N, len(data.split(self.ds, "train")["label"]))),
        }
        if self.cfg.variational:
            kl = np.asarray(kl_to_standard_normal(jnp.asarray(mu), jnp.asarray(logvar)))
            out["kl"] = float(kl.mean())
            # ELBO per image in nats, at the posterior mean (a single-sample estimate would add noise), and
            # the same in bits per dimension (per pixel value), the unit colour-image likelihoods use
            out["elbo"] = float(-(bce_N * self.dim + kl).mean())
            out["elbo_bits_per_dim"] = float(-out["elbo"] / (self.dim * np.log(2.0)))
        if judge is not None:
            out.update(judge.report(self.sample(params, key, JUDGE_SAMPLES), x))
        return out

    def latent_density(self, params: Any):
        """The `mixture`-component Gaussian mixture fitted to the codes of train_images(REFERENCE_N):
        where codes are likely."""
        codes = self.encode(params, self.train_images(REFERENCE_N)[0])
        return metrics.fit_gaussian_mixture(codes, self.cfg.mixture)

    def sample(self, params: Any, key: jax.Array, n: int) -> np.ndarray:
        """n new images, float32 [n, H, W, C] in [0, 1]: a VAE decodes z ~ N(0, I); a plain AE decodes draws
        from the Gaussian mixture fitted to its training codes."""
        if self.cfg.variational:
            z = np.asarray(jax.random.normal(key, (n, self.cfg.latent_dim)))
        else:
            gmm = self.latent_density(params)
            gmm.random_state = int(jax.random.randint(key, (), 0, 2**31 - 1))
            z, _ = gmm.sample(n)
            z = z[np.asarray(jax.random.permutation(key, n))]  # sklearn returns draws grouped by component
        return self.decode(params, np.asarray(z, np.float32))

    def figures(
        self, params: Any, arrays: dict[str, Any], out_dir: Path, step: int | None = None, device: str = "?"
    ) -> list[Path]:
        """Reconstructions (beside PCA), the latent space by digit, decoded digit means, walks, samples
        (jaxgen.plots.autoencoder)."""
        from jaxgen.plots import autoencoder

        return autoencoder.figures(self, params, arrays, Path(out_dir), step, device)

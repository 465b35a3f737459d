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
JUDGE_SAMPLES = 2500  # as the GAN (EVAL_SAMPLES): one n for every row of a judge table
# Training images behind the PCA baseline, the checkpoints' kNN reference set and the code mixture: all of
# them up to REFERENCE_N, beyond that a fixed subsample (seed REFERENCE_SEED, whatever the run's seed), so
# a checkpoint's evaluation costs seconds on 60,000 images. `jaxgen eval` (full=True) classifies by all.
REFERENCE_N = 10_000
REFERENCE_SEED = 0
BINARIZE_SEED = 0  # the fixed binarisation of the test images (binarize=dynamic)
LOG_2PI = float(np.log(2 * np.pi))
# Decoder rows per call of the importance-sampled likelihood (images x samples): an MLP decoder's 20,000 rows
# hold a few hundred MB; a conv decoder's activations are ~10x larger per row (20,000 rows: ~10 GB resident).
NLL_ROWS = {"mlp": 20_000, "conv": 2_000}


def log_weights(
    nll_kB: jax.Array, z_kBxZ: jax.Array, eps_kBxZ: jax.Array, logvar_BxZ: jax.Array
) -> jax.Array:
    """log w = log p(x|z) + log p(z) - log q(z|x) per sample [k, B], from -log p(x|z) (nats), z, and the
    standard-normal draw eps that made z = mu + exp(logvar / 2) eps (so log q needs no division)."""
    log_pz = -0.5 * jnp.sum(z_kBxZ**2 + LOG_2PI, axis=-1)
    log_qz = -0.5 * jnp.sum(eps_kBxZ**2 + logvar_BxZ[None] + LOG_2PI, axis=-1)
    return -nll_kB + log_pz - log_qz


def importance_log_weights(
    decode, x_BxD: jax.Array, mu: jax.Array, logvar: jax.Array, key: jax.Array, k: int
):
    """(log w [k, B], per-pixel-value BCE [k, B], decode's second output) of k draws z = mu + exp(logvar / 2)
    eps of q(z|x) per image, against targets x; `decode` maps z [k * B, Z] to (pixel logits, anything): the
    IWAE objective (train mode) and the likelihood estimate (evaluation mode) share this."""
    eps = jax.random.normal(key, (k, *mu.shape))
    z = mu[None] + jnp.exp(0.5 * logvar)[None] * eps  # [k, B, Z]
    logits, aux = decode(z.reshape(-1, mu.shape[-1]))
    targets = jnp.broadcast_to(x_BxD[None], (k, *x_BxD.shape)).reshape(logits.shape)
    bce_kB = pixel_bce(logits, targets).reshape(k, -1)
    dim = int(np.prod(x_BxD.shape[1:]))
    return log_weights(bce_kB * dim, z, eps, logvar), bce_kB, aux


def kl_to_standard_normal(mu_BxZ: jax.Array, logvar_BxZ: jax.Array) -> jax.Array:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, in nats."""
    return 0.5 * jnp.sum(mu_BxZ**2 + jnp.exp(logvar_BxZ) - 1.0 - logvar_BxZ, axis=-1)


def pixel_bce(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Per-example mean over pixel values (every axis but the first) of the sigmoid cross-entropy of logits
    against targets in [0, 1]."""
    bce = optax.sigmoid_binary_cross_entropy(logits, x)
    return bce.reshape(bce.shape[0], -1).mean(-1)


def lr_schedule(cfg: AEConfig) -> optax.Schedule:
    """cosine: lr decays to zero over the run. burda: the IWAE paper's lr * 10^(-i/7) for 3^i passes,
    i = 0..7 (3,280 passes in all), its 8 stages compressed in proportion into cfg.steps."""
    if cfg.schedule == "cosine":
        return optax.cosine_decay_schedule(cfg.lr, cfg.steps)
    stages = [3**i for i in range(8)]
    scales: dict[int, float] = {}
    for i in range(1, 8):
        at = round(cfg.steps * sum(stages[:i]) / sum(stages))
        scales[at] = scales.get(at, 1.0) * 10 ** (-1 / 7)
    return optax.piecewise_constant_schedule(cfg.lr, scales)


def binarized(images01: np.ndarray, seed: int = BINARIZE_SEED) -> np.ndarray:
    """A fixed Bernoulli draw of every pixel value of float images in [0, 1] (1 with probability the
    intensity), the same for the same seed: the test images of a run trained with binarize=dynamic."""
    x = np.asarray(images01, np.float32)
    return (np.random.default_rng(seed).random(x.shape, np.float32) < x).astype(np.float32)


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
        self.eval_headline = ("recon_bce", "latent_knn_accuracy", *(("elbo",) if cfg.variational else ()))
        self.shape = tuple(ds.shape)  # (H, W, C): the decoder makes images of the data's shape
        self.dim = int(np.prod(self.shape))  # numbers per image: the D of "a point in D dimensions"
        self.model = models.autoencoder_net(cfg, self.shape)
        self.schedule = lr_schedule(cfg)
        self.tx = optax.adamw(self.schedule, eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
        model = self.model
        self._encode = jax.jit(lambda p, x: model.apply(p, x, method=model.encode))  # (mu, logvar | None)
        self._decode = jax.jit(lambda p, z: model.apply(p, z, method=model.decode))
        self._pca: metrics.PCA | None = None
        self._log_w = jax.jit(self._log_weights_eval, static_argnums=3)

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
        if self.cfg.iw_k > 1:
            return self._iwae_loss(trainable, stats, x_BxD, target_BxD, mu, logvar, z_key, rngs)
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

    def _iwae_loss(self, trainable, stats, x_BxD, target_BxD, mu, logvar, z_key, rngs):
        """The importance-weighted bound (Burda et al. 2016) with k = iw_k samples of q(z|x) per image:
        loss = -(logsumexp_k log w_k - log k) per pixel value, w = p(x|z) p(z) / q(z|x)."""
        k, model = self.cfg.iw_k, self.model

        def decode(z):
            return base.apply_train(model, trainable, stats, z, True, method=model.decode, rngs=rngs)

        log_w, bce_kB, stats = importance_log_weights(decode, target_BxD, mu, logvar, z_key, k)
        bound_B = jax.nn.logsumexp(log_w, axis=0) - jnp.log(k)
        out = {"recon_bce": bce_kB.mean(), "kl": kl_to_standard_normal(mu, logvar).mean(),
               "iw_bound": bound_B.mean()}  # fmt: skip
        return -bound_B.mean() / self.dim, (out, stats)

    def inputs(self, batch: Batch, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(what the encoder reads, what the decoder must rebuild) of one training batch: augmented, with
        binarize=dynamic a fresh Bernoulli draw of every pixel, with noise > 0 a noisy input."""
        augment_key, noise_key, _ = jax.random.split(key, 3)
        x_BxD = batches.normalise(batch["image"])
        c = self.cfg
        if c.augment:
            moved = batches.affine_images(augment_key, x_BxD, c.max_shift, c.max_rotate, c.max_scale, c.hflip)
            x_BxD = jnp.clip(moved, 0, 1)
        if c.binarize == "dynamic":  # fold_in: the split above (and every golden value) stays as it was
            x_BxD = jax.random.bernoulli(jax.random.fold_in(key, 3), x_BxD).astype(jnp.float32)
        noisy = x_BxD
        if c.noise > 0:  # denoising: corrupt the input, reconstruct the clean image
            noisy = jnp.clip(x_BxD + c.noise * jax.random.normal(noise_key, x_BxD.shape), 0.0, 1.0)
        return noisy, x_BxD

    def step(self, state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
        """One AdamW step on the reconstruction loss (a VAE's negative ELBO, IWAE's bound) of one batch."""
        loss_key = jax.random.split(key, 3)[2]
        noisy, x_BxD = self.inputs(batch, key)
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

    def _log_weights_eval(self, params: Any, x_BxD: jax.Array, key: jax.Array, k: int) -> jax.Array:
        """log w [k, B] of k draws of q(z|x) per image, networks in evaluation mode."""
        model = self.model
        mu, logvar = model.apply(params, x_BxD, method=model.encode)

        def decode(z):
            return model.apply(params, z, method=model.decode), None

        return importance_log_weights(decode, x_BxD, mu, logvar, key, k)[0]

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

    def test_images(self, arrays: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(the images as floats in [0, 1], the images the run models: the same, or with binarize=dynamic
        binarised once, seed BINARIZE_SEED, the same for every reader)."""
        grey = np.asarray(arrays["image"], np.float32) / 255.0
        return grey, (binarized(grey) if self.cfg.binarize == "dynamic" else grey)

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
        grey, x = self.test_images(arrays)
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
        if judge is not None:  # one Judge or several (base.judge_reports)
            samples = self.sample(params, key, JUDGE_SAMPLES)
            out.update(base.judge_reports(judge, samples, grey, self.train_images(REFERENCE_N)[0]))
        return out

    def log_likelihood(
        self, params: Any, images01: np.ndarray, key: jax.Array, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per image (log p(x) estimated by importance sampling with k draws of q(z|x), the mean log weight
        of the same draws: a Monte-Carlo ELBO), float64 [N] each, in nats. log p-hat = logsumexp_k log w -
        log k is never below the mean log w (Jensen, draw by draw) and tightens towards log p(x) as k grows
        (Burda et al. 2016: k = 5000). Batched so that images x draws per call stay near NLL_ROWS[arch]."""
        x = np.asarray(images01, np.float32)
        rows = NLL_ROWS[self.cfg.arch]
        per = max(1, min(len(x), rows // k))  # images per call
        draws = max(d for d in range(1, k + 1) if k % d == 0 and (d * per <= rows or d == 1))  # divides k
        pad = -len(x) % per
        xp = np.concatenate([x, np.zeros((pad, *x.shape[1:]), np.float32)]) if pad else x
        log_px, elbo = np.empty(len(xp)), np.empty(len(xp))
        for b in range(0, len(xp), per):
            chunk_key = jax.random.fold_in(key, b)
            total, mean = np.full(per, -np.inf), np.zeros(per)
            for j in range(k // draws):
                w = self._log_w(params, jnp.asarray(xp[b : b + per]), jax.random.fold_in(chunk_key, j), draws)
                w = np.asarray(w, np.float64)
                top = w.max(0)
                total = np.logaddexp(total, top + np.log(np.exp(w - top).sum(0)))
                mean += w.sum(0) / k
            log_px[b : b + per], elbo[b : b + per] = total - np.log(k), mean
        return log_px[: len(x)], elbo[: len(x)]

    def likelihood(self, params: Any, arrays: dict[str, Any], key: jax.Array, k: int) -> dict[str, Any]:
        """`jaxgen eval --nll-k K`: the importance-sampled negative log-likelihood of the test images
        (binarised once, seed BINARIZE_SEED, when the run trained on binarised images) beside the same draws'
        ELBO, in nats per image and bits per dimension."""
        x = self.test_images(arrays)[1]
        log_px, elbo = self.log_likelihood(params, x, key, k)
        bits = float(self.dim * np.log(2.0))
        return {
            "nll_is": float(-log_px.mean()),
            "nll_is_bits_per_dim": float(-log_px.mean() / bits),
            "nll_is_sem": float(log_px.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0,
            "elbo_mc": float(elbo.mean()),
            "nll_is_k": int(k),
            "nll_is_n": int(len(x)),
            "binarized_test": self.cfg.binarize == "dynamic",
        }

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

    def preview(self, params: Any, arrays: dict[str, Any]) -> tuple[str, np.ndarray]:
        """The checkpoint image: a test image of each class over its reconstruction (a VAE's samples below)
        (jaxgen.plots.autoencoder.preview)."""
        from jaxgen.plots import autoencoder

        return "reconstructions", autoencoder.preview(self, params, arrays)

    def figures(
        self, params: Any, arrays: dict[str, Any], out_dir: Path, step: int | None = None, device: str = "?"
    ) -> list[Path]:
        """Reconstructions (beside PCA), the latent space by digit, decoded digit means, walks, samples
        (jaxgen.plots.autoencoder)."""
        from jaxgen.plots import autoencoder

        return autoencoder.figures(self, params, arrays, Path(out_dir), step, device)

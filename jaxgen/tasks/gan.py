"""`jaxgen train gan`: the game between a generator G and a discriminator D (MLPs, or DCGAN's convolutions).

The game is `loss`, one function of D's outputs on real and fake rows (jaxgen.tasks.gan_losses): the 2014
minimax game (saturating), its nonsaturating G loss (the default), hinge, or wgan-gp (its gradient penalty,
which needs D and the rows, is added in d_objective). For the last two D is a critic: metrics, `jaxgen eval`
and the figures report its mean scores (critic_*) where the others report mean probabilities D(x), D(G(z)).
One jitted step: `d_steps` D updates (each on its own real batch), then one G update, then the EMA of G.
Stabilisers (PacGAN packing, R1, EMA of G, cosine decay, beta1) are GANConfig fields (jaxgen.configs.gan,
with the defaults for the data and, in docs/defaults.md, how each was chosen).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen import data, models
from jaxgen import metrics as metrics_lib
from jaxgen.configs.gan import GANConfig, diffaug_ops
from jaxgen.data import Dataset, batches
from jaxgen.errors import UserError
from jaxgen.tasks import base, gan_losses
from jaxgen.tasks.base import Batch, Metrics, State

EVAL_SAMPLES = 2500  # samples per evaluation: the mode-coverage reference size (20 of 2,500 cover a mode)
SNAPSHOT_IMAGES, SNAPSHOT_POINTS = 64, 1000  # fixed-noise samples saved at each checkpoint
LOG4 = float(np.log(4.0))


def diffaug(key: jax.Array, x_BxD: jax.Array, ops: tuple[tuple[str, int], ...]) -> jax.Array:
    """DiffAugment (Zhao et al. 2020): the same random, differentiable transforms applied to every image D
    sees, real or fake, in D's phase and in G's, so D cannot memorise a small training set and G is not
    taught the transforms (they are on both sides of the game)."""
    for i, (name, size) in enumerate(ops):
        k = jax.random.fold_in(key, i)
        x_BxD = batches.translate(k, x_BxD, size) if name == "translate" else batches.cutout(k, x_BxD, size)
    return x_BxD


def top_k_mean(values_B: jax.Array, scores_B: jax.Array, fraction: jax.Array) -> jax.Array:
    """Mean of `values` over the ceil(fraction * B) entries with the highest `scores` (top-k training,
    Sinha et al. 2020: G learns only from the samples D finds most realistic). fraction may be traced."""
    b = values_B.shape[0]
    rank_B = jnp.argsort(jnp.argsort(-scores_B))  # 0 = the most realistic
    keep_B = rank_B < jnp.maximum(1, jnp.ceil(fraction * b))
    return jnp.sum(jnp.where(keep_B, values_B, 0.0)) / jnp.sum(keep_B)


def pack_rows(x: Any, pack: int) -> Any:
    """PacGAN: consecutive `pack` samples as one D input row: toy points [B, D] -> [B/pack, pack*D], images
    [B, H, W, C] -> [B/pack, pack, H, W, C] (an MLP reads a row flat, DCGAN's D as pack*C channels).
    Works on numpy and JAX arrays alike."""
    b = x.shape[0] // pack
    if x.ndim == 2:
        return x.reshape(b, pack * x.shape[1])
    return x.reshape(b, pack, *x.shape[1:])


class GAN:
    """G: z ~ N(0, I) -> sample; D: (packed) sample -> logit or score. params = {"g", "d"[, "g_ema"]}."""

    name = "gan"

    def __init__(self, cfg: GANConfig, ds: Dataset):
        self.cfg = cfg  # resolved (jaxgen.tasks.build resolves it)
        self.ds = ds  # the data it trains on (the judge's training-image reference reads it)
        self.kind, self.spec = ds.kind, ds.spec
        self.info = ds.info
        self.class_names = ds.class_names  # figures and reports name classes by these
        self.shape = tuple(ds.shape)  # a sample's: (H, W, C) images, (D,) toy points
        self.dim = int(np.prod(self.shape))
        self.loss = gan_losses.LOSSES[cfg.loss]
        self.gp = float(cfg.gp or 0.0) if cfg.loss == "wgan-gp" else 0.0  # the table fills gp for any loss
        # what D's outputs are read as (probabilities D(x), D(G(z)), or a critic's scores) and called
        self.read = jax.nn.sigmoid if self.loss.probability else (lambda scores: scores)
        self.reading = "d" if self.loss.probability else "critic"
        self.headline = ("d_loss", "g_loss", f"{self.reading}_real", f"{self.reading}_fake")
        toy = ("modes_covered", "hq_fraction") if ds.kind == "toy" else ()
        self.eval_headline = (f"{self.reading}_real_mean", f"{self.reading}_fake_mean", *toy)
        self.examples_per_step = cfg.d_steps * cfg.batch_size
        self.diffaug = diffaug_ops(cfg.diffaug)
        data_std = float(np.std(ds.train["image"])) if ds.kind == "toy" else 1.0  # standardize's scale
        self.g_model, self.d_model = models.gan_nets(cfg, self.shape, ds.kind == "image", data_std)

        def schedule(peak: float):
            return (
                optax.cosine_decay_schedule(peak, cfg.steps) if cfg.decay else optax.constant_schedule(peak)
            )

        self.g_schedule = schedule(cfg.lr)
        self.d_schedule = schedule(cfg.d_lr)
        self.g_tx = optax.adam(self.g_schedule, b1=cfg.beta1, b2=0.999)
        # D steps d_steps times per G step: its schedule counts G steps, so both decay together.
        self.d_tx = optax.adam(lambda n: self.d_schedule(n // cfg.d_steps), b1=cfg.beta1, b2=0.999)
        self._sample = jax.jit(self._generate, static_argnums=2)
        self._d_out = jax.jit(lambda p, x: self.read(self.d_model.apply(p, x)))

    @property
    def resolved(self) -> dict[str, Any]:
        """The data-dependent choices, as run (shown in figure titles; the driver's resolved.json has all)."""
        c = self.cfg
        return {
            "steps": c.steps,
            "batch_size": c.batch_size,
            "latent_dim": c.latent_dim,
            "lr": c.lr,
            "pack": c.pack,
            "r1": c.r1,
            "ema": c.ema,
            "d_lr": c.d_lr,
            "decay": c.decay,
            "topk": c.topk,
            "diffaug": c.diffaug,
        }

    def init(self, key: jax.Array) -> State:
        """Fresh G and D, both Adam states, at step 0 (EMA of G starts at G)."""
        g_key, d_key = jax.random.split(key)
        g = self.g_model.init(g_key, jnp.zeros((1, self.cfg.latent_dim), jnp.float32))
        d = self.d_model.init(d_key, pack_rows(jnp.zeros((self.cfg.pack, *self.shape)), self.cfg.pack))
        params = {"g": g, "d": d}
        if self.cfg.ema > 0:  # the EMA averages G's BatchNorm statistics as well as its weights
            params["g_ema"] = jax.tree.map(jnp.copy, g)
        opt_state = {"g": self.g_tx.init(base.split_variables(g)[0]), "d": self.d_tx.init(d)}
        return base.State(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state)

    def prep(self, x: jax.Array) -> jax.Array:
        """Real data as D sees it: uint8 pixels / 255, toy points as they are."""
        return x.astype(jnp.float32) / 255.0 if self.kind == "image" else x.astype(jnp.float32)

    def d_objective(self, d_params, real_BxD, fake_BxD, aug_key=None) -> tuple[jax.Array, tuple]:
        """D's loss (with the R1 penalty on real rows when r1 > 0, WGAN-GP's when gp > 0) and (loss, R1
        penalty, real, fake logits[, gradient penalty]); with `diffaug`, real and fake rows are transformed
        first (the penalties then act on the transformed rows)."""
        c = self.cfg
        if self.diffaug:
            real_key, fake_key = jax.random.split(aug_key)
            real_BxD = diffaug(real_key, real_BxD, self.diffaug)
            fake_BxD = diffaug(fake_key, fake_BxD, self.diffaug)
        real_rows, fake_rows = pack_rows(real_BxD, c.pack), pack_rows(fake_BxD, c.pack)
        real_logits = self.d_model.apply(d_params, real_rows)
        fake_logits = self.d_model.apply(d_params, fake_rows)
        loss = self.loss.fn(real_logits, fake_logits)[0]
        penalty = jnp.zeros(())
        if c.r1 > 0:
            grad_x = jax.grad(lambda x: self.d_model.apply(d_params, x).sum())(real_rows)
            penalty = jnp.mean(jnp.sum(grad_x.reshape(grad_x.shape[0], -1) ** 2, axis=-1))
        total, aux = loss + 0.5 * c.r1 * penalty, (loss, penalty, real_logits, fake_logits)
        if self.gp > 0:
            critic = lambda x: self.d_model.apply(d_params, x)  # noqa: E731
            gp_key = jax.random.fold_in(aug_key, 2)  # diffaug draws from aug_key's split, not fold_in
            gp_penalty = gan_losses.gradient_penalty(critic, real_rows, fake_rows, gp_key)
            return total + self.gp * gp_penalty, (*aux, gp_penalty)
        return total, aux

    def step(self, state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
        """d_steps discriminator updates (each on its own real batch), then one generator update."""
        c = self.cfg
        d_key, g_key = jax.random.split(key)
        real_KxBxD = self.prep(batch["image"]).reshape(c.d_steps, c.batch_size, *self.shape)
        # G's BatchNorm (arch=conv): batch statistics in both phases; its running statistics are updated in
        # G's phase only, once per generator step (D's phase discards them, as it discards G's gradient).
        g_trainable, g_stats = base.split_variables(state.params["g"])

        def d_update(carry, inputs):
            d_params, d_opt = carry
            real_BxD, z_key = inputs
            z_BxZ = jax.random.normal(z_key, (c.batch_size, c.latent_dim))
            fake_BxD, _ = base.apply_train(
                self.g_model, g_trainable, g_stats, z_BxZ, True
            )  # G: a constant here
            aug_key = jax.random.fold_in(z_key, 1)
            grads, aux = jax.grad(self.d_objective, has_aux=True)(d_params, real_BxD, fake_BxD, aug_key)
            updates, d_opt = self.d_tx.update(grads, d_opt, d_params)
            return (optax.apply_updates(d_params, updates), d_opt), (
                *aux,
                base.sampled_norm(state.step, grads),
            )

        (d_params, d_opt), (*d_outs, d_norms) = jax.lax.scan(
            d_update,
            (state.params["d"], state.opt_state["d"]),
            (real_KxBxD, jax.random.split(d_key, c.d_steps)),
        )

        # top-k: the share of fake rows G learns from falls linearly from all of them to `topk` at the end
        keep = 1.0 - (1.0 - c.topk) * jnp.minimum(state.step / c.steps, 1.0)

        def g_objective(g_trainable):
            z_BxZ = jax.random.normal(g_key, (c.batch_size, c.latent_dim))
            fake_BxD, stats = base.apply_train(self.g_model, g_trainable, g_stats, z_BxZ, True)
            if self.diffaug:
                fake_BxD = diffaug(jax.random.fold_in(g_key, 1), fake_BxD, self.diffaug)
            logits = self.d_model.apply(d_params, pack_rows(fake_BxD, c.pack))
            if c.topk < 1:
                return top_k_mean(gan_losses.g_loss_rows(self.loss, logits), logits, keep), stats
            return self.loss.fn(logits, logits)[1], stats  # (XLA drops the unused D loss of this call)

        (g_value, g_stats), g_grads = jax.value_and_grad(g_objective, has_aux=True)(g_trainable)
        updates, g_opt = self.g_tx.update(g_grads, state.opt_state["g"], g_trainable)
        g_params = {**optax.apply_updates(g_trainable, updates), **g_stats}
        params = {"g": g_params, "d": d_params}
        if c.ema > 0:
            params["g_ema"] = optax.incremental_update(g_params, state.params["g_ema"], 1.0 - c.ema)
        metrics = {
            **self.d_metrics(*d_outs),
            "g_loss": g_value,
            "d_grad_norm": d_norms.mean(),
            "g_grad_norm": base.sampled_norm(state.step, g_grads),
            "lr": self.g_schedule(state.step),
        }
        new_state = state.replace(step=state.step + 1, params=params, opt_state={"g": g_opt, "d": d_opt})
        return new_state, metrics

    def d_metrics(self, losses, r1_penalties, real_logits, fake_logits, *gp_penalties) -> Metrics:
        """D's side of a step's metrics, from its d_steps updates: the game's value (without penalties:
        log 4 at equilibrium for the 2014 losses) and D's mean outputs, D(x) and D(G(z)) (½ at
        equilibrium), or a critic's mean scores."""
        out = {
            "d_loss": losses.mean(),
            f"{self.reading}_real": self.read(real_logits).mean(),
            f"{self.reading}_fake": self.read(fake_logits).mean(),
            "r1_penalty": r1_penalties.mean(),
        }
        if gp_penalties:
            out["gp_penalty"] = gp_penalties[0].mean()
        return out

    # ---------------------------------------------------------------- host side

    def generator_params(self, params: Any) -> Any:
        """The weights samples come from: the EMA of G when enabled."""
        return params["g_ema"] if self.cfg.ema > 0 and "g_ema" in params else params["g"]

    def _generate(self, g_params: Any, key: jax.Array, n: int) -> jax.Array:
        return self.g_model.apply(g_params, jax.random.normal(key, (n, self.cfg.latent_dim)))

    def sample(self, params: Any, key: jax.Array, n: int) -> np.ndarray:
        """n samples as float32 [n, H, W, C] pixels in [0, 1] for images, [n, D] points for toys."""
        return np.asarray(self._sample(self.generator_params(params), key, int(n)), np.float32)

    def d_out(self, params: Any, x_NxD: np.ndarray) -> np.ndarray:
        """D's probability (or a critic loss's score) per packed row of x (rows of `pack` consecutive
        samples; the tail is dropped)."""
        p = self.cfg.pack
        x = np.asarray(x_NxD, np.float32).reshape(-1, *self.shape)
        x = pack_rows(x[: len(x) // p * p], p)
        return np.asarray(self._d_out(params["d"], jnp.asarray(x)))

    def dstar(self, params: Any, samples_Nx1: np.ndarray) -> dict[str, Any]:
        """1-D toys: the trained D against the optimal D* (metrics.dstar_check) for these samples."""
        return metrics_lib.dstar_check(
            lambda rows: np.asarray(self._d_out(params["d"], jnp.asarray(rows))),
            self.info["centers"],
            self.info["std"],
            samples_Nx1,
            self.cfg.pack,
        )

    def evaluate(
        self, params: Any, arrays: dict[str, Any], key: jax.Array, judge: Any = None, full: bool = False
    ) -> dict[str, float | int | list]:
        """Mean D (a critic loss: mean score, critic_*) on real test data and on 2,500 samples from `key`;
        toys: mode coverage (1-D, for the 2014 losses: the D* check);
        images with a judge: digit fractions, confidence, judge-feature Fréchet distances (Judge.report).
        Nothing here reads the training split, so the checkpoint form is already the full one (`full`
        changes nothing)."""
        samples = self.sample(params, key, EVAL_SAMPLES)
        real = np.asarray(arrays["image"], np.float32)
        if self.kind == "image":
            real = real / 255.0
        out: dict[str, Any] = {
            f"{self.reading}_real_mean": float(self.d_out(params, real).mean()),
            f"{self.reading}_fake_mean": float(self.d_out(params, samples).mean()),
        }
        if self.kind == "toy":
            if judge is not None:
                raise UserError(
                    f"--judge scores images; this run was trained on toy data ({self.dim}-D): drop --judge"
                )
            out.update(metrics_lib.mode_coverage(samples, self.info["centers"], self.info["std"]))
            if self.dim == 1 and self.loss.probability:  # D* is the 2014 game's optimal D
                out["dstar_distance"] = self.dstar(params, samples)["distance"]
        elif judge is not None:  # one Judge or several (base.judge_reports)
            train = np.asarray(data.split(self.ds, "train")["image"], np.float32) / 255.0
            out.update(base.judge_reports(judge, samples, real, train))
        return out

    def snapshot_samples(self, params: Any) -> np.ndarray:
        """The checkpoints' fixed-noise samples: the same z at every checkpoint (64 images, 1,000 points)."""
        n = SNAPSHOT_IMAGES if self.kind == "image" else SNAPSHOT_POINTS
        return self.sample(params, jax.random.fold_in(jax.random.key(self.cfg.seed), 0x5A3), n)

    def snapshot(self, params: Any, step: int, run_dir: Path) -> None:
        """Fixed-noise samples (the same z each time) to DIR/samples/<step>.npy."""
        out = Path(run_dir) / "samples"
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / f"{int(step)}.npy", self.snapshot_samples(params))

    def preview(self, params: Any, arrays: dict[str, Any]) -> tuple[str, np.ndarray]:
        """The checkpoint image: the snapshot's samples in a grid, or toy points over the test data."""
        from jaxgen import plots

        return "samples", plots.samples_rgb(self, self.snapshot_samples(params), arrays)

    def figures(
        self, params: Any, arrays: dict[str, Any], out_dir: Path, step: int | None = None, device: str = "?"
    ) -> list[Path]:
        """Game curves, fixed-noise progress, final samples; the D-vs-D* figure on 1-D toys
        (jaxgen.plots.gan)."""
        from jaxgen.plots import gan

        return gan.figures(self, params, arrays, Path(out_dir), step, device)

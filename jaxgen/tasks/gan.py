"""`jaxgen train gan`: the 2014 minimax game between an MLP generator G and discriminator D.

D returns logits; every loss is written with log-sigmoid (never log of a sigmoid):
  D:  -E log D(x) - E log(1 - D(G(z)))  = -log_sigmoid(l_real) - log_sigmoid(-l_fake);  log 4 at D = ½
  G:  nonsaturating -E log D(G(z))       = -log_sigmoid(l_fake);                           log 2 at D = ½
      saturating     E log(1 - D(G(z)))  =  log_sigmoid(-l_fake);                         -log 2 at D = ½
One jitted step: `d_steps` D updates (each on its own real batch), then one G update, then the EMA of G.
Stabilisers (PacGAN packing, R1, EMA of G, cosine decay, beta1) are GANConfig fields; `resolve` picks the
data-dependent defaults.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from jaxgen import metrics as metrics_lib
from jaxgen.config import NetConfig
from jaxgen.data import Dataset
from jaxgen.errors import UserError
from jaxgen.tasks.deps import base, batches, jax, jnp, models, optax

if TYPE_CHECKING:
    from jaxgen.tasks.base import Batch, Metrics, State

EVAL_SAMPLES = 2500  # samples per evaluation: the mode-coverage reference size (20 of 2,500 cover a mode)
SNAPSHOT_IMAGES, SNAPSHOT_POINTS = 64, 1000  # fixed-noise samples saved at each checkpoint
LOG4 = float(np.log(4.0))


@dataclasses.dataclass(frozen=True)
class GANConfig(NetConfig):
    """The 2014 GAN: MLP generator and discriminator, alternating updates inside one jitted step.

    Fields whose default is 0 or -1 are "chosen for the data" by `GAN.resolve`; the driver writes the
    resolved values to DIR/resolved.json.
    """

    steps: int = 0  # generator steps (each after d_steps D steps); 0 = for the data (MNIST 10k, DCGAN 16k)
    batch_size: int = 0  # real examples per D update, fakes per G update; 0 = for the data (256, DCGAN 64)
    lr: float = 0.0  # generator peak learning rate (cosine decay); 0 = for the data (toys 2e-4, MNIST 1e-3)
    hidden: tuple[int, ...] = (256, 256, 256)  # generator widths (and the discriminator's unless d_hidden)
    activation: str = "leaky_relu:0.2"  # hidden activation of both players
    latent_dim: int = 0  # size of the noise z ~ N(0, I); 0 = for the data (toys: their dimension; images: 16)
    d_hidden: tuple[int, ...] = ()  # discriminator widths; empty = same as hidden
    d_lr: float = 0.0  # discriminator learning rate; 0 = for the data (DCGAN 4e-3, else the same as lr)
    loss: str = "nonsaturating"  # generator loss: nonsaturating -log D(G(z)) or saturating log(1 - D(G(z)))
    d_steps: int = 1  # discriminator updates per generator update, each on its own real batch
    beta1: float = 0.5  # Adam's first-moment decay for both players (0.5: the DCGAN choice, less momentum)
    decay: bool = True  # cosine decay of both learning rates to zero over `steps` (sharpens the samples)
    pack: int = 0  # PacGAN: D judges `pack` samples concatenated (against mode dropping); 0 = for the data
    r1: float = -1.0  # R1 weight g: D loss += g/2 E||grad_x D(x)||^2 on real rows; 0 = off; -1 = for the data
    ema: float = -1.0  # decay of an EMA of G's weights (what sample/evaluate use); 0 = off; -1 = for the data
    standardize: bool = False  # toys: D sees x / std(data), G outputs std(data) * models.MLP(z)
    topk: float = 1.0  # top-k: G learns from this share of its samples D rates best (1 = all), by the end
    channels: tuple[int, ...] = (32, 64)  # arch=conv (DCGAN): G's maps (D: these + one stage, d_channels)
    d_channels: tuple[int, ...] = ()  # arch=conv: D's stride-2 maps (1-3 stages); empty: channels + 2x last
    norm: str = "batch"  # arch=conv: G's normalisation, batch (BatchNorm, DCGAN) or none; D has none
    diffaug: str = "none"  # images: what D sees of real and fake alike, e.g. translate:2,cutout:8 (or none)

    TASK: ClassVar[str] = "gan"
    TINY: ClassVar[dict[str, Any]] = {"hidden": (16,), "latent_dim": 2, "batch_size": 32, "r1": 0.5}
    TINY_DATA: ClassVar[str] = "toy:ring8"
    # the tests' tiny DCGAN keeps a two-stage D (it compiles in ~2/3 of the time; the default's third stage
    # trains in tests/test_convs.py::test_conv_loss_falls_on_one_batch)
    TINY_CONV: ClassVar[dict[str, Any]] = {
        "channels": (4, 8), "d_channels": (4, 8), "latent_dim": 4, "batch_size": 16, "r1": 0.5,
    }  # fmt: skip
    FOR_DATA: ClassVar[tuple[str, ...]] = ("steps", "lr", "batch_size")

    def check(self) -> None:
        super().check()
        if not 0 <= self.latent_dim <= 1024:
            raise UserError(f"latent_dim must be in [1, 1024] (0: for the data), got {self.latent_dim}")
        if any(h <= 0 for h in self.d_hidden):
            raise UserError(f"d_hidden must be a comma list of positive widths, got {self.d_hidden}")
        if any(c <= 0 for c in self.d_channels) or len(self.d_channels) > 3:
            raise UserError(
                f"d_channels must be up to 3 positive widths (empty: for channels), got {self.d_channels}"
            )
        if not self.d_lr >= 0:
            raise UserError(f"d_lr must be >= 0 (0: for the data), got {self.d_lr}")
        if self.loss not in ("nonsaturating", "saturating"):
            raise UserError(
                f"loss must be nonsaturating or saturating, got {self.loss!r}: --set loss=nonsaturating"
            )
        if not 1 <= self.d_steps <= 100:
            raise UserError(
                f"d_steps must be in [1, 100] discriminator updates per generator update, got {self.d_steps}:"
                " --set d_steps=1"
            )
        if not 0 <= self.beta1 < 1:
            raise UserError(f"beta1 must be in [0, 1), got {self.beta1}")
        if not 0 <= self.pack <= 16:
            raise UserError(f"pack must be in [0, 16] samples per D row (0: for the data), got {self.pack}")
        batch = batch_for(self)
        if self.pack and batch % self.pack:
            raise UserError(f"batch_size {batch} must be a multiple of pack {self.pack}: change one of them")
        if not (self.r1 >= 0 or self.r1 == -1):
            raise UserError(f"r1 must be >= 0 (0: off) or -1 (chosen for the data), got {self.r1}")
        if not 0 < self.topk <= 1:
            raise UserError(f"topk must be in (0, 1] (the share of samples G learns from), got {self.topk}")
        if not (0 <= self.ema < 1 or self.ema == -1):
            raise UserError(f"ema must be in [0, 1) (0: off) or -1 (chosen for the data), got {self.ema}")
        diffaug_ops(self.diffaug)
        if self.arch == "conv" and len(self.channels) not in (1, 2):
            raise UserError(
                f"arch=conv gan has {len(self.channels)} stride-2 stages; G doubles a 14x14 (1 stage) or 7x7"
                " (2) grid to 28x28, a 3rd stage's 4x4 cannot reach it: give channels 1 or 2 widths"
            )


DIFFAUG_SIZES = {"translate": 4, "cutout": 14}  # DiffAugment's for 28x28: 1/8 and 1/2 of the side


def diffaug_ops(text: str) -> tuple[tuple[str, int], ...]:
    """'translate:2,cutout:8' -> (("translate", 2), ("cutout", 8)); a bare name takes DIFFAUG_SIZES'."""
    if text in ("none", ""):
        return ()
    ops = []
    for item in text.split(","):
        name, _, size = item.strip().partition(":")
        if name not in DIFFAUG_SIZES or (size and not (size.isdigit() and 0 < int(size) <= 14)):
            raise UserError(
                f"diffaug must be none or a comma list of translate[:PIXELS] and cutout[:SIDE] (1-14), got"
                f" {text!r}: --set diffaug=translate:2,cutout:8"
            )
        ops.append((name, int(size) if size else DIFFAUG_SIZES[name]))
    return tuple(ops)


def diffaug(key: jax.Array, x_BxD: jax.Array, ops: tuple[tuple[str, int], ...]) -> jax.Array:
    """DiffAugment (Zhao et al. 2020): the same random, differentiable transforms applied to every image D
    sees, real or fake, in D's phase and in G's, so D cannot memorise a small training set and G is not
    taught the transforms (they are on both sides of the game)."""
    for i, (name, size) in enumerate(ops):
        k = jax.random.fold_in(key, i)
        x_BxD = batches.translate(k, x_BxD, size) if name == "translate" else batches.cutout(k, x_BxD, size)
    return x_BxD


# Generator steps when steps=0 ("chosen for the data"): the toys need long, low-noise training to place
# samples within 3 std of each mode; MNIST fits in 5 CPU minutes.
STEPS_FOR_DATA = {"toy:ring8": 20000, "toy:grid25": 60000, "toy:gauss1d": 10000}
STEPS_DEFAULT = 10000
# DCGAN (arch=conv): a step costs ~1.7 ms per sample on a 2-core CPU at every batch size (docs/speed.md),
# so the 20 minutes a run may take buy more generator steps at batch 64 than at 256; chosen on short runs
# scored against the training images (experiments/dcgan_tune.py, docs/conv.md): at 2,000 steps, batch 64,
# lr 2e-4 / 5e-4 / 1e-3 gave judge Frechet 106 / 62 / 52 from G itself, and an EMA of G (0.999) was worse
# in all three (224 / 115 / 79): the EMA lags a generator still learning fast, so DCGAN samples from G.
# At lr 1e-3, R1 weight 10 / 1 / 0 gave 51.6 / 47.2 / 49.1: R1 1. Length, against the training images:
# 8,000 steps 23.8, 16,000 steps 16.8 (session 12); 16,000 took 567 s alone on the 2-core CPU, inside the
# 20 minutes a default run may take (session 11 measured 1,002 s for 8,000 on a slower host).
# D's learning rate 4x G's (TTUR, Heusel et al. 2017), session 14: at 4,000 steps, MNIST, d_lr 1e-3 / 2e-3
# / 4e-3 / 8e-3 gave 37.9 / 29.1 / 23.3 / 49.8 (Fashion-MNIST, its judge, 1e-3 / 4e-3: 51.0 / 40.4); at
# 16,000 steps on MNIST 16.8 -> 12.7 against the training images, 21.1 -> 17.5 against the test digits.
# D one stride-2 stage deeper than G (channels 32, 64 -> D 32, 64, 128; 28 -> 14 -> 7 -> 4), session 15:
# at 4,000 steps against the training images 23.3 -> 10.7 (MNIST), 40.4 -> 17.9
# (Fashion-MNIST); at 16,000 steps MNIST 12.7 -> 6.5 (the MLP GAN: 7.05), test digits 17.5 -> 13.5 under
# the MLP judge and 66.8 -> 48.4 under the CNN judge; Fashion 20.5 -> 14.7 under its MLP judge but 20.7 ->
# 33.4 under its CNN judge (docs/conv.md). models.dcgan_d_channels. Its D costs ~1.4x the step time, so the
# length is 12,000 steps (692 s alone on MNIST; test digits 13.5 / 51.0, as 16,000's 13.55 / 48.4).
CONV_STEPS_DEFAULT = 12000
CONV_R1 = 1.0
CONV_BATCH = 64
CONV_LR = 1e-3
CONV_D_LR = 4e-3
BATCH_DEFAULT = 256


def batch_for(cfg: GANConfig) -> int:
    """The batch size a config runs at: its own, or (0) the one chosen for its arch."""
    return cfg.batch_size or (CONV_BATCH if cfg.arch == "conv" else BATCH_DEFAULT)


# R1 weight when r1=-1: images 10; toys none, except grid25, where a light penalty pulls the mass off the
# bridges between its 25 modes (3 seeds: hq 0.53-0.70 without, 0.76-0.77 with 0.3; ring8 does not
# need it and lost quality with it on one seed of three: README, GAN section).
R1_FOR_DATA = {"toy:grid25": 0.3}


def resolve(cfg: GANConfig, ds: Dataset) -> GANConfig:
    """Replace the "chosen for the data" defaults (steps, batch_size, latent_dim, pack 0; r1, ema -1).

    toys: a latent as wide as the data (a 16-D latent left 2/3 of ring8's samples between the modes; a
    2-D one puts 80% within 3 std of one), pack 2 (two samples per D row: a dropped mode shows up as a
    pair D never sees), lr 2e-4, no R1 (grid25: 0.3), EMA 0.999; images: latent 16, lr 1e-3 (2e-4: judge
    confidence 0.88 instead of 0.92), no packing, R1 10, EMA 0.999, batch 256; DCGAN (arch=conv) on
    images: the same but 12,000 steps at batch 64, D's learning rate 4x G's, D one stage deeper than G, R1 1
    and no EMA (CONV_STEPS_DEFAULT and below).
    """
    cfg.require_images_for_conv(ds)
    toy = ds.kind == "toy"
    if toy and diffaug_ops(cfg.diffaug):
        raise UserError(f"diffaug moves image pixels; {ds.spec!r} is toy points: use --set diffaug=none")
    conv = cfg.arch == "conv"
    steps = cfg.steps or (CONV_STEPS_DEFAULT if conv else STEPS_FOR_DATA.get(ds.spec, STEPS_DEFAULT))
    batch_size = batch_for(cfg)
    latent_dim = cfg.latent_dim or (int(ds.info["dim"]) if toy else 16)
    lr = cfg.lr or (2e-4 if toy else CONV_LR if conv else 1e-3)
    pack = cfg.pack or (2 if toy else 1)
    r1 = cfg.r1 if cfg.r1 >= 0 else R1_FOR_DATA.get(ds.spec, 0.0 if toy else CONV_R1 if conv else 10.0)
    ema = cfg.ema if cfg.ema >= 0 else (0.0 if conv else 0.999)
    d_lr = cfg.d_lr or (CONV_D_LR if conv and not toy else lr)
    if batch_size % pack:
        raise UserError(f"batch_size {batch_size} must be a multiple of pack {pack}: change one of them")
    chosen = {"steps": steps, "batch_size": batch_size, "latent_dim": latent_dim, "lr": lr, "d_lr": d_lr}
    if conv:  # said in resolved.json, so that a run begun with another D is refused on resume, not broken
        chosen["d_channels"] = models.dcgan_d_channels(cfg.channels, cfg.d_channels)
    return dataclasses.replace(cfg, **chosen, pack=pack, r1=r1, ema=ema)


# ---------------------------------------------------------------- losses (logits in, scalars out)


def d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """-E log D(x) - E log(1 - D(G(z))): log 4 when D says ½ everywhere."""
    return -jnp.mean(jax.nn.log_sigmoid(real_logits)) - jnp.mean(jax.nn.log_sigmoid(-fake_logits))


def g_loss_per_row(fake_logits_B: jax.Array, kind: str = "nonsaturating") -> jax.Array:
    """The generator loss of each fake row (g_loss is its mean)."""
    if kind == "saturating":
        return jax.nn.log_sigmoid(-fake_logits_B)
    return -jax.nn.log_sigmoid(fake_logits_B)


def g_loss(fake_logits: jax.Array, kind: str = "nonsaturating") -> jax.Array:
    """Generator loss: nonsaturating -E log D(G(z)) or the original saturating E log(1 - D(G(z)))."""
    if kind == "nonsaturating":
        return -jnp.mean(jax.nn.log_sigmoid(fake_logits))
    if kind == "saturating":
        return jnp.mean(jax.nn.log_sigmoid(-fake_logits))
    raise UserError(f"loss must be nonsaturating or saturating, got {kind!r}: --set loss=nonsaturating")


def top_k_mean(values_B: jax.Array, scores_B: jax.Array, fraction: jax.Array) -> jax.Array:
    """Mean of `values` over the ceil(fraction * B) entries with the highest `scores` (top-k training,
    Sinha et al. 2020: G learns only from the samples D finds most realistic). fraction may be traced."""
    b = values_B.shape[0]
    rank_B = jnp.argsort(jnp.argsort(-scores_B))  # 0 = the most realistic
    keep_B = rank_B < jnp.maximum(1, jnp.ceil(fraction * b))
    return jnp.sum(jnp.where(keep_B, values_B, 0.0)) / jnp.sum(keep_B)


def pack_rows(x_BxD: jax.Array, pack: int) -> jax.Array:
    """PacGAN: consecutive `pack` samples concatenated into one D input row, [B, D] -> [B/pack, pack*D]."""
    return x_BxD.reshape(x_BxD.shape[0] // pack, pack * x_BxD.shape[1])


class GAN:
    """G: z ~ N(0, I) -> sample; D: (packed) sample -> logit. params = {"g", "d"[, "g_ema"]}."""

    name = "gan"
    headline = ("d_loss", "g_loss", "d_real", "d_fake")
    resolve = staticmethod(resolve)  # the "chosen for the data" phase (jaxgen.tasks.resolve)

    def __init__(self, cfg: GANConfig, ds: Dataset):
        self.cfg = cfg  # resolved (jaxgen.tasks.build resolves it)
        self.kind, self.spec = ds.kind, ds.spec
        self.info = ds.info
        self.class_names = ds.class_names  # figures and reports name classes by these
        self.dim = int(ds.info["dim"]) if ds.kind == "toy" else 784
        self.examples_per_step = cfg.d_steps * cfg.batch_size
        self.diffaug = diffaug_ops(cfg.diffaug)
        # standardize: the toy's overall std, so both MLPs work with order-1 numbers (biases need not
        # travel to |x| = 4 at lr 2e-4 per step); pixels are in [0, 1] already
        scale = float(np.std(ds.train["image"])) if cfg.standardize and ds.kind == "toy" else 1.0
        # DCGAN for arch=conv (Radford et al. 2016; departures: docs/conv.md)
        self.g_model, self.d_model = models.gan_nets(cfg, self.dim, ds.kind == "image", scale)

        def schedule(peak: float):
            return (
                optax.cosine_decay_schedule(peak, cfg.steps) if cfg.decay else optax.constant_schedule(peak)
            )

        self.g_schedule = schedule(cfg.lr)
        self.d_schedule = schedule(cfg.d_lr or cfg.lr)
        self.g_tx = optax.adam(self.g_schedule, b1=cfg.beta1, b2=0.999)
        # D steps d_steps times per G step: its schedule counts G steps, so both decay together.
        self.d_tx = optax.adam(lambda n: self.d_schedule(n // cfg.d_steps), b1=cfg.beta1, b2=0.999)
        self._sample = jax.jit(self._generate, static_argnums=2)
        self._d_prob = jax.jit(lambda p, x: jax.nn.sigmoid(self.d_model.apply(p, x)))

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
            "d_lr": c.d_lr or c.lr,
            "decay": c.decay,
            "topk": c.topk,
            "diffaug": c.diffaug,
        }

    def init(self, key: jax.Array) -> State:
        """Fresh G and D, both Adam states, at step 0 (EMA of G starts at G)."""
        g_key, d_key = jax.random.split(key)
        g = self.g_model.init(g_key, jnp.zeros((1, self.cfg.latent_dim), jnp.float32))
        d = self.d_model.init(d_key, jnp.zeros((1, self.cfg.pack * self.dim), jnp.float32))
        params = {"g": g, "d": d}
        if self.cfg.ema > 0:  # the EMA averages G's BatchNorm statistics as well as its weights
            params["g_ema"] = jax.tree.map(jnp.copy, g)
        opt_state = {"g": self.g_tx.init(base.split_variables(g)[0]), "d": self.d_tx.init(d)}
        return base.State(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state)

    def prep(self, x: jax.Array) -> jax.Array:
        """Real data as D sees it: uint8 pixels / 255, toy points as they are."""
        return x.astype(jnp.float32) / 255.0 if self.kind == "image" else x.astype(jnp.float32)

    def d_objective(self, d_params, real_BxD, fake_BxD, aug_key=None) -> tuple[jax.Array, tuple]:
        """D's loss (with the R1 penalty on real rows when r1 > 0) and (loss, penalty, real, fake logits);
        with `diffaug`, real and fake rows are transformed first (R1 then acts on the transformed reals)."""
        c = self.cfg
        if self.diffaug:
            real_key, fake_key = jax.random.split(aug_key)
            real_BxD = diffaug(real_key, real_BxD, self.diffaug)
            fake_BxD = diffaug(fake_key, fake_BxD, self.diffaug)
        real_rows, fake_rows = pack_rows(real_BxD, c.pack), pack_rows(fake_BxD, c.pack)
        real_logits = self.d_model.apply(d_params, real_rows)
        fake_logits = self.d_model.apply(d_params, fake_rows)
        loss = d_loss(real_logits, fake_logits)
        penalty = jnp.zeros(())
        if c.r1 > 0:
            grad_x = jax.grad(lambda x: self.d_model.apply(d_params, x).sum())(real_rows)
            penalty = jnp.mean(jnp.sum(grad_x**2, axis=-1))
        return loss + 0.5 * c.r1 * penalty, (loss, penalty, real_logits, fake_logits)

    def step(self, state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]:
        """d_steps discriminator updates (each on its own real batch), then one generator update."""
        c = self.cfg
        d_key, g_key = jax.random.split(key)
        real_KxBxD = self.prep(batch["image"]).reshape(c.d_steps, c.batch_size, self.dim)
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

        (d_params, d_opt), (losses, penalties, real_logits, fake_logits, d_norms) = jax.lax.scan(
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
                return top_k_mean(g_loss_per_row(logits, c.loss), logits, keep), stats
            return g_loss(logits, c.loss), stats

        (g_value, g_stats), g_grads = jax.value_and_grad(g_objective, has_aux=True)(g_trainable)
        updates, g_opt = self.g_tx.update(g_grads, state.opt_state["g"], g_trainable)
        g_params = {**optax.apply_updates(g_trainable, updates), **g_stats}
        params = {"g": g_params, "d": d_params}
        if c.ema > 0:
            params["g_ema"] = optax.incremental_update(g_params, state.params["g_ema"], 1.0 - c.ema)
        metrics = {
            "d_loss": losses.mean(),  # the GAN value (without the penalty): log 4 at equilibrium
            "g_loss": g_value,
            "d_real": jax.nn.sigmoid(real_logits).mean(),  # mean D(x), ½ at equilibrium
            "d_fake": jax.nn.sigmoid(fake_logits).mean(),  # mean D(G(z)), ½ at equilibrium
            "r1_penalty": penalties.mean(),
            "d_grad_norm": d_norms.mean(),
            "g_grad_norm": base.sampled_norm(state.step, g_grads),
            "lr": self.g_schedule(state.step),
        }
        new_state = state.replace(step=state.step + 1, params=params, opt_state={"g": g_opt, "d": d_opt})
        return new_state, metrics

    # ---------------------------------------------------------------- host side

    def generator_params(self, params: Any) -> Any:
        """The weights samples come from: the EMA of G when enabled."""
        return params["g_ema"] if self.cfg.ema > 0 and "g_ema" in params else params["g"]

    def _generate(self, g_params: Any, key: jax.Array, n: int) -> jax.Array:
        return self.g_model.apply(g_params, jax.random.normal(key, (n, self.cfg.latent_dim)))

    def sample(self, params: Any, key: jax.Array, n: int) -> np.ndarray:
        """n samples as float32 [n, D]: pixels in [0, 1] for images, points for toys."""
        return np.asarray(self._sample(self.generator_params(params), key, int(n)), np.float32)

    def d_prob(self, params: Any, x_NxD: np.ndarray) -> np.ndarray:
        """D's probability per packed row of x (rows of `pack` consecutive samples; the tail is dropped)."""
        p = self.cfg.pack
        x = np.asarray(x_NxD, np.float32)
        x = x[: len(x) // p * p].reshape(-1, p * x.shape[1])
        return np.asarray(self._d_prob(params["d"], jnp.asarray(x)))

    def dstar(self, params: Any, samples_Nx1: np.ndarray) -> dict[str, Any]:
        """1-D toys: the trained D against the optimal D* (metrics.dstar_check) for these samples."""
        return metrics_lib.dstar_check(
            lambda rows: np.asarray(self._d_prob(params["d"], jnp.asarray(rows))),
            self.info["centers"],
            self.info["std"],
            samples_Nx1,
            self.cfg.pack,
        )

    def evaluate(
        self, params: Any, arrays: dict[str, Any], key: jax.Array, judge: Any = None, full: bool = False
    ) -> dict[str, float | int | list]:
        """Mean D on real test data and on 2,500 samples from `key`; toys: mode coverage (1-D: the D* check);
        images with a judge: digit fractions, confidence, judge-feature Fréchet distances (Judge.report).
        Nothing here reads the training split, so the checkpoint form is already the full one (`full`
        changes nothing)."""
        samples = self.sample(params, key, EVAL_SAMPLES)
        real = np.asarray(arrays["image"], np.float32)
        if self.kind == "image":
            real = real / 255.0
        out: dict[str, Any] = {
            "d_real_mean": float(self.d_prob(params, real).mean()),
            "d_fake_mean": float(self.d_prob(params, samples).mean()),
        }
        if self.kind == "toy":
            if judge is not None:
                raise UserError(
                    f"--judge scores images; this run was trained on toy data ({self.dim}-D): drop --judge"
                )
            out.update(metrics_lib.mode_coverage(samples, self.info["centers"], self.info["std"]))
            if self.dim == 1:
                out["dstar_distance"] = self.dstar(params, samples)["distance"]
        elif judge is not None:
            out.update(judge.report(samples, real))
        return out

    def snapshot(self, params: Any, step: int, run_dir: Path) -> None:
        """Fixed-noise samples (the same z each time) to DIR/samples/<step>.npy."""
        n = SNAPSHOT_IMAGES if self.kind == "image" else SNAPSHOT_POINTS
        key = jax.random.fold_in(jax.random.key(self.cfg.seed), 0x5A3)
        out = Path(run_dir) / "samples"
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / f"{int(step)}.npy", self.sample(params, key, n))

    def figures(
        self, params: Any, arrays: dict[str, Any], out_dir: Path, step: int | None = None, device: str = "?"
    ) -> list[Path]:
        """Game curves, fixed-noise progress, final samples; the D-vs-D* figure on 1-D toys
        (jaxgen.plots.gan)."""
        from jaxgen.plots import gan

        return gan.figures(self, params, arrays, Path(out_dir), step, device)

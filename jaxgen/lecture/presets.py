"""The walkthrough's presets: how long each section trains (FULL: the commands' own defaults, but for
section 8's DCGAN; QUICK: `make walkthrough QUICK=1`; SMOKE: the tests', in process) and the activation
benchmark's small configurations."""

from __future__ import annotations

import dataclasses

from jaxgen.bench import activations as bench_activations


@dataclasses.dataclass(frozen=True)
class Preset:
    """Sizes of one walkthrough run; None keeps the command's default (so the command shown is plain)."""

    name: str
    backprop_iters: int = 10000
    mlp_toy_steps: int | None = None  # the classifier's default 2,000 steps
    gan_toy_steps: int | None = None  # moons and gauss1d: 10,000 generator steps (chosen for the data)
    gan_mnist_steps: int | None = None  # 10,000
    ae_steps: int | None = None  # 10,000
    conv_ae: tuple[str, ...] = ()  # more arguments for the conv AE (quick: narrower, it compiles faster)
    ckpt_every: int | None = None  # GAN snapshots (samples through training) and test points
    bench: str = "quick"  # `jaxgen bench activations --quick`, or a BENCHES name (its code, smaller)
    coin_flips: int = 100_000
    gauss_samples: int = 100_000
    far_samples: int = 5000
    real_test: bool = True  # score on ../shared/data/mnist-test5k where it is beside the repository
    # Section 8 (../shared/data/emoji-google): the conv VAE as its defaults give it, at the colour default
    # 32 x 32 (20 epochs, 529 steps: ~2 min on a shared 2-core CPU; 64 x 64 takes 4x as long) and DCGAN at
    # 32,64,128 (pinned: the cost per step) for 600 of the default 5,000 steps (0.33 s a step measured on
    # a shared 2-core CPU: ~3.5 min; the default's ~22 min would double the walkthrough)
    emoji_vae: tuple[str, ...] = ()  # more arguments for `jaxgen train ae ... --set arch=conv`
    emoji_vae_steps: int | None = None
    emoji_gan: tuple[str, ...] = ("--set", "channels=32,64,128")
    emoji_gan_steps: int | None = 600
    emoji_subset: tuple[int, int] | None = None  # (train, test) files per category, linked (the tests')


FULL = Preset("full")
QUICK = Preset(
    "quick",
    backprop_iters=1000,
    mlp_toy_steps=300,
    gan_toy_steps=400,
    gan_mnist_steps=200,
    ae_steps=200,
    conv_ae=("--set", "channels=8,16"),
    ckpt_every=100,
    bench="tiny",
    coin_flips=10_000,
    gauss_samples=10_000,
    far_samples=1000,
    emoji_vae=("--set", "channels=8,16,32"),
    emoji_vae_steps=200,
    emoji_gan=("--set", "channels=8,16,32"),
    emoji_gan_steps=300,
)
# The tests' preset: the same path with the fewest steps that still draw every figure (seconds, in process).
SMOKE = Preset(
    "smoke",
    backprop_iters=100,
    mlp_toy_steps=20,
    gan_toy_steps=20,
    gan_mnist_steps=10,
    ae_steps=10,
    conv_ae=("--set", "channels=4,8"),
    ckpt_every=10,
    bench="smoke",
    coin_flips=2000,
    gauss_samples=2000,
    far_samples=200,
    real_test=False,
    emoji_vae=("--set", "channels=4,8", "--set", "latent_dim=8", "--set", "batch_size=32"),
    emoji_vae_steps=20,
    emoji_gan=("--set", "channels=4,8", "--set", "batch_size=32"),
    emoji_gan_steps=20,
    emoji_subset=(12, 3),
)
TINY_BENCH = bench_activations.BenchConfig(
    mode="walkthrough-quick",
    activations=("sigmoid", "tanh", "relu", "leaky_relu", "linear"),
    depth=6,
    width=32,
    seeds=2,
    steps=40,
    chunks=2,
    batch_size=64,
    grad_batch=128,
    probe_size=200,
    elementwise_size=1 << 14,
    elementwise_reps=2,
)
SMOKE_BENCH = dataclasses.replace(
    TINY_BENCH,
    mode="walkthrough-smoke",
    depth=3,
    width=16,
    steps=4,
    chunks=1,
    probe_size=50,
    elementwise_size=1 << 10,
    elementwise_reps=1,
)
BENCHES = {"tiny": TINY_BENCH, "smoke": SMOKE_BENCH}

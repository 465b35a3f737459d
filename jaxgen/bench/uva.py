"""`jaxgen bench activations --preset uva [--quick] [--data SPEC] --out DIR`: the setting of the UvA Deep
Learning course's tutorial 3 ("Activation functions", JAX version) on Fashion-MNIST (784-512-256-256-128-10,
SGD with momentum, early stopping per seed), several seeds vmapped through chunks.run_chunk (one compiled
chunk = one epoch), beside the tutorial's single-seed figures: DIR/activations_uva.{json,md}
(jaxgen.bench.uva_report). `--data SPEC` trains and tests on SPEC instead.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen import activations, chunks, data, runtime, tasks
from jaxgen.bench import common
from jaxgen.bench.measures import layer_names, seed_keys, summary
from jaxgen.errors import UserError

_UVA_DOCS = "https://uvadlc-notebooks.readthedocs.io/en/latest/tutorial_notebooks"
UVA_URL = f"{_UVA_DOCS}/JAX/tutorial3/Activation_Functions.html"
UVA_TORCH_URL = f"{_UVA_DOCS}/tutorial3/Activation_Functions.html"
UVA_SOURCE = f"UvA DL course, tutorial 3 (JAX), {UVA_URL}"
# What the tutorial printed (one seed, PRNGKey(42); test accuracy of the best-validation epoch, in %).
UVA_ANCHORS: dict[str, Any] = {
    "names": dict(sigmoid="Sigmoid", tanh="Tanh", relu="ReLU", elu="ELU", silu="Swish")
    | {"leaky_relu:0.1": "LeakyReLU (0.1)"},
    "test_accuracy_pct": dict(sigmoid=78.46, tanh=88.57, relu=88.65, elu=88.32, silu=88.33)
    | {"leaky_relu:0.1": 88.33},
    "test_accuracy_source": UVA_SOURCE,
    "pytorch_test_accuracy_pct": {"sigmoid": 10.00},  # the PyTorch twin's sigmoid net did not train
    "pytorch_source": f"UvA DL course, tutorial 3 (PyTorch), {UVA_TORCH_URL}",
    # ReLU units that output 0 on every one of the 50,000 training images (UvA's train_loader), per layer
    "dead_relu": dict(
        widths=[512, 256, 256, 128], images=50_000, init=[0, 0, 3, 7], trained=[0, 0, 3, 3], source=UVA_SOURCE
    ),
}


@dataclasses.dataclass(frozen=True)
class UvaConfig:
    """UvA tutorial 3's setting; UVA (what researchers run) and UVA_QUICK (tests, CI) are the presets."""

    mode: str = "uva"
    data: str = "fashion"  # the preset's --data default
    activations: tuple[str, ...] = ("sigmoid", "tanh", "relu", "leaky_relu:0.1", "elu", "silu")  # UvA's six
    hidden: tuple[int, ...] = (512, 256, 256, 128)  # 784-512-256-256-128-10
    seeds: int = 5  # seeds 0..seeds-1 of one activation are one vmapped program
    max_epochs: int = 50
    patience: int = 7  # a seed stops after this many epochs in a row without a new best validation accuracy
    batch_size: int = 256  # the remainder of each epoch is dropped, as UvA's loader does (195 steps)
    lr: float = 1e-2  # SGD, constant
    momentum: float = 0.9
    val_size: int = 10_000  # carved out of the training split (UvA: 50k / 10k)
    train_size: int = 0  # 0: every training image not in the validation split
    test_size: int = 0  # 0: the whole test split
    split_seed: int = 42  # fixed, like UvA's split generator: every seed and run sees the same split
    eval_batch: int = 2000  # images per evaluation call (validation, test, dead units)
    trains_above: float = 0.2  # a run "trains" when its test accuracy is above this (chance: 0.1)

    def check(self) -> None:
        """UserError for values the preset cannot run with."""
        for name in self.activations:
            activations.validate(name)
        sizes = (self.seeds, self.max_epochs, self.patience, self.batch_size, self.val_size, self.eval_batch)
        if min(sizes) < 1 or min(self.hidden, default=0) < 1 or min(self.train_size, self.test_size) < 0:
            raise UserError(f"the uva preset needs positive sizes: {self}")


UVA = UvaConfig()
UVA_QUICK = UvaConfig(  # ~35 s on a 2-core CPU: 20k / 5k drawn with the same fixed split seed, 3 epochs
    mode="uva-quick",
    activations=("sigmoid", "relu"),
    seeds=2,
    max_epochs=3,
    patience=1,
    val_size=5_000,
    train_size=20_000,
)


def uva_inputs(images: np.ndarray) -> np.ndarray:
    """UvA's input map, (x / 255 - 0.5) / 0.5: uint8 pixels -> float32 in [-1, 1]; float inputs (toy
    points) unchanged. Applied once on the host: batches.normalise passes float32 through as it is."""
    if np.issubdtype(images.dtype, np.integer):
        return (images.astype(np.float32) / 255.0 - 0.5) / 0.5
    return images.astype(np.float32)


def split_indices(n: int, val_size: int, train_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices into a training split of n examples: disjoint, drawn by a fixed seed;
    train_size 0 means every example not in the validation split."""
    take = n - val_size if train_size == 0 else train_size
    if val_size + take > n or take < 1:
        raise UserError(f"{val_size} validation + {take} training examples need more than the {n} there")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size : val_size + take]), np.sort(perm[:val_size])


def load_preset_data(spec: str) -> data.Dataset:
    """data.load(spec); for `fashion`, a failure is one line naming how to install it."""
    try:
        return data.load(spec)
    except UserError as e:
        if spec != "fashion":
            raise
        raise UserError(
            f"cannot load Fashion-MNIST (--data fashion: {e}): apt-get install dataset-fashion-mnist, or "
            "pass --data idx:DIR with a folder of its four official IDX files (.gz ok)"
        ) from None


def uva_splits(ds: data.Dataset, cfg: UvaConfig) -> dict[str, dict[str, np.ndarray]]:
    """train / val (both from ds's training split) / test host arrays, inputs already in [-1, 1]."""
    full, test = data.split(ds, "train"), data.split(ds, "test")
    train_idx, val_idx = split_indices(len(full["label"]), cfg.val_size, cfg.train_size, cfg.split_seed)
    n_test = cfg.test_size or len(test["label"])
    pick = lambda a, idx: {"image": uva_inputs(a["image"][idx]), "label": np.asarray(a["label"][idx])}
    return {"train": pick(full, train_idx), "val": pick(full, val_idx), "test": pick(test, slice(0, n_test))}


def fan_in_uniform(fan_in: int) -> Callable:
    """UvA's init (PyTorch's nn.Linear default), for kernels and biases alike: uniform(±1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class UvaMLP(nn.Module):
    """UvA's BaseNetwork: Dense layers named as models.MLP's, every kernel and bias (readout too) drawn
    from fan_in_uniform of the layer's input width; the activation from the registry."""

    hidden: tuple[int, ...]
    num_outputs: int
    activation: str

    @nn.compact
    def __call__(self, x_BxD: jax.Array, *, train: bool = False) -> jax.Array:
        act = activations.get(self.activation)
        x_BxD = x_BxD.reshape(x_BxD.shape[0], -1)  # images [B, H, W, C] read flat, as UvA's view(-1, 784)
        for i, width in enumerate(self.hidden):
            init = fan_in_uniform(x_BxD.shape[-1])
            x_BxD = act(nn.Dense(width, kernel_init=init, bias_init=init, name=f"hidden_{i}")(x_BxD))
        init = fan_in_uniform(x_BxD.shape[-1])
        return nn.Dense(self.num_outputs, kernel_init=init, bias_init=init, name="out")(x_BxD)


def build_uva_task(name: str, cfg: UvaConfig, ds: data.Dataset):
    """The classifier task as `jaxgen train mlp` builds it (its step, loss, init), with UvA's network and
    optimizer swapped in: SGD with momentum at a constant lr; no dropout, augmentation, smoothing, decay."""
    overrides = {"hidden": cfg.hidden, "activation": name, "dropout": 0.0, "augment": False,
                 "label_smoothing": 0.0, "warmup_steps": 0, "weight_decay": 0.0, "lr": cfg.lr,
                 "batch_size": cfg.batch_size}  # fmt: skip
    task = tasks.build(tasks.make_config("mlp", overrides), ds)
    task.model = UvaMLP(hidden=tuple(cfg.hidden), num_outputs=ds.num_classes, activation=name)
    task.schedule = optax.constant_schedule(cfg.lr)  # the step logs it as its "lr" metric
    task.tx = optax.sgd(task.schedule, momentum=cfg.momentum)
    return task


class EarlyStopping:
    """UvA's rule, per seed: a new best is a strictly higher validation accuracy (the first epoch always is);
    a seed stops after the epoch that makes `patience` epochs in a row without one. Host-side numpy."""

    def __init__(self, seeds: int, patience: int):
        self.patience = patience
        self.history: list[np.ndarray] = []  # validation accuracy per epoch, float[seeds] each
        self.best = np.full(seeds, -np.inf)
        self.best_epoch = np.full(seeds, -1)  # 0-based
        self.stopped_after = np.zeros(seeds, int)  # epochs run when the seed stopped; 0 = still running

    @property
    def active(self) -> np.ndarray:
        return self.stopped_after == 0

    def update(self, val_accuracy: np.ndarray) -> np.ndarray:
        """Record one epoch; returns the mask of seeds whose parameters are now their best."""
        epoch, val_accuracy = len(self.history), np.asarray(val_accuracy, np.float64)
        self.history.append(val_accuracy)
        improved = self.active & (val_accuracy > self.best)
        self.best = np.where(improved, val_accuracy, self.best)
        self.best_epoch = np.where(improved, epoch, self.best_epoch)
        stop = self.active & ~improved & (epoch - self.best_epoch >= self.patience)
        self.stopped_after = np.where(stop, epoch + 1, self.stopped_after)
        return improved

    def epochs_run(self) -> np.ndarray:
        """Epochs each seed counts: up to its stop, or all epochs run when it never stopped."""
        return np.where(self.active, len(self.history), self.stopped_after)


def make_counts(task, name: str, depth: int) -> tuple[Callable, Callable]:
    """jit(vmap over seeds) of (params, images, labels) -> correct predictions, and of (params, images) ->
    per hidden layer, bool[width]: the unit outputs exactly 0 on every image of the batch."""
    act, model = activations.get(name), task.model
    hidden = lambda mdl, _method: mdl.name is not None and mdl.name.startswith("hidden_")

    def correct(params, x, y):
        return jnp.sum(jnp.argmax(model.apply(params, x), -1) == y)

    def dead(params, x):
        _, inter = model.apply(params, x, capture_intermediates=hidden, mutable=["intermediates"])
        pre = [inter["intermediates"][f"hidden_{i}"]["__call__"][0] for i in range(depth)]
        return [jnp.all(act(p) == 0, axis=0) for p in pre]

    return jax.jit(jax.vmap(correct, in_axes=(0, None, None))), jax.jit(jax.vmap(dead, in_axes=(0, None)))


def seed_accuracy(correct: Callable, params: Any, split: dict, batch: int) -> np.ndarray:
    """Accuracy of every seed's params on a whole split, float[seeds]."""
    n = int(split["label"].shape[0])
    total = sum(correct(params, split["image"][i : i + batch], split["label"][i : i + batch])
                for i in range(0, n, batch))  # fmt: skip
    return np.asarray(total) / n


def dead_by_layer(dead: Callable, params: Any, images: jax.Array, batch: int) -> np.ndarray:
    """Fraction of each hidden layer's units that output 0 on every one of `images`, float[seeds, layers]."""
    acc = None
    for i in range(0, int(images.shape[0]), batch):
        d = dead(params, images[i : i + batch])
        acc = d if acc is None else [a & b for a, b in zip(acc, d, strict=True)]
    return np.stack([np.asarray(a).mean(-1) for a in acc], axis=1)


def train_early_stopping(task, cfg: UvaConfig, dev: dict, correct: Callable, state: Any) -> dict[str, Any]:
    """Every seed trained from `state` (the seeds' task.init, stacked) as one vmapped program, one
    compiled chunk per epoch, until every seed has met its patience (or max_epochs): a stopped seed keeps
    training inside the program, its figures no longer change. Returns each seed's best-validation
    params, the stopper, compile and epoch times."""
    _, data_keys, loop_keys = seed_keys(cfg.seeds)
    steps = int(dev["train"]["label"].shape[0]) // cfg.batch_size  # one epoch, remainder dropped
    run = functools.partial(chunks.run_chunk, task, cfg.batch_size, steps, None)
    t0 = time.perf_counter()
    epoch = jax.jit(jax.vmap(run, in_axes=(0, None, 0, 0))).lower(state, dev["train"], data_keys, loop_keys)
    epoch = epoch.compile()
    compile_s = time.perf_counter() - t0

    def where(mask, new, old):
        return jax.tree.map(lambda n, o: jnp.where(mask.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old)

    keep = jax.jit(where)
    stopper, best, epoch_s = EarlyStopping(cfg.seeds, cfg.patience), state.params, []
    while stopper.active.any() and len(stopper.history) < cfg.max_epochs:
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(epoch(state, dev["train"], data_keys, loop_keys))
        epoch_s.append(time.perf_counter() - t0)
        improved = stopper.update(seed_accuracy(correct, state.params, dev["val"], cfg.eval_batch))
        best = keep(jnp.asarray(improved), state.params, best)
    return {"params": best, "stopper": stopper, "compile_s": compile_s, "epoch_s": epoch_s,
            "steps_per_epoch": steps}  # fmt: skip


def measure_uva(name: str, cfg: UvaConfig, ds: data.Dataset, dev: dict) -> dict[str, Any]:
    """One activation under the preset: test accuracy of each seed's best-validation params, epochs,
    dead units per hidden layer at initialisation and after training (on every training image)."""
    task = build_uva_task(name, cfg, ds)
    correct, dead = make_counts(task, name, len(cfg.hidden))
    state = jax.vmap(task.init)(seed_keys(cfg.seeds)[0])  # eager: compiling it costs more than running it
    dead_init = dead_by_layer(dead, state.params, dev["train"]["image"], cfg.eval_batch)
    res = train_early_stopping(task, cfg, dev, correct, state)
    stopper, n_train = res["stopper"], int(dev["train"]["label"].shape[0])
    test = seed_accuracy(correct, res["params"], dev["test"], cfg.eval_batch)
    dead_trained = dead_by_layer(dead, res["params"], dev["train"]["image"], cfg.eval_batch)
    epoch_s = np.asarray(res["epoch_s"])
    by_layer = lambda d: {"mean": d.mean(0).tolist(), "seeds": d.tolist()}
    return {
        "test_accuracy": summary(test),
        "trains_fraction": float(np.mean(test > cfg.trains_above)),
        "val_accuracy_best": summary(stopper.best),
        "best_epoch": (stopper.best_epoch + 1).tolist(),  # 1-based, as UvA prints epochs
        "epochs_run": stopper.epochs_run().tolist(),
        "epochs_program": len(stopper.history),  # what the vmapped program ran: the longest seed's
        "val_accuracy_history": np.stack(stopper.history, axis=1).tolist(),  # [seed][epoch]
        "dead_fraction_by_layer_init": by_layer(dead_init),
        "dead_fraction_by_layer": by_layer(dead_trained),
        "compile_s": res["compile_s"],
        "epoch_s": float(epoch_s.mean()),
        "samples_per_s": float(cfg.seeds * res["steps_per_epoch"] * cfg.batch_size / epoch_s.mean()),
        "train_n": n_train,
    }


def run_uva(cfg: UvaConfig, out_dir: str | Path, *, spec: str | None = None) -> dict:
    """The preset end to end: DIR/activations_uva.{json,md}; returns the JSON."""
    from jaxgen.bench import uva_report

    t_start = time.perf_counter()
    cfg.check()
    out = common.out_dir(out_dir)
    spec = spec or cfg.data
    ds = load_preset_data(spec)
    host = uva_splits(ds, cfg)
    sizes = {k: int(len(v["label"])) for k, v in host.items()}
    if cfg.batch_size > sizes["train"]:
        raise UserError(f"batch_size {cfg.batch_size} exceeds the {sizes['train']} training images")
    dev = jax.device_put(host)
    common.log(f"bench activations --preset uva ({cfg.mode}) on {runtime.device_name()}, {spec} {sizes}: "
               f"{', '.join(cfg.activations)}")  # fmt: skip
    results: dict[str, dict] = {}
    for i, name in enumerate(cfg.activations):
        t0 = time.perf_counter()
        results[name] = res = measure_uva(name, cfg, ds, dev)
        common.log(
            f"  [{i + 1}/{len(cfg.activations)}] {name}: test {res['test_accuracy']['mean']:.4f} ± "
            f"{res['test_accuracy']['std']:.4f}, epochs {res['epochs_run']}, best {res['best_epoch']} "
            f"({time.perf_counter() - t0:.1f} s, total {time.perf_counter() - t_start:.0f} s)"
        )
    doc = {
        **common.header("activations", cfg.mode, out),
        "preset": "uva",
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()},
        "data": {"spec": spec, **{f"{k}_n": n for k, n in sizes.items()}, "val_from": "train split"},
        "anchors": UVA_ANCHORS,
        "seeds": list(range(cfg.seeds)),
        "layers": layer_names(len(cfg.hidden))[:-1],
        "activations": results,
    }
    return uva_report.write(doc, out, t_start)

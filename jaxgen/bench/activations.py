"""`jaxgen bench activations`: every activation in the registry measured on gradient flow, dead and
saturated units, held-out accuracy over seeds, and speed, on the machine at hand.

Training reuses the classifier task and `chunks.run_chunk`: the seeds of one activation are one
`jax.vmap`-ed compiled program, run in a few timed chunks so per-layer gradient norms can be read as
training goes (the measurements: jaxgen.bench.measures). Results: DIR/activations.json, DIR/activations.md
(jaxgen.bench.report) and PNG figures (jaxgen.bench.figures). `--data SPEC` trains and tests on SPEC.
`--preset uva`, UvA DL tutorial 3's setting: jaxgen.bench.uva.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import activations, data, models, runtime, tasks
from jaxgen.bench import common
from jaxgen.bench.measures import (
    composed_linear_map,
    hidden_layer_results,
    layer_names,
    make_analysis,
    seed_keys,
    summary,
)
from jaxgen.chunks import run_chunk
from jaxgen.errors import UserError

REPO = Path(__file__).resolve().parents[2]
TEST5K = REPO.parent / "shared" / "data" / "mnist-test5k"  # beside the repo


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What one benchmark run measures; QUICK and FULL are the two presets."""

    mode: str = "quick"
    activations: tuple[str, ...] = activations.NAMES
    depth: int = 10  # hidden layers of the deep MLP (gradient flow, dead units, accuracy)
    width: int = 64
    seeds: int = 3  # seeds 0..seeds-1, trained as one vmapped program
    steps: int = 200  # AdamW steps per seed: the fixed budget
    chunks: int = 4  # training is read (grad norms, accuracy) and timed after each of these chunks
    batch_size: int = 128
    lr: float = 3e-3  # peak; cosine decay to 0 over `steps`, no warm-up
    high_lr: float | None = None  # also train high_lr_activations at this lr (dying ReLUs); None = skip
    high_lr_activations: tuple[str, ...] = ("relu", "leaky_relu")
    depths: tuple[int, ...] = ()  # accuracy against depth (full mode)
    shared_init: str | None = "glorot_uniform"  # gradient flow at init with one initialiser for all
    grad_batch: int = 512  # fixed training batch for gradient norms
    probe_size: int = 1000  # held-out images for dead / saturated units
    single_seed_speed: bool = False  # also time one seed's program, as `jaxgen train` runs it
    speed_steps: int = 100  # steps per timed call of the single-seed program
    speed_reps: int = 5
    elementwise_size: int = 1 << 22  # 4M float32s
    elementwise_reps: int = 20
    # Softmax regression (no hidden layer) for the linear story, at its own lr: it is convex and reaches its
    # best within the budget there, so the deep linear net is compared with the best one linear map does.
    softmax_regression_lr: float | None = 1e-2

    def check(self) -> None:
        """UserError for values the benchmark cannot run with."""
        for name in self.activations:
            activations.validate(name)
        if self.depth < 2 or min(self.width, self.seeds, self.batch_size, self.chunks) < 1:
            raise UserError(f"bench needs depth >= 2 and positive width, seeds, batch_size, chunks: {self}")
        if self.steps % self.chunks:
            raise UserError(f"steps ({self.steps}) must be a multiple of chunks ({self.chunks})")
        if self.shared_init is not None:
            activations.initializer(self.shared_init)


QUICK = BenchConfig()
FULL = BenchConfig(
    mode="full",
    depth=20,
    width=128,
    seeds=5,
    steps=500,
    chunks=5,
    high_lr=1e-2,
    depths=(2, 4, 8, 16),
    single_seed_speed=True,
    elementwise_reps=50,
)


def load_data(test_dir: Path | None = None, spec: str | None = None) -> dict[str, Any]:
    """Train and test on SPEC's splits (`--data SPEC`); without one, train on the embedded sample and test
    on the real held-out digits when they are beside the repo."""
    if spec is not None:
        ds = data.load(spec)
        train_np, test_np = data.split(ds, "train"), data.split(ds, "test")
        return {"ds": ds, "train": train_np, "test": test_np, "train_spec": spec, "test_spec": spec}
    test_dir = TEST5K if test_dir is None else Path(test_dir)
    found = any((test_dir / f"t10k-images-idx3-ubyte{gz}").exists() for gz in ("", ".gz"))
    test_spec = f"idx:{test_dir}" if found else "embedded"
    ds = data.load("embedded")
    return {"ds": ds, "train": data.split(ds, "train"), "test": data.split(data.load(test_spec), "test"),
            "train_spec": "embedded", "test_spec": test_spec}  # fmt: skip


# ---------------------------------------------------------------- measurement


def build_task(name: str, depth: int, cfg: BenchConfig, lr: float, ds: data.Dataset, init: str | None = None):
    """The classifier task as `jaxgen train mlp` builds it, without dropout, augmentation or smoothing."""
    overrides = {"hidden": (cfg.width,) * max(depth, 1), "activation": name, "init": init, "dropout": 0.0,
                 "augment": False, "label_smoothing": 0.0, "warmup_steps": 0, "steps": cfg.steps, "lr": lr,
                 "batch_size": cfg.batch_size}  # fmt: skip
    task = tasks.build(tasks.make_config("mlp", overrides), ds)
    if depth == 0:
        # Softmax regression: the same loss, optimizer and step on a model with no hidden layer.
        task.model = models.MLP(hidden=(), num_outputs=ds.num_classes, activation="linear")
    return task


@dataclasses.dataclass
class Context:
    """What the measurements of one benchmark run share: config, device data, initial states."""

    cfg: BenchConfig
    ds: data.Dataset
    arrays: dict[str, Any]
    states: dict[tuple, Any] = dataclasses.field(default_factory=dict)

    def initial_state(self, task, name: str, depth: int, init: str | None, lr: float):
        """The seeds' task.init states, cached: they depend on the initialiser, not on the activation."""
        key = (activations.default_init(name) if init is None else init, depth, lr)
        if key not in self.states:
            # Eager vmap: compiling the initialisers costs more (seconds) than running them op by op.
            self.states[key] = jax.vmap(task.init)(seed_keys(self.cfg.seeds)[0])
        return self.states[key]

    @property
    def probe(self) -> tuple:
        a = self.arrays
        return a["grad_batch"], a["test"]["image"], a["test"]["label"]


def train_seeds(ctx: Context, name: str, depth: int, lr: float, *, chunks: int | None = None) -> dict:
    """Train every seed of one (activation, depth, lr) as one vmapped program; measure along the way.

    The timed chunks give the training throughput (every seed's samples, compilation excluded).
    """
    cfg = ctx.cfg
    chunks = chunks or cfg.chunks
    task = build_task(name, depth, cfg, lr, ctx.ds)
    _, data_keys, loop_keys = seed_keys(cfg.seeds)
    state = ctx.initial_state(task, name, depth, None, lr)
    length = cfg.steps // chunks
    run = functools.partial(run_chunk, task, cfg.batch_size, length, None)
    t0 = time.perf_counter()
    chunk = jax.jit(jax.vmap(run, in_axes=(0, None, 0, 0))).lower(
        state, ctx.arrays["train"], data_keys, loop_keys
    )
    chunk = chunk.compile()
    compile_s = time.perf_counter() - t0
    analyse = make_analysis(task, name, depth, cfg.probe_size, logits=name == "linear" and depth > 0)
    history = [jax.device_get(analyse(state.params, *ctx.probe))]
    rates = []
    for _ in range(chunks):
        t0 = time.perf_counter()
        state, metrics = jax.block_until_ready(chunk(state, ctx.arrays["train"], data_keys, loop_keys))
        rates.append(cfg.seeds * length * cfg.batch_size / (time.perf_counter() - t0))
        history.append(jax.device_get(analyse(state.params, *ctx.probe)))
    init, final = history[0], history[-1]
    norms = lambda h: h["grad_norms"].mean(0).tolist()
    res: dict[str, Any] = {
        "depth": depth,
        "lr": lr,
        "init": activations.default_init(name),
        "test_accuracy": summary(final["accuracy"]),
        "train_loss_last_chunk": summary(np.asarray(metrics["loss"]).mean(axis=1)),
        "softmax_max_sum_err": float(np.max(final["softmax_sum_err"])),
        "samples_per_s": float(np.mean(rates)),
        "samples_per_s_std": float(np.std(rates)),
        "compile_s": compile_s,
        "grad_norm_by_layer": norms(init),
        "grad_norm_by_layer_std": init["grad_norms"].std(0).tolist(),
        "history": {
            "steps": [i * length for i in range(chunks + 1)],
            "grad_norm_by_layer": [norms(h) for h in history],
            "test_accuracy": [float(h["accuracy"].mean()) for h in history],
        },
        "_params": state.params,  # for the linear collapse; dropped before writing JSON
        "_logits": final.get("logits"),
        "_analyse": analyse,
    }
    if depth:
        hidden = hidden_layer_results(history, depth, cfg.seeds)
        res["history"].update(hidden.pop("history"))
        res.update(hidden)
    return res


def shared_init_grad_norms(ctx: Context, name: str, analyse: Callable) -> dict[str, Any]:
    """Gradient norms at initialisation when every activation gets the same initialiser."""
    cfg = ctx.cfg
    task = build_task(name, cfg.depth, cfg, cfg.lr, ctx.ds, init=cfg.shared_init)
    state = ctx.initial_state(task, name, cfg.depth, cfg.shared_init, cfg.lr)
    norms = np.asarray(analyse(state.params, *ctx.probe)["grad_norms"])
    return {
        "grad_norm_by_layer_shared_init": norms.mean(0).tolist(),
        "grad_ratio_first_last_shared_init": float((norms[:, 0] / norms[:, cfg.depth - 1]).mean()),
    }


def linear_collapse(deep: dict, soft: dict, ctx: Context) -> dict[str, Any]:
    """The deep linear net against softmax regression, and its product map against its own logits."""
    params = jax.tree.map(lambda a: np.asarray(a, np.float64), jax.device_get(deep["_params"]))
    x = np.asarray(ctx.arrays["test"]["image"], np.float64)
    x = x.reshape(len(x), -1)  # images as the flat points the MLP reads
    x = x / 255.0 if ctx.ds.kind == "image" else x  # as batches.normalise scales what the net saw
    rel, same = [], []
    for seed, logits in enumerate(deep["_logits"]):  # the trained net's own float32 test logits
        w, b = composed_linear_map(jax.tree.map(lambda a, s=seed: a[s], params), ctx.cfg.depth)
        composed = x @ w + b[None, :]
        rel.append(np.max(np.abs(composed - logits)) / np.max(np.abs(logits)))
        same.append(np.mean(composed.argmax(-1) == logits.argmax(-1)))
    d, s = deep["test_accuracy"], soft["test_accuracy"]
    return {
        "depth": ctx.cfg.depth,
        "deep_linear_accuracy": d,
        "deep_linear_lr": deep["lr"],
        "softmax_regression_accuracy": s,
        "softmax_regression_lr": soft["lr"],
        "softmax_regression_accuracy_history": soft["history"]["test_accuracy"],
        "accuracy_gap": d["mean"] - s["mean"],
        "composed_map_shape": list(w.shape),
        "composed_logits_max_rel_diff": float(np.max(rel)),
        "composed_argmax_agreement": float(np.min(same)),
    }


def _time(fn: Callable, reps: int) -> list[float]:
    """Seconds per call of fn() after one warm-up call, each waited for with block_until_ready."""
    jax.block_until_ready(fn())
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - t0)
    return out


def single_seed_speed(ctx: Context, name: str) -> dict[str, Any]:
    """Compile time and samples/s of one seed's run_chunk, as `jaxgen train` runs it on one device."""
    cfg, train_dev = ctx.cfg, ctx.arrays["train"]
    task = build_task(name, cfg.depth, cfg, cfg.lr, ctx.ds)
    _, data_key, loop_key = runtime.split_keys(0)
    state = jax.tree.map(lambda x: x[0], ctx.initial_state(task, name, cfg.depth, None, cfg.lr))
    t0 = time.perf_counter()
    fn = jax.jit(functools.partial(run_chunk, task, cfg.batch_size, cfg.speed_steps, None))
    compiled = fn.lower(state, train_dev, data_key, loop_key).compile()
    compile_s = time.perf_counter() - t0
    rates = [cfg.speed_steps * cfg.batch_size / t for t in
             _time(lambda: compiled(state, train_dev, data_key, loop_key), cfg.speed_reps)]  # fmt: skip
    return {
        "samples_per_s_single_seed": float(np.mean(rates)),
        "samples_per_s_single_seed_std": float(np.std(rates)),
        "compile_s_single_seed": compile_s,
    }


def elementwise_speed(name: str, size: int, reps: int) -> dict[str, Any]:
    """ms per forward + backward of the activation alone on `size` float32s (no matmul to hide it)."""
    fn = activations.get(name)

    def fwd_bwd(x):
        y, vjp = jax.vjp(fn, x)
        return y + vjp(jnp.ones_like(y))[0]  # one output: no copy of x for the identity to time

    x = jax.random.normal(jax.random.key(0), (size,), jnp.float32)
    compiled = jax.jit(fwd_bwd).lower(x).compile()
    ms = 1e3 * np.array(_time(lambda: compiled(x), reps))
    return {"elementwise_ms": float(ms.mean()), "elementwise_ms_std": float(ms.std()),
            "elementwise_ms_median": float(np.median(ms))}  # fmt: skip


# ---------------------------------------------------------------- the benchmark

_HIGH_LR_KEYS = ("lr", "test_accuracy", "dead_fraction", "dead_fraction_std", "dead_fraction_seeds",
                 "dead_fraction_by_layer", "dead_fraction_init", "never_positive_fraction")  # fmt: skip
_DEPTH_KEYS = ("test_accuracy", "grad_ratio_first_last", "dead_fraction", "samples_per_s")


def make_context(cfg: BenchConfig, loaded: dict[str, Any]) -> Context:
    """The run's shared state: training data, gradient batch and test set on the device."""
    train_np, test_np = loaded["train"], loaded["test"]
    if cfg.batch_size > len(train_np["label"]):
        raise UserError(f"batch_size {cfg.batch_size} exceeds the {len(train_np['label'])} training images")
    arrays = {
        "train": jax.device_put(dict(train_np)),
        "grad_batch": jax.device_put({k: v[: cfg.grad_batch] for k, v in train_np.items()}),
        "test": jax.device_put(dict(test_np)),
    }
    return Context(cfg, loaded["ds"], arrays)


def measure_activation(ctx: Context, name: str) -> dict[str, Any]:
    """Every measurement of one activation: training at the config's depth and lr, gradient flow under the
    shared initialiser, speed, and (as configured) a high lr and other depths."""
    cfg = ctx.cfg
    res = train_seeds(ctx, name, cfg.depth, cfg.lr)
    if cfg.shared_init is not None:
        res.update(shared_init=cfg.shared_init, **shared_init_grad_norms(ctx, name, res["_analyse"]))
    if cfg.single_seed_speed:
        res.update(single_seed_speed(ctx, name))
    res.update(elementwise_speed(name, cfg.elementwise_size, cfg.elementwise_reps))
    if cfg.high_lr is not None and name in cfg.high_lr_activations:
        high = train_seeds(ctx, name, cfg.depth, cfg.high_lr)
        res["high_lr"] = {k: high[k] for k in _HIGH_LR_KEYS}
    if cfg.depths:
        by_depth = [train_seeds(ctx, name, d, cfg.lr, chunks=1) for d in cfg.depths]
        res["accuracy_by_depth"] = {
            str(d): {k: r[k] for k in _DEPTH_KEYS} for d, r in zip(cfg.depths, by_depth, strict=True)
        }
    return res


def _progress(res: dict[str, Any]) -> str:
    acc = res["test_accuracy"]
    return (
        f"accuracy {acc['mean']:.4f} ± {acc['std']:.4f}, grad ratio {res['grad_ratio_first_last']:.2e}, "
        f"dead {res['dead_fraction']:.3f}, {res['samples_per_s']:.0f} samples/s, "
        f"compile {res['compile_s']:.2f} s"
    )


def run(
    cfg: BenchConfig,
    out_dir: str | Path,
    *,
    test_dir: Path | None = None,
    plots: bool = True,
    data_spec: str | None = None,
) -> dict:
    """Measure every activation in `cfg`, write DIR/activations.{json,md} and figures; return the JSON."""
    from jaxgen.bench import report

    t_start = time.perf_counter()
    cfg.check()
    out = common.out_dir(out_dir)
    loaded = load_data(test_dir, data_spec)
    ctx = make_context(cfg, loaded)
    common.log(f"bench activations ({cfg.mode}) on {runtime.device_name()}: {', '.join(cfg.activations)}")
    results: dict[str, dict] = {}
    for i, name in enumerate(cfg.activations):
        t0 = time.perf_counter()
        results[name] = measure_activation(ctx, name)
        common.log(
            f"  [{i + 1}/{len(cfg.activations)}] {name}: {_progress(results[name])} "
            f"({time.perf_counter() - t0:.1f} s, total {time.perf_counter() - t_start:.0f} s)"
        )
    collapse = None
    if cfg.softmax_regression_lr is not None and "linear" in results:
        soft = train_seeds(ctx, "linear", 0, cfg.softmax_regression_lr)
        collapse = linear_collapse(results["linear"], soft, ctx)
    for res in results.values():
        del res["_params"], res["_analyse"], res["_logits"]
    doc = {
        **common.header("activations", cfg.mode, out),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()},
        "train_data": {"spec": loaded["train_spec"], "n": int(len(loaded["train"]["label"]))},
        "test_data": {"spec": loaded["test_spec"], "n": int(len(loaded["test"]["label"]))},
        "seeds": list(range(cfg.seeds)),
        "layers": layer_names(cfg.depth),
        "activations": results,
        "linear_collapse": collapse,
    }
    return report.write(doc, out, t_start, plots=plots)

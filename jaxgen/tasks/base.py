"""The task contract: what the one driver (jaxgen.train) and the CLI need from a task.

A task is built from (config, dataset) and is a bundle of pure functions over one State pytree:
  init(key) -> State
  step(state, batch, key) -> (state, metrics)        one jit region, any number of optimizers inside
  evaluate(params, arrays, key, judge=None, full=False) -> dict   cheap enough for every checkpoint at
                                                      full data size (subsamples where honest); full=True:
                                                      the complete measure `jaxgen eval` reports
Optional (the driver and CLI look for them with hasattr):
  sample(params, key, n) -> np.ndarray                what `jaxgen sample` writes: (n, D) float32
  snapshot(params, step, run_dir) -> None             at every checkpoint, e.g. fixed-noise samples
  preview(params, arrays) -> (tag, uint8 [H, W, 3]) | None   at every checkpoint: one image of the test
                                                      split `arrays` (samples, reconstructions) for
                                                      TensorBoard and samples/step-N.png; cheap (~0.1 s)
  eval_headline: tuple[str, ...]                      the evaluate() keys the HParams tab shows beside the
                                                      hyperparameters (default: `headline`)
  figures(params, arrays, out_dir, step=None, device="?") -> list   through jaxgen.plots.draw_run, after
                                                      training and from `jaxgen plot` (step, device: titles)

Metrics named in SAMPLED_METRICS may be measured on every NORM_EVERY-th step only (on the CPU; NaN on the
others); the driver averages them over the steps that measured them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxgen.errors import UserError

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


@struct.dataclass
class State:
    """Everything a run needs besides its config: params, optimizer state(s), step counter.

    A GAN keeps {"g": ..., "d": ...} in both `params` and `opt_state`; the driver does not care.
    """

    step: jax.Array  # int32 scalar: optimizer steps taken (GAN: generator steps)
    params: Any
    opt_state: Any


# Gradient norms are diagnostics. On the CPU they are measured on steps 0, NORM_EVERY, 2 * NORM_EVERY, ...
# only: there XLA writes out every gradient's square before reducing it, which cost 12 % of an MLP step
# (784-512-512-10, batch 128, profiled op by op) when done every step; one step in ten costs about 1 %.
# Elsewhere they are measured every step: an accelerator reduces them in a fused kernel, and a
# `lax.cond` inside the scanned step could make a GPU read its predicate back to the host every step.
# JAXGEN_NORM_EVERY=N overrides the backend's choice (1: every step), so that one machine can time both ways
# (benchmarks/gpu_check.sh asks whether the `lax.cond` costs anything on a GPU).
NORM_EVERY = 10
SAMPLED_METRICS = ("grad_norm", "d_grad_norm", "g_grad_norm")


def norm_every() -> int:
    """Steps between gradient-norm measurements on this backend (1: every step), or JAXGEN_NORM_EVERY's."""
    text = os.environ.get("JAXGEN_NORM_EVERY", "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            msg = f"JAXGEN_NORM_EVERY must be a whole number >= 1, got {text!r}: unset it or fix it"
            raise UserError(msg)
        return int(text)
    return NORM_EVERY if jax.default_backend() == "cpu" else 1


def sampled_norm(step: jax.Array, tree: Any) -> jax.Array:
    """Global L2 norm of `tree` (float32) on steps that are multiples of norm_every(), NaN on the others."""
    if norm_every() == 1:
        return optax.tree.norm(tree).astype(jnp.float32)
    return jax.lax.cond(
        step % norm_every() == 0,
        lambda t: optax.tree.norm(t).astype(jnp.float32),
        lambda t: jnp.float32(jnp.nan),
        tree,
    )


def chunk_means(metrics: dict[str, np.ndarray]) -> dict[str, float]:
    """Each metric's mean over a chunk's steps; a sampled metric's over the steps that measured it (left
    out when none did). Other metrics keep np.mean, so a NaN loss still shows as NaN."""
    out = {}
    for k, v in metrics.items():
        v = np.asarray(v, np.float64)
        if k in SAMPLED_METRICS:
            v = v[~np.isnan(v)]
            if v.size == 0:
                continue
        out[k] = float(np.mean(v))
    return out


# Flax variable collections that are state, not parameters: BatchNorm's running mean and variance. They
# live in State.params beside "params" (so evaluation, sampling, the judge and checkpoints see them with
# the weights), are returned by the training-mode forward pass, and are never touched by an optimizer.
STATS = ("batch_stats",)


def split_variables(variables: Any) -> tuple[dict, dict]:
    """(the trainable collections, the statistics collections) of a flax variables dict."""
    trainable = {k: v for k, v in variables.items() if k not in STATS}
    return trainable, {k: v for k, v in variables.items() if k in STATS}


def apply_train(model: Any, trainable: dict, stats: dict, *args: Any, **kwargs: Any) -> tuple[Any, dict]:
    """model.apply in training mode: (outputs, the statistics after this batch). Without statistics it
    is a plain apply and the (empty) statistics come back unchanged."""
    if not stats:
        return model.apply(trainable, *args, **kwargs), stats
    out, updated = model.apply({**trainable, **stats}, *args, mutable=list(stats), **kwargs)
    return out, {k: updated[k] for k in stats}


def in_batches(fn: Callable[[np.ndarray], Any], x: np.ndarray, batch: int = 1000) -> Any:
    """fn over x in zero-padded chunks of one size (one compiled shape), outputs (any pytree of arrays with
    a leading example axis) concatenated and trimmed to len(x). Host side: evaluation, sampling, plots."""
    x = np.asarray(x)
    outs = []
    for i in range(0, max(len(x), 1), batch):  # an empty x still gives outputs of the right shape
        chunk = x[i : i + batch]
        keep = len(chunk)
        if keep < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - keep, *chunk.shape[1:]), chunk.dtype)])
        outs.append(jax.tree.map(lambda a, keep=keep: np.asarray(a)[:keep], fn(chunk)))
    return jax.tree.map(lambda *parts: np.concatenate(parts), *outs)


class Task(Protocol):
    """A training problem the driver can run; every method is pure and jit-able except the host-side ones."""

    name: str
    # Examples the driver draws per step: batch_size, or d_steps * batch_size for a GAN whose step
    # reshapes them into one batch per discriminator update. Also what samples/s counts.
    examples_per_step: int
    # Train metrics shown on the progress bar (the first one is the headline).
    headline: tuple[str, ...]

    def init(self, key: jax.Array) -> State: ...

    def step(self, state: State, batch: Batch, key: jax.Array) -> tuple[State, Metrics]: ...

    def evaluate(
        self, params: Any, arrays: dict[str, Any], key: jax.Array, judge: Any = None, full: bool = False
    ) -> dict[str, float | int]: ...

    def figures(
        self, params: Any, arrays: dict[str, Any], out_dir: Path, step: int | None = None, device: str = "?"
    ) -> list[Path]: ...


def headline_tags(task: Any, splits: list[str]) -> list[str]:
    """The scalar tags a run's headline metrics are logged under: each eval split's `eval_headline` keys
    (`headline` where the task names none), then the train `headline`."""
    evals = getattr(task, "eval_headline", task.headline)
    return [f"{s}/{k}" for s in splits for k in evals] + [f"train/{k}" for k in task.headline]


def judge_reports(judges: Any, samples01: np.ndarray, real01: np.ndarray, train01: np.ndarray | None) -> dict:
    """{"quality": {judge name: judge.report(samples, real, train)}} under every judge given (one
    jaxgen.judge.Judge or a sequence of them; None: {}). A judge is named by its architecture (mlp, conv), or
    by its run directory where two share one."""
    if judges is None:
        return {}
    judges = list(judges) if isinstance(judges, list | tuple) else [judges]
    archs = [j.arch for j in judges]
    names = [a if archs.count(a) == 1 else j.run_dir for a, j in zip(archs, judges, strict=True)]
    return {
        "quality": {name: j.report(samples01, real01, train01) for name, j in zip(names, judges, strict=True)}
    }

"""What the activation benchmarks measure on a net: dead, never-positive and saturated units; the vmapped
analysis (gradient norm per layer, unit statistics, test accuracy) and what the hidden layers say over a
training run; the product map of a deep linear net; seed keys and per-seed summaries.

Shared by `jaxgen bench activations` (jaxgen.bench.activations) and its UvA preset (jaxgen.bench.uva).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import activations, runtime
from jaxgen.data import batches

# Flat regions of the saturating units: derivative below ~8% of its maximum there.
SIGMOID_FLAT = 0.02  # sigmoid(x) < 0.02 or > 0.98: sigmoid' < 0.0196 = 7.8% of 1/4
TANH_FLAT = 0.96  # |tanh(x)| > 0.96: tanh' = 1 - tanh^2 < 0.078
SATURATED_EXAMPLES = 0.99  # a unit is saturated if it sits in the flat region on >= 99% of probe examples


def layer_names(depth: int) -> list[str]:
    """Dense layers of models.MLP, first first; `out` is the linear readout."""
    return [f"hidden_{i}" for i in range(depth)] + ["out"]


def unit_stats(name: str, pre: jax.Array) -> dict[str, jax.Array]:
    """Fractions of the units of pre-activations [..., P examples, W units] that are dead, never positive,
    saturated (sigmoid, tanh), per leading index."""
    post = activations.get(name)(pre)
    base = name.partition(":")[0]
    out = {
        "dead": jnp.mean(jnp.all(post == 0, axis=-2), axis=-1),  # output 0 everywhere: gradient 0 for ever
        "never_positive": jnp.mean(jnp.all(pre <= 0, axis=-2), axis=-1),  # would be dead under ReLU
    }
    if base in ("sigmoid", "tanh"):
        if base == "sigmoid":
            flat = (post < SIGMOID_FLAT) | (post > 1 - SIGMOID_FLAT)
        else:
            flat = jnp.abs(post) > TANH_FLAT
        out["saturated"] = jnp.mean(jnp.mean(flat, axis=-2) >= SATURATED_EXAMPLES, axis=-1)
        out["saturated_pairs"] = jnp.mean(flat, axis=(-2, -1))
    return out


def make_analysis(task, name: str, depth: int, probe_size: int, *, logits: bool = False) -> Callable:
    """jit(vmap over seeds) of (params, grad batch, test set) -> per-layer grad norms on the batch; unit
    stats per hidden layer on the first `probe_size` test images; test accuracy; softmax sum check."""
    model = task.model
    hidden = lambda mdl, _method: mdl.name is not None and mdl.name.startswith("hidden_")

    def one(params, grad_batch, test_x, test_y):
        def loss_fn(p):
            return task.loss(model.apply(p, batches.normalise(grad_batch["image"])), grad_batch["label"])

        grads = jax.grad(loss_fn)(params)["params"]
        out = {"grad_norms": jnp.stack([jnp.linalg.norm(grads[n]["kernel"]) for n in layer_names(depth)])}
        logits_NxC, inter = model.apply(
            params, batches.normalise(test_x), capture_intermediates=hidden, mutable=["intermediates"]
        )
        if depth:
            pre = jnp.stack([inter["intermediates"][f"hidden_{i}"]["__call__"][0] for i in range(depth)])
            out.update(unit_stats(name, pre[:, :probe_size]))
        out["accuracy"] = jnp.mean(jnp.argmax(logits_NxC, -1) == test_y)
        out["softmax_sum_err"] = jnp.max(jnp.abs(jnp.sum(activations.softmax(logits_NxC), -1) - 1))
        if logits:
            out["logits"] = logits_NxC
        return out

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None)))


def seed_keys(seeds: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(init, data, loop) keys of seeds 0..seeds-1, stacked, exactly as `jaxgen train` splits them."""
    keys = [runtime.split_keys(s) for s in range(seeds)]
    return tuple(jnp.stack([k[i] for k in keys]) for i in range(3))


def summary(values: np.ndarray) -> dict[str, Any]:
    """mean, sample std (ddof 1; 0 for one seed) and the per-seed values."""
    values = np.asarray(values, np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "seeds": values.tolist()}


def hidden_layer_results(history: list[dict], depth: int, seeds: int) -> dict[str, Any]:
    """What the hidden layers say, from a training run's analyses (initialisation first): first/last
    gradient ratio (and its history), dead and never-positive units, saturation."""
    init, final = history[0], history[-1]
    ratio = lambda h: h["grad_norms"][:, 0] / h["grad_norms"][:, depth - 1]
    res: dict[str, Any] = {
        "grad_ratio_first_last": float(ratio(init).mean()),
        "grad_ratio_first_last_seeds": ratio(init).tolist(),
        "history": {"grad_ratio_first_last": [float(ratio(h).mean()) for h in history]},
    }
    for key, src in (("dead_fraction", "dead"), ("never_positive_fraction", "never_positive")):
        per_seed = final[src].mean(1)
        res[key] = float(per_seed.mean())
        res[key + "_std"] = float(per_seed.std(ddof=1)) if seeds > 1 else 0.0
        res[key + "_seeds"] = per_seed.tolist()
        res[key + "_by_layer"] = final[src].mean(0).tolist()
        res[key + "_init"] = float(init[src].mean())
    sat = "saturated" in final
    res["saturated_fraction"] = float(final["saturated"].mean()) if sat else None
    res["saturated_pair_fraction"] = float(final["saturated_pairs"].mean()) if sat else None
    res["saturated_fraction_init"] = float(init["saturated"].mean()) if sat else None
    return res


def composed_linear_map(params: Any, depth: int) -> tuple[Any, Any]:
    """(W[784, C], b[C]) of a deep linear MLP: its layers multiplied out into one affine map."""
    p = params["params"]
    w, b = p["hidden_0"]["kernel"], p["hidden_0"]["bias"]
    for name in layer_names(depth)[1:]:
        w, b = w @ p[name]["kernel"], b @ p[name]["kernel"] + p[name]["bias"]
    return w, b

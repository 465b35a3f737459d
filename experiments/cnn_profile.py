"""Where the CNN step's time goes on this machine: the default `arch=conv` classifier step taken apart.

    python experiments/cnn_profile.py [--batch 128] [--steps 20] [--rounds 3]

Every row is a jitted `lax.scan` of `steps` iterations over the same random batch (the driver's chunk),
timed in interleaved rounds (median ms per step, one process, so other jobs slow every row alike):
  step          the classifier task's whole training step (BatchNorm, AdamW, label smoothing, dropout)
  step_no_bn    the same with norm=none (the classifier's default)
  dcgan_step, dcgan_step_no_r1  one DCGAN step at its default batch (`jaxgen train gan --set arch=conv`),
                with and without the R1 penalty (its gradient of a gradient through D's convolutions)
  forward       the model's training-mode forward pass and loss only
  forward_backward  forward and gradient (no optimizer, no augmentation)
  gemms         only the matrix products the step executes, at its shapes (convolutions as patches @ kernel:
                forward, input gradient, weight gradient; dense layers likewise): the bound at these shapes
  patches       only building the shifted-slice patches of both convolutions and their transposes (the
                data movement the slices implementation adds)
Prints one JSON line per round and a summary; docs/speed.md quotes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import convs, data, tasks


def timer(fn, carry, steps):
    run = jax.jit(lambda c: jax.lax.scan(lambda c, _: (fn(c), None), c, None, length=steps)[0])
    jax.block_until_ready(run(carry))

    def once():
        t0 = time.perf_counter()
        jax.block_until_ready(run(carry))
        return 1e3 * (time.perf_counter() - t0) / steps

    return once


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    B, n = args.batch, args.steps
    ds = data.load("embedded")
    base = tasks.make_config("mlp", {"arch": "conv", "batch_size": B, "steps": 1000, "norm": "batch"})
    rng = np.random.default_rng(0)
    batch = {
        "image": jnp.asarray(rng.integers(0, 256, (B, 784)).astype(np.uint8)),
        "label": jnp.asarray(rng.integers(0, 10, B).astype(np.int32)),
    }
    key = jax.random.key(0)
    rows = {}
    for name, cfg in (("step", base), ("step_no_bn", dataclasses.replace(base, norm="none"))):
        task = tasks.build(cfg, ds)
        rows[name] = timer(lambda s, task=task: task.step(s, batch, key)[0], task.init(key), n)
    gan_cfg = tasks.resolve(tasks.make_config("gan", {"arch": "conv", "steps": 1000}), ds)
    gan_batch = {"image": jnp.asarray(rng.integers(0, 256, (gan_cfg.batch_size, 784)).astype(np.uint8))}
    for name, cfg in (("dcgan_step", gan_cfg), ("dcgan_step_no_r1", dataclasses.replace(gan_cfg, r1=0.0))):
        gan = tasks.build(cfg, ds)
        rows[name] = timer(lambda s, t=gan: t.step(s, gan_batch, key)[0], gan.init(key), max(2, n // 4))
    task = tasks.build(base, ds)
    state = task.init(key)

    def forward(c):
        logits, upd = task.model.apply(
            {**c["v"]}, batch["image"] / 255.0, train=True, rngs={"dropout": key}, mutable=["batch_stats"]
        )
        return {"v": {**c["v"], **upd}, "acc": c["acc"] + logits.sum()}

    rows["forward"] = timer(forward, {"v": state.params, "acc": jnp.zeros(())}, n)
    trainable = {"params": state.params["params"]}
    stats = {"batch_stats": state.params["batch_stats"]}

    def grad(c):
        def loss(t):
            logits, upd = task.model.apply(
                {**t, **stats},
                batch["image"] / 255.0,
                train=True,
                rngs={"dropout": key},
                mutable=["batch_stats"],
            )
            return task.loss(logits, batch["label"]), upd

        g, _ = jax.grad(loss, has_aux=True)(c)
        return jax.tree.map(lambda a, b: a - 1e-9 * b, c, g)

    rows["forward_backward"] = timer(grad, trainable, n)
    # the products alone: per conv layer (input H, cin -> cout): forward P @ K, input grad dY @ K^T,
    # weight grad P^T @ dY; dense layers likewise
    side, cin, shapes = 28, 1, []
    for c in base.channels:
        shapes.append((B * side * side, 9 * cin, c, cin > 1))
        side, cin = side // 2, c
    dense = [side * side * cin, *base.head, 10]
    shapes += [(B, a, b, True) for a, b in zip(dense[:-1], dense[1:], strict=True)]
    mats = {
        i: (jnp.ones((m, k), jnp.float32) * 0.01, jnp.ones((k, c), jnp.float32) * 0.01)
        for i, (m, k, c, _) in enumerate(shapes)
    }

    def gemms(c):
        total = c
        for i, (_, _, _, input_grad) in enumerate(shapes):
            P, K = mats[i]
            Y = P @ (K + total * 1e-9)
            total = total + 1e-12 * jnp.sum(P.T @ Y)  # sums: every product computed in full
            if input_grad:
                total = total + 1e-12 * jnp.sum(Y @ K.T)
        return total

    rows["gemms"] = timer(gemms, jnp.zeros(()), n)
    xs = [jnp.ones((B, 28, 28, 1)), jnp.ones((B, 14, 14, base.channels[0]))]

    def patches(c):
        total = c
        for x in xs:
            pads = (convs.same_padding(x.shape[1], 3, 1), convs.same_padding(x.shape[2], 3, 1))
            cols = convs.patches(x + total * 1e-9, 3, 1, pads)
            back = jax.grad(lambda x, p=pads, c=cols: jnp.sum(convs.patches(x, 3, 1, p) * c))(x)  # transpose
            total = total + 1e-12 * (jnp.sum(cols) + jnp.sum(back))
        return total

    rows["patches"] = timer(patches, jnp.zeros(()), n)
    results = {k: [] for k in rows}
    for r in range(args.rounds):
        for k, fn in rows.items():
            results[k].append(fn())
        print(json.dumps({"round": r, **{k: round(v[-1], 1) for k, v in results.items()}}), flush=True)
    med = {k: round(statistics.median(v), 1) for k, v in results.items()}
    print(json.dumps({"median_ms_per_step": med, "batch": B, "device": jax.devices()[0].device_kind,
                      "backend": jax.default_backend()}))  # fmt: skip


if __name__ == "__main__":
    main()

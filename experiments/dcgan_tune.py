"""DCGAN settings chosen without the test digits: short runs of `jaxgen train gan --set arch=conv`, each
scored by the no-smoothing judge (runs/judge-mlp-ls0) on 2,500 samples against the embedded *training*
images (the 5,000 real test digits are kept for the report, experiments/gan_mnist.py).

    python experiments/dcgan_tune.py --steps 1500 --variant base: --variant lr1e-3:lr=1e-3 ...
                                     [--data embedded] [--judge runs/judge-mlp-ls0] [--out runs/dcgan-tune]

A variant is NAME:KEY=VALUE[;KEY=VALUE...]. Each run is sampled from G's own weights in eval mode (running
BatchNorm statistics) and in training mode (batch statistics), so a gap between them points at the
statistics rather than the weights, and, when the variant keeps one (`ema=0.999`), from the EMA of G.
Prints one JSON line per (run, sampler).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxgen import config, data, runs, runtime, tasks, train
from jaxgen.judge import Judge

REPO = Path(__file__).resolve().parents[1]


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition(":")
    sets = dict(kv.split("=", 1) for kv in rest.split(";") if kv)
    return name, sets


def samplers(task, params, key, n=2500):
    z = jax.random.normal(key, (n, task.cfg.latent_dim))
    out = {"ema": task.sample(params, key, n)} if task.cfg.ema > 0 else {}  # else task.sample is g_eval
    g = params["g"]
    out["g_eval"] = np.asarray(task.g_model.apply(g, z), np.float32)
    if "batch_stats" in g:
        rows = []
        for i in range(0, n, task.cfg.batch_size):
            x, _ = task.g_model.apply(g, z[i : i + task.cfg.batch_size], True, mutable=["batch_stats"])
            rows.append(np.asarray(x, np.float32))
        out["g_train"] = np.concatenate(rows)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", action="append", required=True)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="embedded")
    p.add_argument("--judge", default=str(REPO / "runs" / "judge-mlp-ls0"))
    p.add_argument("--out", default=str(REPO / "runs" / "dcgan-tune"))
    args = p.parse_args()
    judge = Judge(args.judge)
    for text in args.variant:
        name, sets = parse_variant(text)
        run_dir = Path(args.out) / f"{name}-s{args.steps}-seed{args.seed}"
        sets = {"arch": "conv", "steps": str(args.steps), "seed": str(args.seed), **sets}
        cls = tasks.config_class("gan")
        cfg = tasks.make_config("gan", config.parse_sets(cls, [f"{k}={v}" for k, v in sets.items()]))
        t0 = time.time()
        summary = train.train(cfg, run_dir, args.data, progress=False, make_plots=False)
        task, state, step, _, ds, *_ = runs.restore_for_eval(run_dir)
        real = np.asarray(data.split(ds, "train")["image"][:5000], np.float32) / 255.0
        for sampler, x in samplers(task, state.params, runtime.eval_key(args.seed)).items():
            rep = {k: v for k, v in judge.report(x, real).items() if k != "digit_fraction"}
            row = {
                "variant": name,
                "sets": sets,
                "steps": step,
                "sampler": sampler,
                "wall_s": round(summary["wall_s"], 1),
                "total_s": round(time.time() - t0, 1),
                **rep,
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

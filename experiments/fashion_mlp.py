"""The MLP on Fashion-MNIST (60,000 + 10,000): steps chosen on a validation split, then 3 seeds on test.

    python experiments/fashion_mlp.py choose [--epochs 15 30 45] [--out runs/exp-fashion-mlp]
    python experiments/fashion_mlp.py test [--seeds 0 1 2] [--out runs/exp-fashion-mlp]
    ... [--task ae] [--set arch=conv ...]   (the autoencoder: chosen by validation recon BCE, lower wins)

`choose` trains the default MLP (`--data fashion`, augmentation for clothes) with `--set val=5000` for each
number of epochs and prints the validation accuracy (the test split is not looked at); the best sets
MLPConfig.EPOCHS. `test` trains the defaults on all 60,000 training images per seed and prints the test
accuracy. One JSON line per run, then a summary line; the Fashion-MNIST results page quotes them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from jaxgen import config, tasks, train

REPO = Path(__file__).resolve().parents[1]


METRIC = {"mlp": ("accuracy", max), "ae": ("recon_bce", min)}  # what `choose` compares, and which wins


def run(task: str, overrides: dict, run_dir: Path) -> dict:
    summary = train.train(
        tasks.make_config(task, overrides), run_dir, "fashion", progress=False, make_plots=False
    )
    m = METRIC[task][0]
    keep = ("step", "wall_s", "compile_s", "samples_per_s", f"val_{m}", f"test_{m}", "device")
    return {**overrides, **{k: summary.get(k) for k in keep}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["choose", "test"])
    p.add_argument("--task", default="mlp", choices=list(METRIC))
    p.add_argument("--epochs", type=float, nargs="+", default=[15, 30, 45])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default=str(REPO / "runs" / "exp-fashion-mlp"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="also override a key")
    args = p.parse_args()
    extra = config.parse_sets(tasks.config_class(args.task), args.set)
    metric, best_of = METRIC[args.task]
    tag = "".join(f"-{s.replace('=', '')}" for s in args.set)
    rows = []
    if args.what == "choose":
        for epochs in args.epochs:
            steps = int(np.ceil(epochs * 55_000 / 128))
            row = run(
                args.task,
                {**extra, "val": 5000, "steps": steps, "ckpt_every": steps},
                Path(args.out) / f"val-e{epochs:g}{tag}",
            )
            rows.append({"epochs": epochs, **row})
            print(json.dumps(rows[-1]), flush=True)
        best = best_of(rows, key=lambda r: r[f"val_{metric}"])
        print(json.dumps({"best_epochs": best["epochs"], f"val_{metric}": best[f"val_{metric}"]}))
        return
    for seed in args.seeds:
        rows.append(run(args.task, {**extra, "seed": seed}, Path(args.out) / f"seed{seed}{tag}"))
        print(json.dumps(rows[-1]), flush=True)
    acc = np.array([r[f"test_{metric}"] for r in rows])
    wall = np.array([r["wall_s"] for r in rows])
    print(json.dumps({
        f"test_{metric}_mean": round(float(acc.mean()), 4), f"test_{metric}_std": round(float(acc.std()), 4),
        "wall_s_mean": round(float(wall.mean()), 1), "wall_s_max": round(float(wall.max()), 1),
        "seeds": len(rows), "device": rows[0]["device"],
    }))  # fmt: skip


if __name__ == "__main__":
    main()

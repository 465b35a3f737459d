"""The MLP on Fashion-MNIST (60,000 + 10,000): steps chosen on a validation split, then 3 seeds on test.

    python experiments/fashion_mlp.py choose [--epochs 15 30 45] [--out runs/exp-fashion-mlp]
    python experiments/fashion_mlp.py test [--seeds 0 1 2] [--out runs/exp-fashion-mlp]

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


def run(overrides: dict, run_dir: Path) -> dict:
    summary = train.train(
        tasks.make_config("mlp", overrides), run_dir, "fashion", progress=False, make_plots=False
    )
    keep = ("step", "wall_s", "compile_s", "samples_per_s", "val_accuracy", "test_accuracy", "device")
    return {**overrides, **{k: summary.get(k) for k in keep}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["choose", "test"])
    p.add_argument("--epochs", type=float, nargs="+", default=[15, 30, 45])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default=str(REPO / "runs" / "exp-fashion-mlp"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="also override a key")
    args = p.parse_args()
    extra = config.parse_sets(tasks.config_class("mlp"), args.set)
    tag = "".join(f"-{s.replace('=', '')}" for s in args.set)
    rows = []
    if args.what == "choose":
        for epochs in args.epochs:
            steps = int(np.ceil(epochs * 55_000 / 128))
            row = run(
                {**extra, "val": 5000, "steps": steps, "ckpt_every": steps},
                Path(args.out) / f"val-e{epochs:g}{tag}",
            )
            rows.append({"epochs": epochs, **row})
            print(json.dumps(rows[-1]), flush=True)
        best = max(rows, key=lambda r: r["val_accuracy"])
        print(json.dumps({"best_epochs": best["epochs"], "val_accuracy": best["val_accuracy"]}))
        return
    for seed in args.seeds:
        rows.append(run({**extra, "seed": seed}, Path(args.out) / f"seed{seed}{tag}"))
        print(json.dumps(rows[-1]), flush=True)
    acc = np.array([r["test_accuracy"] for r in rows])
    wall = np.array([r["wall_s"] for r in rows])
    print(json.dumps({
        "test_accuracy_mean": round(float(acc.mean()), 4), "test_accuracy_std": round(float(acc.std()), 4),
        "wall_s_mean": round(float(wall.mean()), 1), "wall_s_max": round(float(wall.max()), 1),
        "seeds": len(rows), "device": rows[0]["device"],
    }))  # fmt: skip


if __name__ == "__main__":
    main()

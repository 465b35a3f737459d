"""Default MLP on the embedded 4,500-image sample, scored on 5,000 real MNIST test digits, over seeds.

    python experiments/mlp_mnist.py [--seeds 0 1 2] [--out runs/exp-mlp] [--set arch=conv ...]

Expected (2-core CPU, jax 0.10.2): about 97.4% +- 0.1% accuracy on the 5,000 real test digits in
../shared/data/mnist-test5k, 15-40 s per seed. Without that folder (a bare clone) it scores on the
embedded 500 held-out images instead (about 98.9%) and says so in every line.
Prints one JSON line per seed and a summary line; the README's MLP figures come from it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from jaxgen import config, data, runs, tasks, train

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = REPO.parent / "shared" / "data" / "mnist-test5k"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default=str(REPO / "runs" / "exp-mlp"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="also override a key")
    args = p.parse_args()
    extra = config.parse_sets(tasks.config_class("mlp"), args.set)
    tag = "".join(f"-{s.replace('=', '')}" for s in args.set)
    held_out = f"idx:{HELD_OUT}" if HELD_OUT.exists() else "embedded"
    if held_out == "embedded":
        print(f"{HELD_OUT} not found: scoring on the embedded 500 held-out images", file=sys.stderr)
    rows = []
    for seed in args.seeds:
        run_dir = Path(args.out) / f"seed{seed}{tag}"
        summary = train.train(tasks.make_config("mlp", {**extra, "seed": seed}), run_dir, progress=False)
        task, state, _, _, ds, *_ = runs.restore_for_eval(run_dir, held_out)
        scores = task.evaluate(state.params, data.split(ds, "test"))
        row = {
            **extra,
            "seed": seed,
            "wall_s": summary["wall_s"],
            "samples_per_s": summary["samples_per_s"],
            "compile_s": summary["compile_s"],
            "held_out": held_out,
            "held_out_accuracy": scores["accuracy"],
            "embedded_test_accuracy": summary["test_accuracy"],
            "device": summary["device"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    acc = np.array([r["held_out_accuracy"] for r in rows])
    wall = np.array([r["wall_s"] for r in rows])
    print(
        json.dumps(
            {
                "held_out_accuracy_mean": round(float(acc.mean()), 4),
                "held_out_accuracy_std": round(float(acc.std()), 4),
                "wall_s_mean": round(float(wall.mean()), 1),
                "wall_s_max": round(float(wall.max()), 1),
                "seeds": len(rows),
                "device": rows[0]["device"],
            }
        )
    )


if __name__ == "__main__":
    main()

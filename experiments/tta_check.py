"""The classifier's test-time augmentation, measured: each run's newest checkpoint scored on its validation
and test splits with one look (`tta=none`) and with the mirror averaged in (`tta=mirror`). Training is not
touched, so the two columns share every weight; the choice of `tta=auto` is made on the `val` column.

    python experiments/tta_check.py RUN_DIR [RUN_DIR ...]

Session 12 (cpu, 2 cores; Fashion-MNIST, `fashion_mlp.py choose --epochs 20 --set arch=conv ...`, trained
on 55,000 with `--set val=5000`), validation accuracy none -> mirror:
  CNN defaults (channels 32,64):            94.06 -> 94.48 %   (test 93.20 -> 93.58 %)
  3 stages (channels 32,64,128):            93.84 -> 94.52 %   (test 92.86 -> 93.39 %)
  3 stages + random erasing (erase=0.5):    93.84 -> 94.26 %   (test 92.69 -> 92.77 %)
  the MLP's defaults (90 epochs):           92.24 -> 92.18 %   (test 91.18 -> 91.16 %): one look stays
One JSON line per run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from jaxgen import data, runs, tasks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="classifier run directories (jaxgen train mlp)")
    args = p.parse_args()
    for run_dir in args.runs:
        r = runs.restore_for_eval(run_dir)
        row: dict = {"run": str(run_dir), "step": r.step}
        for tta in ("none", "mirror"):
            task = tasks.build(dataclasses.replace(r.cfg, tta=tta), r.dataset)
            for split in ("val", "test"):
                if getattr(r.dataset, split) is not None:
                    m = task.evaluate(r.state.params, data.split(r.dataset, split))
                    row[f"{split}_accuracy_{tta}"] = round(m["accuracy"], 4)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

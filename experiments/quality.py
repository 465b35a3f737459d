"""Generators measured side by side under two judges: the tables of docs/quality.md.

    # the two judges of a data set (an MLP and a CNN classifier, no label smoothing): one command per data
    python experiments/quality.py judges --data fashion --out runs/judges/fashion [--steps 4000]
    # every run given, scored by `jaxgen eval RUN --judge MLP --judge CNN` (the same 2,000-2,500 samples per
    # run, the references beside them), as one markdown table; runs named NAME-sSEED are averaged over seeds
    python experiments/quality.py table --judges runs/judges/fashion --runs runs/q31/fashion/gan-*-s* \
        [--data SPEC] [--out docs/quality/fashion.json]
    # 48 samples of each run (seed 0 of each name), the PPCA-16 sampler's and real test images, side by side
    python experiments/quality.py figure --runs RUN... --png docs/quality/fashion-samples.png

A report's references (real vs real, training images, the probabilistic-PCA sampler) depend only on the data,
the judge and n, so the table shows them once, from the first run's report. Printed numbers are the code's.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

# What the judges are: jaxgen's own classifier defaults for the data, without label smoothing (it squeezes
# the features a Fréchet distance reads), --steps steps (4,000: Fashion-MNIST 88.9 % MLP, 92.3 % CNN).
JUDGE_SETS = {
    "mlp": ["--set", "label_smoothing=0"],
    "conv": ["--set", "arch=conv", "--set", "label_smoothing=0"],
}
MEASURES = [("frechet", "FD", 2), ("kid", "KID x100", 3), ("precision", "P", 3), ("recall", "R", 3),
            ("density", "D", 3), ("coverage", "C", 3), ("min_class_share", "min share", 3)]  # fmt: skip
REFERENCES = [("real", "real vs real (floor)"), ("training", "training images (copy of the data)"),
              ("ppca", "PPCA-16 sampler (the line)")]  # fmt: skip


def jaxgen(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "jaxgen", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"jaxgen {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_judges(spec: str, out: Path, steps: int) -> None:
    for arch, sets in JUDGE_SETS.items():
        sets = [*sets, "--set", f"steps={steps}"]
        wd = out / f"judge-{arch}"
        if (wd / "resolved.json").exists():
            print(f"{wd}: already trained", file=sys.stderr)
            continue
        s = jaxgen("train", "mlp", "--data", spec, "--workdir", str(wd), "--no-plots", *sets)
        print(json.dumps({"judge": str(wd), "test_accuracy": s["test_accuracy"], "wall_s": s["wall_s"]}))


def cell(values: list[float], digits: int, scale: float = 1.0) -> str:
    v = np.asarray(values, np.float64) * scale
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def table(reports: dict[str, list[dict]], judges: list[str]) -> str:
    """Markdown: one row per generator (mean ± std over its seeds) and per reference, a column group per
    judge."""
    head = (
        "| generator | seeds | "
        + " | ".join(f"{j}: {name}" for j in judges for _, name, _ in MEASURES)
        + " |"
    )
    lines = [head, "|---|---|" + "---|" * (len(judges) * len(MEASURES))]
    first = next(iter(reports.values()))[0]["quality"]
    for key, label in REFERENCES:
        if key in first[judges[0]]:
            cells = [
                cell([first[j][key][m]], d, 100 if m == "kid" else 1) for j in judges for m, _, d in MEASURES
            ]
            lines.append(f"| *{label}* | – | " + " | ".join(cells) + " |")
    for name, evs in reports.items():
        cells = [
            cell([e["quality"][j]["samples"][m] for e in evs], d, 100 if m == "kid" else 1)
            for j in judges
            for m, _, d in MEASURES
        ]
        lines.append(f"| {name} | {len(evs)} | " + " | ".join(cells) + " |")
    n = first[judges[0]]["n"]
    lines.append("")
    lines.append(f"n = {n} images per set; reference: {n} random test images (another {n}: the floor);"
                 " FD, KID: lower is better; P, R, D, C (k = 5): near the floor's is better.")  # fmt: skip
    return "\n".join(lines)


def figure(run_dirs: list[str], png: Path, n: int = 48) -> None:
    """Columns: real test images, each run's samples (jaxgen sample, the run's fixed key), PPCA-16's."""
    import tempfile

    import matplotlib.pyplot as plt

    from jaxgen import data, metrics, runs
    from jaxgen.plots import common

    panels: list[tuple[str, np.ndarray]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in run_dirs:
            jaxgen("sample", run, "--n", str(n), "--out", f"{tmp}/x.npy")
            panels.append((Path(run).name, np.load(f"{tmp}/x.npy")))
    r = runs.restore_for_eval(run_dirs[0])
    train01 = np.asarray(data.split(r.task.ds, "train")["image"][:10_000], np.float32) / 255.0
    real01 = np.asarray(data.split(r.dataset, "test")["image"][:n], np.float32) / 255.0
    ppca = np.clip(metrics.ppca_sample(train01.reshape(len(train01), -1), 16, n), 0, 1)
    panels = [("real test images", real01), *panels, ("PPCA-16", ppca.reshape(n, *train01.shape[1:]))]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 3.2))
    for ax, (name, x) in zip(axes, panels, strict=True):
        common.show_image(ax, common.mosaic(x, 8, 6))
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    png.parent.mkdir(parents=True, exist_ok=True)
    print(common.save(fig, png))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["judges", "table", "figure"])
    p.add_argument("--png", default=None, help="figure: where it goes")
    p.add_argument("--steps", type=int, default=4000, help="judges: training steps of each")
    p.add_argument("--data", default=None, help="judges: the data to train them on; table: --data for eval")
    p.add_argument("--out", default=None, help="judges: their folder; table: a JSON file for every report")
    p.add_argument("--judges", default=None, help="table: the folder `judges` wrote")
    p.add_argument("--runs", nargs="*", default=[], help="table: generator run directories")
    args = p.parse_args()
    if args.part == "judges":
        if not args.data or not args.out:
            raise SystemExit("judges needs --data SPEC and --out DIR")
        make_judges(args.data, Path(args.out), args.steps)
        return
    if args.part == "figure":
        figure(sorted(args.runs), Path(args.png))
        return
    judge_dirs = [str(Path(args.judges) / f"judge-{arch}") for arch in JUDGE_SETS]
    reports: dict[str, list[dict]] = {}
    done = {}  # the reports --out already holds, by run directory: a run is evaluated once
    if args.out and Path(args.out).exists():
        done = {e["run"]: e for evs in json.loads(Path(args.out).read_text()).values() for e in evs}
    for run in sorted(args.runs):
        flags = [x for j in judge_dirs for x in ("--judge", j)] + ["--nll-k", "0"]
        if args.data:
            flags += ["--data", args.data]
        ev = done.get(run) or {"run": run, **jaxgen("eval", run, *flags)}
        reports.setdefault(re.sub(r"-s\d+$", "", Path(run).name), []).append(ev)
        if args.out:  # after every run: an interrupted table keeps what it measured
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(reports, indent=1) + "\n")
        fds = ", ".join(f"{j} FD {ev['quality'][j]['samples']['frechet']:.2f}" for j in JUDGE_SETS)
        print(f"{run}: {fds}",
              file=sys.stderr)  # fmt: skip
    print(table(reports, list(JUDGE_SETS)))


if __name__ == "__main__":
    main()

"""The colour-image figures of docs/colour.md: the CNN and the MLP classifier, the conv and the MLP VAE, and
DCGAN on the 64x64 RGBA emoji (read at the defaults' 32x32), each with its defaults, every figure printed
by `jaxgen eval`; DCGAN's samples judged beside a probabilistic PCA's, the training images' and the conv
VAE's under a CNN judge trained on the emoji.

    python experiments/colour_emoji.py --part classifier --seeds 0,1,2   # ~5 min a seed (2-core CPU)
    python experiments/colour_emoji.py --part vae --seeds 0               # ~6 min
    python experiments/colour_emoji.py --part dcgan --seeds 0             # ~25 min, needs the two above
    python experiments/colour_emoji.py --part all --data folder:OTHER --out runs/other   # untuned data

Prints one JSON line per run (its eval line plus what was run) and writes them to OUT/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

EMOJI = "folder:../shared/data/emoji-google"
JUDGED = 2000  # samples per generator under the judge (as a GAN's eval)


def jaxgen(*args: str) -> dict:
    """Run the jaxgen CLI; its last stdout line (JSON)."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "jaxgen", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"jaxgen {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    line = json.loads(out.stdout.strip().splitlines()[-1])
    line["_wall_s"] = round(time.perf_counter() - t, 1)
    return line


def train_eval(task: str, run: Path, spec: str, sets: list[str], judge: str | None = None) -> dict:
    args = [f"--set={s}" for s in sets]
    summary = jaxgen("train", task, "--workdir", str(run), "--data", spec, "--no-progress", *args)
    scores = jaxgen("eval", str(run), *(["--judge", judge] if judge else []))
    return {"run": str(run), "sets": sets, "train_wall_s": summary["wall_s"], **scores}


def judged(judge_dir: str, name: str, samples01: np.ndarray, real01: np.ndarray) -> dict:
    from jaxgen.judge import Judge

    report = Judge(judge_dir).report(samples01, real01)
    return {"generator": name, **{k: v for k, v in report.items() if k != "class_names"}}


def dcgan_part(args, out: Path, seed: int) -> list[dict]:
    """DCGAN with its defaults, and the references it is judged beside."""
    from jaxgen import configs, data, metrics, runs, runtime

    judge_dir = str(out / f"mlp-conv-s{0}")
    if not (Path(judge_dir) / "resolved.json").exists():
        raise SystemExit(f"{judge_dir} missing: run --part classifier first (the judge)")
    rows = [train_eval("gan", out / f"gan-conv-s{seed}", args.data, ["arch=conv", f"seed={seed}"], judge_dir)]
    gan_dir = out / f"gan-conv-s{seed}"
    task_name, spec, cfg = runs.load_run(gan_dir)
    ds = configs.data_for(cfg, spec)
    train01 = np.asarray(data.split(ds, "train")["image"], np.float32) / 255.0
    real01 = np.asarray(ds.test["image"], np.float32) / 255.0
    rng = np.random.default_rng(seed)
    flat = train01.reshape(len(train01), -1)
    for k in sorted({cfg.latent_dim, args.ppca_k}):  # G's own latent size, and the VAE's
        ppca = np.clip(metrics.ppca_sample(flat, k, JUDGED, seed), 0, 1).reshape(-1, *train01.shape[1:])
        rows.append(judged(judge_dir, f"ppca-{k}", ppca.astype(np.float32), real01))
    pick = rng.choice(len(train01), min(JUDGED, len(train01)), replace=False)
    rows.append(judged(judge_dir, "training images", train01[pick], real01))
    vae_dir = out / f"ae-conv-vae-s{0}"
    if (vae_dir / "resolved.json").exists():
        r = runs.restore_for_eval(vae_dir)
        vae = r.task.sample(r.state.params, runtime.eval_key(seed), JUDGED)
        rows.append(judged(judge_dir, "conv VAE", np.asarray(vae, np.float32), real01))
    return rows


def figure(out: Path, png: Path, seed: int = 0) -> None:
    """Four rows of 16: training emoji, PPCA-16 samples, conv VAE samples, DCGAN samples (what the
    Fréchet distances of docs/colour.md measure), into PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxgen import configs, data, metrics, runs, runtime
    from jaxgen.plots.common import mosaic, show_image

    gan = runs.restore_for_eval(out / f"gan-conv-s{seed}")
    ds = configs.data_for(gan.cfg, gan.spec)
    train01 = np.asarray(data.split(ds, "train")["image"], np.float32) / 255.0
    rng = np.random.default_rng(seed)
    ppca = metrics.ppca_sample(train01.reshape(len(train01), -1), gan.cfg.latent_dim, 16, seed)
    vae = runs.restore_for_eval(out / "ae-conv-vae-s0")
    rows = {
        "training emoji": train01[rng.choice(len(train01), 16, replace=False)],
        f"PPCA-{gan.cfg.latent_dim} samples": np.clip(ppca, 0, 1).reshape(-1, *train01.shape[1:]),
        "conv VAE samples": vae.task.sample(vae.state.params, runtime.eval_key(seed), 16),
        "DCGAN samples": gan.task.sample(gan.state.params, runtime.eval_key(seed), 16),
    }
    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 1.15 * len(rows)))
    for ax, (name, imgs) in zip(axes, rows.items(), strict=True):
        show_image(ax, mosaic(imgs, 1, 16))
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    fig.suptitle(f"{gan.spec} at {gan.cfg.image_size}x{gan.cfg.image_size}, {runtime.device_name()}")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("classifier", "vae", "dcgan", "figure", "all"), default="all")
    p.add_argument("--png", default="docs/colour/generators.png", help="--part figure: where it goes")
    p.add_argument("--data", default=EMOJI)
    p.add_argument("--seeds", default="0")
    p.add_argument("--out", default="runs/colour")
    p.add_argument("--ppca-k", type=int, default=32, help="PPCA components (the conv VAE's latent size)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.part == "figure":
        return figure(out, Path(args.png), seeds[0])
    rows = []
    for seed in seeds:
        if args.part in ("classifier", "all"):
            for arch in ("conv", "mlp"):
                run = out / f"mlp-{arch}-s{seed}"
                rows.append(train_eval("mlp", run, args.data, [f"arch={arch}", f"seed={seed}"]))
                print(json.dumps(rows[-1]), flush=True)
        if args.part in ("vae", "all"):
            for arch in ("conv", "mlp"):
                run = out / f"ae-{arch}-vae-s{seed}"
                rows.append(
                    train_eval("ae", run, args.data, [f"arch={arch}", "variational=true", f"seed={seed}"])
                )
                print(json.dumps(rows[-1]), flush=True)
        if args.part in ("dcgan", "all"):
            for row in dcgan_part(args, out, seed):
                rows.append(row)
                print(json.dumps(row), flush=True)
    with open(out / "results.jsonl", "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

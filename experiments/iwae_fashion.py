"""The IWAE paper's headline in direction on dynamically binarised Fashion-MNIST: the same network (the
`preset=iwae` 784-200-200-50 tanh VAE) trained on the ELBO (k = 1) and on the importance-weighted bound
(k = K), each scored by the importance-sampled NLL with k = 5000 on fixed-binarised test images; and the
MLP VAE against the conv VAE (jaxgen's defaults, binarised, no augmentation) on the same likelihood.

    python experiments/iwae_fashion.py train --seeds 0 1 2 [--k 5] [--epochs 30] [--batch 100]
    python experiments/iwae_fashion.py train --what vae --seeds 0 --epochs 5  # MLP and conv VAE, binarised
    python experiments/iwae_fashion.py eval [--nll-k 5000] [--nll-n 1000]
    python experiments/iwae_fashion.py table              # the markdown table of docs/likelihood.md

Runs live in runs/iwae/<name>-s<seed>/; eval writes eval.json beside each, table reads them. Each run is
`jaxgen train ae --data fashion ...` and `jaxgen eval DIR --nll-k ...`: nothing here the CLI cannot do.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path("runs/iwae")
BASE = ["--set", "preset=iwae"]


def runs_to_train(
    what: str, k: int, epochs: int, batch: int, seeds: list[int]
) -> list[tuple[str, list[str]]]:
    steps = epochs * 60_000 // batch
    out = []
    for seed in seeds:
        common = ["--set", f"seed={seed}", "--set", f"steps={steps}", "--set", f"batch_size={batch}"]
        if what == "iwae":
            out.append((f"vae-k1-s{seed}", [*BASE, "--set", "iw_k=1", *common]))
            out.append((f"iwae-k{k}-s{seed}", [*BASE, "--set", f"iw_k={k}", *common]))
        else:  # jaxgen's own VAEs (batch 128, cosine), `epochs` passes over the same binarised images
            own = ["--set", "variational=true", "--set", "binarize=dynamic", "--set", "augment=false",
                   "--set", f"seed={seed}", "--set", f"steps={epochs * 60_000 // 128}"]  # fmt: skip
            out.append((f"vae-mlp-bin-s{seed}", own))
            out.append((f"vae-conv-bin-s{seed}", [*own, "--set", "arch=conv"]))
    return out


def jaxgen(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "jaxgen", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"jaxgen {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["train", "eval", "table"])
    p.add_argument("--what", choices=["iwae", "vae"], default="iwae")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--k", type=int, default=5, help="IWAE's importance samples in training")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--nll-k", type=int, default=5000)
    p.add_argument("--nll-n", type=int, default=1000, help="first N test images (0: all 10,000)")
    args = p.parse_args()
    if args.part == "train":
        for name, sets in runs_to_train(args.what, args.k, args.epochs, args.batch, args.seeds):
            s = jaxgen("train", "ae", "--data", "fashion", "--workdir", str(ROOT / name), "--no-plots", *sets)
            print(json.dumps({"run": name, "wall_s": s["wall_s"], "samples_per_s": s["samples_per_s"]}))
    elif args.part == "eval":
        for run in sorted(ROOT.glob("*-s*")):
            if (run / "eval.json").exists():
                continue
            extra = ["--nll-n", str(args.nll_n)] if args.nll_n else []
            out = jaxgen("eval", str(run), "--nll-k", str(args.nll_k), *extra)
            (run / "eval.json").write_text(json.dumps(out))
            print(json.dumps({"run": run.name, "nll_is": out["nll_is"], "elbo_mc": out["elbo_mc"]}))
    else:
        table()


def table() -> None:
    rows: dict[str, list[dict]] = {}
    for f in sorted(ROOT.glob("*-s*/eval.json")):
        rows.setdefault(f.parent.name.rsplit("-s", 1)[0], []).append(json.loads(f.read_text()))
    print("| model | seeds | NLL, k = 5000 (nats) | bits/dim | ELBO of the same draws | per seed |")
    print("|---|---|---|---|---|---|")
    for name, evals in rows.items():
        nll = [e["nll_is"] for e in evals]
        mean = sum(nll) / len(nll)
        elbo = sum(-e["elbo_mc"] for e in evals) / len(evals)
        bits = sum(e["nll_is_bits_per_dim"] for e in evals) / len(evals)
        print(
            f"| {name} | {len(nll)} | {mean:.2f} | {bits:.4f} | {elbo:.2f} |"
            f" {', '.join(f'{v:.2f}' for v in nll)} |"
        )


if __name__ == "__main__":
    main()

"""Several seeds in one run against one run per seed, in one session: wall time and each seed's parameters.

    python benchmarks/seeds.py --out DIR [--seeds 0,1,2] [--case mlp|gan ...] [--set KEY=VALUE ...]

For each case (default: the default MLP on the embedded sample, and the GAN on toy:ring8), runs as a user
would, one process each: `jaxgen train` once per seed, then `--seeds` in each mode (vmap, unroll), all
from scratch. Writes DIR/seeds.json and DIR/seeds.md: the wall times (process start to exit) and, per
seed, whether the group's final params_sha256 equals the single run's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "mlp": ["mlp"],
    "gan": ["gan", "--data", "toy:ring8"],
}


def jaxgen(args: list[str]) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "jaxgen.cli", "train", *args, "--no-progress", "--no-plots"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"jaxgen train {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return wall, json.loads(out.stdout.strip().splitlines()[-1])


def run_case(name: str, seeds: list[int], sets: list[str], work: Path) -> dict:
    base = [*CASES[name], *sum((["--set", s] for s in sets), [])]
    singles, shas = [], {}
    for s in seeds:
        wall, summary = jaxgen([*base, "--set", f"seed={s}", "--workdir", str(work / f"{name}-single-{s}")])
        singles.append(wall)
        shas[s] = summary["params_sha256"]
    res = {
        "case": name,
        "command": " ".join(["jaxgen train", *base]),
        "seeds": seeds,
        "single_wall_s": [round(w, 1) for w in singles],
        "single_total_s": round(sum(singles), 1),
    }
    for mode in ("vmap", "unroll"):
        flags = ["--seeds", ",".join(map(str, seeds)), "--seeds-mode", mode]
        wall, summary = jaxgen([*base, *flags, "--workdir", str(work / f"{name}-{mode}")])
        res[mode] = {
            "wall_s": round(wall, 1),
            "speedup": round(sum(singles) / wall, 2),
            "compile_s": summary["compile_s"],
            "bit_equal": [r["params_sha256"] == shas[r["seed"]] for r in summary["runs"]],
            "headline": summary["headline"],
            "metrics": summary["metrics"],
        }
        res["device"] = summary["device"]
    return res


def markdown(results: list[dict]) -> str:
    lines = [
        "# Several seeds in one run against one run per seed",
        "",
        "`python benchmarks/seeds.py --out DIR`: each command as a user runs it, one process each, from"
        " scratch, one after another in one session; wall time from process start to exit. *bit-equal*: the"
        " group's final `params_sha256` of a seed equals its single run's (seeds.json: each mode's"
        " headline mean and std).",
        "",
        "| case | seeds | one run per seed (total) | `--seeds` vmap | `--seeds` unroll | device |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = []
        for mode in ("vmap", "unroll"):
            m = r[mode]
            equal = m["bit_equal"]
            same = "bit-equal" if all(equal) else f"{sum(equal)}/{len(equal)} bit-equal"
            cells.append(f"{m['wall_s']} s ({m['speedup']}x; {same})")
        lines.append(
            f"| `{r['command']}` | {','.join(map(str, r['seeds']))} | {r['single_total_s']} s"
            f" ({' + '.join(map(str, r['single_wall_s']))}) | {cells[0]} | {cells[1]} | {r['device']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--case", action="append", choices=list(CASES), default=None)
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run (e.g. steps=2000)")
    args = p.parse_args()
    out = Path(args.out)
    work = out / "runs"
    shutil.rmtree(work, ignore_errors=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = [run_case(c, seeds, args.set, work) for c in args.case or list(CASES)]
    shutil.rmtree(work, ignore_errors=True)
    (out / "seeds.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "seeds.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()

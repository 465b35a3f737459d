"""A long run that is long: 50 epochs over Fashion-MNIST's 60,000 images, SIGKILLed twice at random
points and resumed, against the same command run straight; the two must end bit-identical.

    python experiments/long_run.py [--epochs 50] [--hidden 256,256] [--out runs/exp-long] [--seed 0]

Each segment is the real `python -m jaxgen train mlp --data fashion ...` command with stderr in a log
file (plain lines, no progress-bar redraws: DIR/train.log). Prints one JSON line per segment and a last
line with both params_sha256 and `identical`.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def command(run_dir: Path, steps: int, hidden: str) -> list[str]:
    sets = [f"steps={steps}", f"hidden={hidden}", "ckpt_every=1000", "keep=2"]
    return [sys.executable, "-m", "jaxgen", "train", "mlp", "--data", "fashion", "--workdir", str(run_dir),
            "--no-plots", *[a for s in sets for a in ("--set", s)]]  # fmt: skip


def segment(run_dir: Path, steps: int, hidden: str, kill_after: float | None) -> dict:
    """Run the command (in its own log); SIGKILL it after `kill_after` seconds when given."""
    with open(run_dir.parent / f"{run_dir.name}.log", "a") as log:
        proc = subprocess.Popen(
            command(run_dir, steps, hidden), stdout=subprocess.PIPE, stderr=log, text=True
        )
        t0 = time.perf_counter()
        if kill_after is not None:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
    row = {"run": run_dir.name, "killed_after_s": kill_after, "returncode": proc.returncode,
           "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    if proc.returncode == 0:
        summary = json.loads(out.strip().splitlines()[-1])
        keep = ("step", "params_sha256", "resumed_from", "test_accuracy", "samples_per_s")
        row.update({k: summary[k] for k in keep if k in summary})
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--hidden", default="256,256")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    p.add_argument("--out", default=str(REPO / "runs" / "exp-long"))
    args = p.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    steps = -(-args.epochs * 60_000 // 128)
    straight = segment(out / "straight", steps, args.hidden, None)
    # Two kills at random points, each in the middle of training (not while loading or compiling): the
    # first after 20-50 % of the straight run's wall time, the second 10-40 % of it into the resumed run.
    rng = random.Random(args.seed)
    wall = straight["wall_s"]
    kills = [rng.uniform(0.2, 0.5) * wall, rng.uniform(0.1, 0.4) * wall]
    cut = out / "killed"
    segment(cut, steps, args.hidden, kills[0])
    segment(cut, steps, args.hidden, kills[1])
    last = segment(cut, steps, args.hidden, None)
    print(json.dumps({"epochs": args.epochs, "steps": steps, "kills_after_s": [round(k, 1) for k in kills],
                      "straight": straight["params_sha256"], "killed_twice": last.get("params_sha256"),
                      "identical": straight["params_sha256"] == last.get("params_sha256")}))  # fmt: skip


if __name__ == "__main__":
    main()

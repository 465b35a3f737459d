"""What every benchmark shares: the `--out` directory, the report header and the markdown line naming the
machine, strict JSON, the matrix-product ceiling and the one-line summary the CLI prints."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import jax

from jaxgen import runtime, sinks
from jaxgen.errors import UserError

CEILING_SIZES = (1024, 2048)  # square matmuls timed for the ceiling (4x larger on accelerators)


def log(msg: str) -> None:
    """A progress line on stderr (stdout is kept for the CLI's JSON line)."""
    print(msg, file=sys.stderr, flush=True)


def out_dir(path: str | Path) -> Path:
    """`--out` as a directory, created with its parents; a one-line UserError naming the fix otherwise."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {path} is a file: name a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"--out {path} lies under a file: name a directory") from None
    return out


def header(bench: str, mode: str, out: Path) -> dict[str, Any]:
    """What every benchmark report starts with: which benchmark, where, and on which machine."""
    return {
        "bench": bench,
        "mode": mode,
        "out": str(Path(out).absolute()),
        "device": runtime.device_name(),
        "backend": jax.default_backend(),
        "num_devices": jax.device_count(),
        "env": runtime.env_info(),
    }


def machine(report: dict[str, Any]) -> str:
    """The report's machine for its markdown: device in bold, then backend, devices, jax, matmul precision."""
    env = report["env"]
    return (
        f"**{report['device']}** (backend `{report['backend']}`, {report['num_devices']} device(s), "
        f"jax {env['jax']}, matmul precision {env.get('matmul_precision', 'default')})"
    )


def summary_line(report: dict[str, Any]) -> dict[str, Any]:
    """The CLI's last stdout line."""
    keys = ("bench", "mode", "out", "device", "backend", "wall_s")
    return {k: report[k] for k in keys}


def write_json(path: Path, report: Any) -> Path:
    """`report` as strict JSON (a NaN or infinity is written as null, never as a bare NaN)."""
    path = Path(path)
    path.write_text(sinks.dumps(report, indent=1) + "\n")
    return path


def write_report(out: Path, stem: str, report: dict[str, Any], markdown: str) -> None:
    """DIR/stem.json (strict) and DIR/stem.md."""
    write_json(Path(out) / f"{stem}.json", report)
    (Path(out) / f"{stem}.md").write_text(markdown)


def gemm_ceiling(sizes: tuple[int, ...] = CEILING_SIZES, reps: int = 5) -> dict[str, float]:
    """The best float32 matrix-product rate of this device through XLA (square n x n matmuls, each n of
    `sizes` on the CPU, 4x larger on accelerators), under the current matmul precision."""
    scale = 1 if jax.default_backend() == "cpu" else 4
    best, best_n = 0.0, 0
    for n in (scale * n for n in sizes):
        a = jax.random.normal(jax.random.key(1), (n, n))
        b = jax.random.normal(jax.random.key(2), (n, n))
        f = jax.jit(lambda a, b: a @ b)
        f(a, b).block_until_ready()
        for _ in range(3):  # best of three: a ceiling, so noise from other jobs only lowers it
            t0 = time.perf_counter()
            for _ in range(reps):
                c = f(a, b)
            c.block_until_ready()
            rate = 2 * n**3 * reps / (time.perf_counter() - t0)
            if rate > best:
                best, best_n = rate, n
    return {"flops_per_s": best, "n": best_n}

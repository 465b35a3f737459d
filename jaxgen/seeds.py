"""Several seeds of one config trained together: one compiled chunk for all of them, one ordinary run
directory per seed (DIR/seed-N: eval, sample, plot and resume read each as any run), DIR/seeds.json with
the mean and spread of every final metric.

A run is a pure function of (config, seed), so the seeds share the driver's chunk (`chunks.run_chunk`) as
one program, in one of two forms (`MODES`):
- `vmap`: `jax.vmap` over (state, data key, loop key, epoch shuffles). One batched program; its matrix
  products become batched ones, which XLA's CPU backend sums in another order than the single run's: each
  seed equals its single-seed run to float rounding (about 1e-8 after one step), not to the bit.
- `unroll`: the seeds' chunks side by side in one program, each the single run's own computation: each
  seed's parameters equal its single-seed run's bit for bit (`params_sha256`).

Each seed's checkpoints, logs and evaluations are its own `train.Loop`'s; the group keeps one step. A kill
during the seeds' saves of one checkpoint leaves some seeds one checkpoint ahead: the rerun sets their newer
checkpoints aside (never deletes them) and trains every seed on from the step they all hold, which
reproduces what was set aside.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgen import chunks, runs, train
from jaxgen import config as config_lib
from jaxgen.checkpoint import SET_ASIDE, step_dirs
from jaxgen.errors import Interrupted, UserError
from jaxgen.runtime import env_info, precision_scope
from jaxgen.sinks import dumps

MODES = ("vmap", "unroll")
SUMMARY = "seeds.json"
MAX_SEEDS = 64


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-4' (or a mix: '0-2,7') as a list of distinct non-negative seeds, in order."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        try:
            values = list(range(int(lo), int(hi) + 1)) if dash else [int(part)]
        except ValueError:
            raise UserError(f"--seeds takes integers like 0,1,2 or 0-4, got {text!r}") from None
        if dash and int(hi) < int(lo):
            raise UserError(f"--seeds range {part} runs backwards: write {hi}-{lo}")
        seeds += values
    if any(s < 0 or s >= 2**31 for s in seeds):
        raise UserError(f"--seeds must be in [0, 2**31), got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r} names a seed twice: each seed once")
    if len(seeds) > MAX_SEEDS:  # one seed is allowed: the group's path for one (benchmarks compare them)
        raise UserError(f"--seeds takes at most {MAX_SEEDS} seeds, got {len(seeds)}: split them over runs")
    return seeds


def _member_config(cfg: config_lib.TrainConfig, seed: int) -> config_lib.TrainConfig:
    """`cfg` as the user asked for it, with this seed set (so config.json names it)."""
    asked = {k: getattr(cfg, k) for k in config_lib.explicit(cfg)}
    return config_lib.make(type(cfg), {**asked, "seed": seed})


def _check_group(cfg: config_lib.TrainConfig, root: Path, seeds: list[int], mode: str) -> None:
    """One-line errors before anything is loaded: a clash with the seed list or mode DIR was started with,
    a key the group cannot honour, several processes."""
    if mode not in MODES:
        raise UserError(f"--seeds-mode must be one of {', '.join(MODES)}, got {mode!r}")
    if "seed" in config_lib.explicit(cfg):
        raise UserError("--set seed and --seeds both name seeds: drop --set seed")
    if getattr(cfg, "patience", 0):
        raise UserError(
            "early stopping (patience) ends each seed at its own step; --seeds trains them in step:"
            " drop --set patience, or train the seeds one by one"
        )
    if jax.process_count() > 1:
        raise UserError("--seeds trains on one process: drop --distributed, or train the seeds one by one")
    if (root / "resolved.json").exists() or (root / "config.json").exists():
        raise UserError(f"{root} holds a single run: use another --workdir for --seeds")
    record = _read_summary(root)
    if record:
        old = record.get("seeds")
        if old != seeds:
            shown = ",".join(map(str, old or []))
            raise UserError(
                f"{root} trains seeds {shown}: rerun with --seeds {shown}, or use another --workdir"
            )
        if record.get("mode", "vmap") != mode:
            raise UserError(
                f"{root} was trained with --seeds-mode {record.get('mode')}: rerun with it, or use another"
                " --workdir"
            )


def _read_summary(root: Path) -> dict[str, Any]:
    path = root / SUMMARY
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        raise UserError(f"{path} is unreadable: restore it, or move {root} away to start over") from None
    return raw if isinstance(raw, dict) else {}


def _write_summary(root: Path, body: dict[str, Any]) -> None:
    tmp = root / f"{SUMMARY}.tmp"
    tmp.write_text(dumps(body, indent=2) + "\n")
    tmp.replace(root / SUMMARY)


def train_seeds(
    cfg: config_lib.TrainConfig,
    workdir: str | Path,
    spec: str,
    seeds: list[int],
    *,
    mode: str = "vmap",
    progress: bool = True,
    make_plots: bool = True,
) -> dict[str, Any]:
    """Train (or resume) seeds `seeds` of `cfg` together under `workdir` (DIR/seed-N each); returns the
    group summary, also written to DIR/seeds.json."""
    t_start = time.perf_counter()
    root = Path(workdir).absolute()
    if not str(workdir).strip():
        raise UserError("--workdir is empty: name a folder for the seeds (e.g. --workdir runs/mlp-seeds)")
    _check_group(cfg, root, seeds, mode)
    plans = [runs.plan(_member_config(cfg, s), root / f"seed-{s}", spec) for s in seeds]
    locks = [runs.WorkdirLock(p.run_dir) for p in plans]
    taken: list[runs.WorkdirLock] = []
    try:
        root.mkdir(parents=True, exist_ok=True)
        for p, lock in zip(plans, locks, strict=True):
            p.run_dir.mkdir(parents=True, exist_ok=True)
            lock.acquire()
            taken.append(lock)
        if not _read_summary(root):
            _write_summary(root, {"task": cfg.TASK, "data": spec, "seeds": seeds, "mode": mode})
        group = {"seeds": seeds, "mode": mode, "root": str(root)}
        for p in plans:
            runs.write_configs(p)
            runs.record_start(p.run_dir, {**env_info(p.data["train"]), "seed_group": group})
        with precision_scope(plans[0].cfg.precision):
            summary = _train_group(plans, mode, progress=progress, make_plots=make_plots, t_start=t_start)
        _write_summary(root, summary)
        return summary
    except OSError as err:
        raise runs.os_error(err, root) from None
    finally:
        for lock in taken:
            lock.release()


def _train_group(plans: list[runs.Plan], mode: str, *, progress: bool, make_plots: bool, t_start: float):
    loops = [train.Loop(p.task, p.cfg, p.run_dir, p.data, mesh=p.mesh, per_step=p.per_step) for p in plans]
    group = Group(loops, mode)
    try:
        group.restore()
    except BaseException:
        for loop in loops:
            loop.ckpt.close()
        raise

    with train.stop_on_signals(group):  # one process: a signal stops every seed at one chunk boundary
        try:
            run_s = group.run(progress)
        finally:
            for loop in loops:
                loop.close()
    if group.stop_signal is not None:
        raise Interrupted(
            f"interrupted at step {group.step} (every seed's checkpoint saved): run the same command to"
            " resume"
        )
    members = []
    for loop in loops:
        loop.steps_timed, loop.compile_s = group.steps_timed, group.compile_s
        summary = loop.summary(t_start, run_s)
        if make_plots:
            summary["plots"] = loop.plots()
        members.append(summary)
    return group_summary(plans, members, mode, t_start, group)


def group_summary(plans, members: list[dict], mode: str, t_start: float, group: Group) -> dict[str, Any]:
    """The seeds' summaries and, for every numeric metric they all report, mean, std (n - 1) and range."""
    shared = set.intersection(*(set(m) for m in members))
    skip = {"step", "num_devices", "wall_s", "compile_s", "resumed_from", "seed"}
    stats = {}
    for key in sorted(shared - skip):
        values = [m[key] for m in members]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            finite = [float(v) for v in values if v is not None and np.isfinite(v)]
            if len(finite) == len(values):
                stats[key] = {
                    "mean": round(statistics.fmean(finite), 6),
                    "std": round(statistics.stdev(finite), 6) if len(finite) > 1 else 0.0,
                    "min": round(min(finite), 6),
                    "max": round(max(finite), 6),
                }
    first = members[0]
    return {
        "task": first["task"],
        "data": plans[0].spec,
        "seeds": [p.cfg.seed for p in plans],
        "mode": mode,
        "step": group.step,
        "device": first["device"],
        "wall_s": round(time.perf_counter() - t_start, 3),
        "compile_s": round(group.compile_s, 3),
        "samples_per_s": first["samples_per_s"] and round(first["samples_per_s"] * len(members), 1),
        "resumed_from": first["resumed_from"],
        "headline": {k: stats[k] for k in stats if k in headline_keys(plans[0].task)},
        "metrics": stats,
        "runs": [
            {"seed": p.cfg.seed, **{k: v for k, v in m.items() if k not in _GROUP_WIDE}}
            for p, m in zip(plans, members, strict=True)
        ],
    }


_GROUP_WIDE = ("task", "device", "num_devices", "wall_s", "compile_s", "samples_per_s", "resumed_from")


def headline_keys(task) -> set[str]:
    """The summary keys of the task's headline: its training metrics, its evaluation's (`eval_headline`)."""
    evals = getattr(task, "eval_headline", task.headline)
    return {f"train_{k}" for k in task.headline} | {f"{s}_{k}" for s in ("val", "test") for k in evals}


def _set_aside_after(loop: train.Loop, step: int) -> None:
    """Move a seed's checkpoints newer than `step` into checkpoints-set-aside/ (the driver's folder for
    checkpoints it will not resume from; nothing is deleted)."""
    aside = loop.run_dir / SET_ASIDE
    for newer in [s for s in step_dirs(loop.ckpt.directory) if s > step]:
        target = aside / str(newer)
        if target.exists():
            target = target.with_name(f"{newer}-{time.strftime('%Y%m%dT%H%M%S')}")
        aside.mkdir(exist_ok=True)
        (loop.ckpt.directory / str(newer)).rename(target)
        print(
            f"warning: {loop.run_dir.name}: checkpoint {newer} is ahead of the other seeds (a kill between"
            f" their saves): set aside as {target}; every seed goes on from step {step}",
            file=sys.stderr,
        )
    loop.ckpt.manager.reload()


def _stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _member(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda x: x[i], tree)


@dataclasses.dataclass
class _Pending:
    step: int
    length: int
    metrics: Any
    finite: Any


class Group:
    """The seeds' Loops driven in step: one stacked state, one compiled chunk per length."""

    def __init__(self, loops: list[train.Loop], mode: str):
        self.loops, self.mode = loops, mode
        first = loops[0]
        self.task, self.cfg, self.mesh, self.per_step = first.task, first.cfg, first.mesh, first.per_step
        self.train_dev = first.train_dev  # the same training split for every seed (one copy is read)
        self.data_keys = jnp.stack([loop.data_key for loop in loops])
        self.loop_keys = jnp.stack([loop.loop_key for loop in loops])
        self.compiled: dict[int, Any] = {}
        self.compile_s = self.paused_s = 0.0
        self.step = self.steps_timed = 0
        self.stop_signal: int | None = None
        self.state: Any = None  # every seed's state stacked on a leading axis, while `run` trains

    def restore(self) -> None:
        """Every seed from its newest good checkpoint; seeds ahead of the others (a kill between the seeds'
        saves of one checkpoint) set their newer checkpoints aside and go back to the common step."""
        for loop in self.loops:
            loop.restore()
        common = min(loop.start_step for loop in self.loops)
        for loop in self.loops:
            if loop.start_step > common:
                _set_aside_after(loop, common)
                loop.restore()
                if loop.start_step != common:  # nothing at the common step: not one group's checkpoints
                    raise UserError(
                        f"{loop.run_dir} has no checkpoint at step {common}, where the other seeds are: its"
                        f" newer checkpoints are in {loop.run_dir / 'checkpoints-set-aside'}; train it alone"
                        " or use another --workdir"
                    )
        self.step = common

    def chunk_fn(self, length: int, state: Any, shuffles: Any):
        """The compiled group chunk of `length` steps: fn(state, train, data_keys, loop_keys, shuffles)
        -> (state, metrics, finite), each leaf with the seeds as its leading axis."""
        if length in self.compiled:
            return self.compiled[length]
        t0 = time.perf_counter()
        if self.mode == "vmap":
            one = functools.partial(chunks.run_chunk, self.task, self.per_step, length, None)

            def checked(state, arrays, data_keys, loop_keys, shuffles):
                state, metrics = jax.vmap(one, in_axes=(0, None, 0, 0, (0, None)))(
                    state, arrays, data_keys, loop_keys, shuffles
                )
                return state, metrics, jax.vmap(chunks.all_finite)(state)
        else:  # each seed the single run's own computation (its batch constraint included)
            batch = NamedSharding(self.mesh, P("data"))
            one = functools.partial(chunks.run_chunk, self.task, self.per_step, length, batch)

            def checked(state, arrays, data_keys, loop_keys, shuffles):
                outs = [
                    one(_member(state, i), arrays, data_keys[i], loop_keys[i], (shuffles[0][i], shuffles[1]))
                    for i in range(len(self.loops))
                ]
                states = [s for s, _ in outs]
                finite = jnp.stack([chunks.all_finite(s) for s in states])
                return _stack(states), _stack([m for _, m in outs]), finite

        args = (state, self.train_dev, self.data_keys, self.loop_keys, shuffles)
        self.compiled[length] = jax.jit(checked, donate_argnums=0).lower(*args).compile()
        self.compile_s += time.perf_counter() - t0
        return self.compiled[length]

    def shuffles(self, length: int) -> tuple[jax.Array, Any]:
        """Each seed's epoch shuffles of the next chunk (its own data key), stacked."""
        parts = [loop.shuffler.for_chunk(self.step, length) for loop in self.loops]
        return jnp.stack([perms for perms, _ in parts]), parts[0][1]

    def settle(self, chunk: _Pending) -> None:
        """Read the chunk's metrics once; each seed's Loop logs its own (and stops the group on NaN)."""
        metrics, finite = jax.device_get((chunk.metrics, chunk.finite))
        for i, loop in enumerate(self.loops):
            loop.paused_s = self.paused_s  # samples/s of training alone, as a single run logs it
            loop.settle(train._Chunk(chunk.step, chunk.length, _member(metrics, i), bool(finite[i])))

    def dispatch(self, length: int) -> _Pending:
        """Start the next chunk of every seed on the device (asynchronous) and advance the step."""
        shuffles = self.shuffles(length)
        t0 = time.perf_counter()
        fn = self.chunk_fn(length, self.state, shuffles)
        self.paused_s += time.perf_counter() - t0
        self.state, metrics, finite = fn(self.state, self.train_dev, self.data_keys, self.loop_keys, shuffles)
        self.step += length
        self.steps_timed += length
        return _Pending(self.step, length, metrics, finite)

    def _each(self):
        """Each seed's Loop holding its slice of the state at the group's step."""
        for i, loop in enumerate(self.loops):
            loop.state, loop.step = _member(self.state, i), self.step
            yield loop

    def evaluate(self) -> None:
        for loop in self._each():
            loop.evaluate()

    def checkpoint(self, scored: bool = False) -> None:
        """Every seed's checkpoint at this step (each ranks its own for keep_best)."""
        for loop in self._each():
            loop.checkpoint(scored=scored)

    stopped_early = False  # patience is refused for a group (_check_group)

    def should_stop(self) -> bool:
        return self.stop_signal is not None

    def saved(self, step: int) -> bool:
        return all(loop.saved(step) for loop in self.loops)

    def run(self, progress: bool) -> float:
        """Train every seed to cfg.steps or a signal through the driver's own chunk loop (`train.drive`)."""
        for i, loop in enumerate(self.loops):
            loop.open_logs(progress and i == 0)  # one progress line: the first seed's
        self.state = _stack([loop.state for loop in self.loops])
        run_s = train.drive(self)
        list(self._each())  # each Loop ends holding its seed's final state (summary, plots)
        return run_s

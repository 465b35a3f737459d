"""Thin orbax wrapper: save with a checksum over the whole state, restore the newest checkpoint that verifies.

Writers (the trainer) set a bad newest checkpoint aside (renamed into `checkpoints-set-aside/`, never
deleted) so training can pass its step again; readers (eval, sample, plot) only skip it and never modify
anything, so they can run beside a trainer.

Retention is orbax's preservation policy (jaxgen/retention.py): the newest `keep`, every multiple of
`keep_every`, and the best `keep_best` by a validation score (`Best`), which is saved with each checkpoint
(orbax's per-step metrics) so that a rerun after a kill ranks the same checkpoints the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxgen.errors import UserError
from jaxgen.retention import Best, retention

SET_ASIDE = "checkpoints-set-aside"


class LayoutMismatch(UserError):
    """Intact checkpoint files of another model than the one built from the run's record."""


READER_RETRIES = 10


def tree_sha256(tree: Any) -> str:
    """sha256 over every leaf's bytes, in tree-flatten order."""
    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(tree):
        h.update(np.ascontiguousarray(jax.device_get(leaf)).tobytes())
    return h.hexdigest()


def params_sha256(params: Any) -> str:
    """sha256 over every parameter leaf's bytes, in tree-flatten order (the eval/train JSON contract)."""
    return tree_sha256(params)


def state_sha256(state: Any) -> str:
    """sha256 over the whole state: step, parameters and every optimizer state (typed keys as key data)."""
    return tree_sha256(_key_data(state))


def _key_data(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


@contextlib.contextmanager
def _quiet_threads():
    """While orbax writes: its worker threads' failures reach us as one exception, so keep their logs
    and tracebacks (absl ERROR lines, thread excepthooks, unraisable hooks) off the terminal."""
    absl = logging.getLogger("absl")
    level, hook, unraisable = absl.level, threading.excepthook, sys.unraisablehook
    absl.setLevel(logging.CRITICAL)
    threading.excepthook = lambda args: None
    sys.unraisablehook = lambda args: None
    try:
        yield
    finally:
        absl.setLevel(level)
        threading.excepthook, sys.unraisablehook = hook, unraisable


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def step_dirs(directory: Path) -> list[int]:
    """Integer-named folders under checkpoints/ (finished or not, listed by orbax or not), oldest first."""
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())


class Checkpointer:
    """Checkpoints under DIR/checkpoints/<step>/ holding the state and a JSON record of its checksums.

    `best` (a writer's): the score each checkpoint is saved with and ranked by (keep_best)."""

    def __init__(
        self,
        run_dir: Path,
        *,
        keep: int = 3,
        keep_every: int = 0,
        keep_best: int = 0,
        best: Best | None = None,
        writer: bool = True,
    ):
        self.run_dir = Path(run_dir).absolute()
        self.directory = self.run_dir / "checkpoints"
        self.writer = writer
        self.best = best if writer else None
        self.manager = None
        if not writer and not self.directory.is_dir():
            return  # a reader of a run without checkpoints: nothing to open, nothing to create
        options = ocp.CheckpointManagerOptions(
            save_interval_steps=1 if writer else 0,
            preservation_policy=retention(keep, keep_every, keep_best, best) if writer else None,
            # orbax writes the metrics given to save (checkpoints/<step>/metrics) only when it has a best_fn;
            # the policy above, not best_fn, decides what is deleted
            best_fn=self.best.rank if self.best is not None else None,
            # The writer removes what a save killed half-way left behind; a reader must not (the trainer
            # may be writing that very folder right now).
            cleanup_tmp_directories=writer,
            read_only=not writer,
            create=writer,
            # Synchronous: the driver donates the state to the next chunk, so the write must finish first.
            enable_async_checkpointing=False,
        )
        absl = logging.getLogger("absl")
        level = absl.level
        if not writer:  # orbax warns that a read-only manager is read-only: that is the point
            absl.setLevel(logging.ERROR)
        try:
            # A trainer beside a reader deletes old checkpoints while the reader lists them: list again.
            for attempt in range(READER_RETRIES):
                try:
                    self.manager = ocp.CheckpointManager(self.directory, options=options)
                    break
                except FileNotFoundError:
                    if writer or attempt == READER_RETRIES - 1:
                        raise
                    time.sleep(0.05)
        finally:
            absl.setLevel(level)

    def steps(self) -> list[int]:
        """Steps with a finished checkpoint, oldest first."""
        return sorted(self.manager.all_steps()) if self.manager is not None else []

    def save(self, step: int, state: Any, score: float | None = None) -> None:
        """Write `state` (a pytree with a `params` field) as checkpoint `step`; `score`: its validation score
        (best.metric, where it was scored), counted in `best` and saved with it to rank it."""
        meta = {
            "step": int(step),
            "params_sha256": params_sha256(state.params),
            "state_sha256": state_sha256(state),
        }
        metrics = None
        if self.best is not None:
            if score is not None:
                self.best.update(step, score)
                metrics = {self.best.metric: score, "step": int(step)} if math.isfinite(score) else None
            meta["best"] = self.best.record()
        # Refuse before writing when the disk cannot hold it (the state's raw bytes bound the compressed
        # checkpoint): orbax failing half-way fills the terminal with its worker threads' tracebacks.
        need = sum(x.nbytes for x in jax.tree_util.tree_leaves(_key_data(state))) + 256 * 1024  # no transfer
        free = shutil.disk_usage(self.directory).free
        if free < need:
            raise UserError(
                f"not enough disk space for checkpoint {step} in {self.directory} (needs up to"
                f" {need / 2**20:.1f} MiB, {free / 2**20:.1f} MiB free); earlier checkpoints are intact:"
                " free disk space, then run the same command to resume"
            )
        try:
            with _quiet_threads():
                self.manager.save(
                    int(step),
                    args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
                    metrics=metrics,
                    force=True,
                )
                self.manager.wait_until_finished()
        except Exception as err:  # disk full, read-only, quota: the older checkpoints are untouched
            raise UserError(
                f"could not write checkpoint {step} in {self.directory} ({_reason(err)}); earlier"
                " checkpoints are intact: free disk space or fix permissions, then run the same command"
            ) from None

    def restore_latest(self, abstract_state: Any) -> tuple[Any, int, str] | None:
        """(state, step, params_sha256) of the newest checkpoint that verifies; None if there are none."""
        return self.restore(abstract_state)

    def restore(
        self, abstract_state: Any, which: str | int = "latest", best: Best | None = None, logged: Any = None
    ) -> tuple[Any, int, str] | None:
        """(state, step, params_sha256) of checkpoint `which`: "latest", the newest that verifies; "best",
        the best by `best`'s metric that verifies (the score saved with it, else `logged`: {step: score});
        or a step, that one. None if there are no checkpoints."""
        for attempt in range(READER_RETRIES):
            try:
                return self._restore_first(abstract_state, self._candidates(which, best, logged or {}), which)
            except LayoutMismatch:
                raise
            except UserError:
                # A reader that found nothing readable while the trainer was deleting and writing
                # checkpoints lists them again; a writer (alone, by its lock) stops at once.
                if self.writer or attempt == READER_RETRIES - 1:
                    raise
                time.sleep(0.05)
                self.manager.reload()
        return None

    def _candidates(self, which: str | int, best: Best | None, logged: dict[int, float]) -> list[int]:
        """The steps to try, in order."""
        listed = self.steps()
        if which == "latest":
            # A step folder orbax does not list (its metadata removed) would block a later save of that step.
            return sorted(set(listed) | set(step_dirs(self.directory) if self.writer else ()), reverse=True)
        if which != "best":
            if which not in listed:
                have = ", ".join(map(str, listed)) or "none"
                raise UserError(
                    f"{self.directory} has no checkpoint {which} (it has {have}): pick one of those, or"
                    " --checkpoint latest or best"
                )
            return [int(which)]
        ranked = []
        for step in listed:
            metrics = self._metrics(step)
            if best.metric not in metrics and step in logged:
                metrics = {best.metric: logged[step], "step": step}
            if best.rank(metrics)[0] > -math.inf:
                ranked.append((best.rank(metrics), step))
        if not ranked:
            raise UserError(
                f"no checkpoint in {self.directory} has a {best.metric} score (with val=0 none is scored):"
                " use --checkpoint latest or a step"
            )
        return [step for _, step in sorted(ranked, reverse=True)]

    def _metrics(self, step: int) -> dict[str, Any]:
        """The metrics orbax saved with checkpoint `step` ({} when none)."""
        try:
            metrics = self.manager.metrics(step)
        except Exception:  # unreadable: the step is ranked by the logged score, if any
            return {}
        return metrics if isinstance(metrics, dict) else {}

    def _restore_first(
        self, abstract_state: Any, candidates: list[int], which: Any
    ) -> tuple[Any, int, str] | None:
        """One pass over `candidates`: (state, step, params_sha256) of the first that verifies, or None.

        Bad checkpoints before the good one are named on stderr; a writer sets them aside. Checkpoints
        that exist but none of which is readable stop the run (nothing is renamed or deleted).
        """
        listed = set(self.steps())
        bad: list[tuple[int, str]] = []
        for step in candidates:
            problem = None
            mismatch = layout_mismatch(self.directory / str(step), abstract_state)
            if mismatch:  # intact files of another model: the record and the code disagree
                raise LayoutMismatch(
                    f"checkpoint {step} in {self.directory} holds another model than the one its run's"
                    f" resolved.json describes ({mismatch}): a code/record mismatch, not damage; nothing"
                    " was changed: read it with the jaxgen version that wrote it (env.json names it)"
                )
            if step not in listed:
                problem = "incomplete: no checkpoint metadata"
            else:
                try:
                    restored = self.manager.restore(
                        step,
                        args=ocp.args.Composite(
                            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
                        ),
                    )
                except Exception as err:  # truncated, garbled or foreign: try the one before it
                    problem = f"unreadable: {_reason(err)}"
            if problem is None:
                state, meta = restored["state"], restored["meta"]
                problem = _verify(state, meta, step)
            if problem is not None:
                bad.append((step, problem))
                continue
            self._report(bad, step)
            if self.best is not None:  # where the run was at this checkpoint: its best score and patience
                self.best.load(meta)
            return state, step, params_sha256(state.params)
        if bad and isinstance(which, int):
            raise UserError(
                f"checkpoint {which} in {self.directory} is {bad[0][1]}; nothing was changed: pick another"
                " (--checkpoint latest or best)"
            )
        if bad:
            raise UserError(
                f"none of the {len(bad)} checkpoints in {self.directory} is readable (first tried, step"
                f" {bad[0][0]}: {bad[0][1]}); nothing was changed: restore them from a copy, or move the"
                " folder away to start over"
            )
        return None

    def _report(self, bad: list[tuple[int, str]], good: int) -> None:
        """Name each bad checkpoint and the step used instead; a writer renames them out of the way."""
        for step, problem in bad:
            if not self.writer or jax.process_index() != 0:  # process 0 alone renames shared folders
                print(f"warning: checkpoint {step} is {problem}; using step {good}", file=sys.stderr)
                continue
            target = self.run_dir / SET_ASIDE / str(step)
            if target.exists():
                target = target.with_name(f"{step}-{time.strftime('%Y%m%dT%H%M%S')}")
            target.parent.mkdir(exist_ok=True)
            (self.directory / str(step)).rename(target)
            print(
                f"warning: checkpoint {step} is {problem}; set aside as {target}, resuming from step {good}",
                file=sys.stderr,
            )
        if bad and self.writer:
            self.manager.reload()

    def close(self) -> None:
        if self.manager is not None:
            self.manager.close()


def _verify(state: Any, meta: Any, step: int) -> str | None:
    """None if the restored state matches the checksums saved with it, else what is wrong."""
    if not isinstance(meta, dict) or "params_sha256" not in meta:
        return "missing its checksum record"
    if int(meta.get("step", -1)) != step or int(jax.device_get(state.step)) != step:
        return "labelled with another step"
    if meta["params_sha256"] != params_sha256(state.params):
        return "failing its parameter checksum"
    # Checkpoints written before the whole-state checksum existed carry only the parameters'.
    if "state_sha256" in meta and meta["state_sha256"] != state_sha256(state):
        return "failing its state checksum (optimizer state or step changed on disk)"
    return None


def layout_mismatch(step_dir: Path, abstract_state: Any) -> str | None:
    """The first difference between the parameters a checkpoint's metadata lists and those of
    `abstract_state` (names and global shapes), or None where they agree or the metadata cannot be read
    (then the files are what is wrong)."""

    def names_and_shapes(tree: Any) -> dict[tuple[str, ...], tuple[int, ...]]:
        return {
            tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path): tuple(
                leaf.shape
            )
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
        }

    try:
        with _quiet_threads():  # absl warns of a metadata file older orbax versions do not write
            meta = ocp.StandardCheckpointer().metadata(Path(step_dir) / "state")
        stored = names_and_shapes(getattr(meta, "item_metadata", meta)["params"])
    except Exception:  # unreadable metadata: damage, which the restore then names
        return None
    expected = names_and_shapes(abstract_state.params)
    for path in sorted(set(expected) | set(stored)):
        name = "/".join(path)
        if path not in stored:
            return f"{name} is missing from the checkpoint"
        if path not in expected:
            return f"the checkpoint has {name}, which the model built from the record lacks"
        if stored[path] != expected[path]:
            return f"{name} is {list(stored[path])} in the checkpoint, {list(expected[path])} in the model"
    return None


def _reason(err: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:160]}" if text else type(err).__name__

"""Thin orbax wrapper: save with a checksum, restore the newest checkpoint that verifies, fall back if not."""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


def params_sha256(params: Any) -> str:
    """sha256 over every parameter leaf's bytes, in tree-flatten order."""
    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(params):
        h.update(np.ascontiguousarray(jax.device_get(leaf)).tobytes())
    return h.hexdigest()


class Checkpointer:
    """Checkpoints under DIR/checkpoints/<step>/ holding the state and a JSON record of its checksum."""

    def __init__(self, run_dir: Path, *, max_to_keep: int = 3):
        self.directory = (Path(run_dir) / "checkpoints").absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            cleanup_tmp_directories=True,  # a save killed half-way leaves a tmp dir: never restore it
            # Synchronous: the driver donates the state to the next chunk, so the write must finish first.
            enable_async_checkpointing=False,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        """Steps with a finished checkpoint, oldest first."""
        return sorted(self.manager.all_steps())

    def save(self, step: int, state: Any) -> None:
        """Write `state` (a pytree with a `params` field) as checkpoint `step`."""
        meta = {"step": int(step), "params_sha256": params_sha256(state.params)}
        self.manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            force=True,
        )
        self.manager.wait_until_finished()

    def restore_latest(self, abstract_state: Any) -> tuple[Any, int, str] | None:
        """(state, step, params_sha256) of the newest checkpoint whose checksum verifies, or None."""
        for step in reversed(self.steps()):
            try:
                restored = self.manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
                    ),
                )
            except Exception as err:  # a truncated or foreign checkpoint: try the one before it
                log.warning("checkpoint %d unreadable (%s); falling back to an older one", step, err)
                name = type(err).__name__
                print(f"checkpoint {step} is unreadable ({name}); trying an older one", file=sys.stderr)
                continue
            state, meta = restored["state"], restored["meta"]
            digest = params_sha256(state.params)
            if meta.get("params_sha256") != digest:
                print(f"checkpoint {step} fails its checksum; trying an older one", file=sys.stderr)
                continue
            return state, step, digest
        return None

    def close(self) -> None:
        self.manager.close()

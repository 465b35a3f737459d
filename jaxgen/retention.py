"""Which checkpoints a run keeps (orbax's preservation policies) and the validation score that ranks them
and stops a run that no longer improves it (`Best`: keep_best, patience, `eval --checkpoint best`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from orbax.checkpoint.checkpoint_managers import preservation_policy as keep_policy


@dataclasses.dataclass
class Best:
    """The validation score that ranks checkpoints (keep_best, `eval --checkpoint best`) and stops a run
    that no longer improves it (patience). Its running record travels in every checkpoint's meta, so a
    resumed run carries on exactly where the straight run was at that checkpoint."""

    metric: str  # a validation score as metrics.jsonl names it: "val/accuracy"
    higher: bool  # whether a higher value is better
    min_delta: float = 0.0  # the least gain over the best that counts as an improvement (patience)
    patience: int = 0  # checkpoints in a row without an improvement that stop the run; 0 = never
    value: float | None = None  # the best score so far (ties: the earlier checkpoint)
    step: int | None = None  # the checkpoint it was scored at
    bad_checks: int = 0  # scored checkpoints since the last improvement by more than min_delta

    def update(self, step: int, value: float) -> None:
        """Count checkpoint `step`'s score (a non-finite score never improves)."""
        gain = math.inf if self.value is None else (value - self.value) * (1 if self.higher else -1)
        if not math.isfinite(value):
            gain = -math.inf
        self.bad_checks = 0 if gain > self.min_delta else self.bad_checks + 1
        if gain > 0:
            self.value, self.step = value, int(step)

    @property
    def stopped(self) -> bool:
        """patience checkpoints in a row have not improved the score: the run is over."""
        return self.patience > 0 and self.bad_checks >= self.patience

    def why(self) -> str:
        """Why the run stopped, and what would let it go on."""
        best = "no finite score" if self.value is None else f"best {self.value:.6g} at step {self.step}"
        return (
            f"{self.metric} has not improved by more than {self.min_delta:g} in {self.bad_checks} checkpoints"
            f" ({best}); to train on, rerun with a larger --set patience"
        )

    def record(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "best_value": self.value,
            "best_step": self.step,
            "bad_checks": self.bad_checks,
        }

    def load(self, meta: dict[str, Any]) -> None:
        """Take the record saved with a checkpoint (none, or another metric's: start afresh)."""
        rec = meta.get("best") if isinstance(meta, dict) else None
        if not isinstance(rec, dict) or rec.get("metric") != self.metric:
            rec = {}
        self.value, self.step = rec.get("best_value"), rec.get("best_step")
        self.bad_checks = int(rec.get("bad_checks", 0))

    def rank(self, metrics: Any) -> tuple[float, int]:
        """Orbax's key for a checkpoint's saved metrics: better scores higher, and of equal ones the earlier
        step (the one `update` calls best); no score ranks last."""
        value = metrics.get(self.metric) if isinstance(metrics, dict) else None
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return -math.inf, 0
        return value if self.higher else -value, -int(metrics.get("step", 0))


def retention(keep: int, keep_every: int, keep_best: int, best: Best | None) -> Any:
    """Orbax's preservation policy: a checkpoint stays while any rule keeps it."""
    rules: list[Any] = [keep_policy.LatestN(n=keep)]
    if keep_every:  # steps that are multiples of keep_every are never deleted
        rules.append(keep_policy.EveryNSteps(interval_steps=keep_every))
    if keep_best and best is not None:
        rules.append(
            keep_policy.BestN(get_metric_fn=best.rank, n=keep_best, keep_checkpoints_without_metrics=False)
        )
    return keep_policy.AnyPreservationPolicy(rules)

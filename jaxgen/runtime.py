"""What every layer may ask of the runtime: keys of a run, the device mesh, device names, matmul precision,
multi-process setup and the environment facts env.json records. Nothing here knows a task."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxgen import versions


def init_distributed(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
    """Join a multi-process run (several hosts, or several processes on one); call before any JAX work.

    With no arguments JAX detects the cluster (Cloud TPU, SLURM, Open MPI, Kubernetes).
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes talk over gloo
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )


def preemption_service() -> bool:
    """Several processes: jax.distributed's preemption service is on (JAX's default), which catches
    SIGTERM on any process and tells every one (multihost_utils.reached_preemption_sync_point)."""
    return jax.process_count() > 1 and bool(jax.config.jax_enable_preemption_service)


def from_process_0(value: float | None) -> float | None:
    """Process 0's value on every process, bit for bit (a float64's bytes and a flag for None)."""
    if jax.process_count() == 1:
        return value
    raw = np.frombuffer(np.float64(value or 0.0).tobytes() + bytes([value is not None]), np.uint8)
    got = np.asarray(multihost_utils.broadcast_one_to_all(raw)).astype(np.uint8).tobytes()
    return float(np.frombuffer(got[:8], np.float64)[0]) if got[8] else None


def is_main_process() -> bool:
    """Process 0 writes the run directory's logs and plots; every process writes its checkpoint shards."""
    return jax.process_index() == 0


def make_mesh() -> jax.sharding.Mesh:
    """All devices (of every host) on one data-parallel axis."""
    # Auto axes: XLA propagates the batch sharding through the step; params stay replicated.
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def split_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(init_key, data_key, loop_key) of a run."""
    init_key, data_key, loop_key = jax.random.split(jax.random.key(seed), 3)
    return init_key, data_key, loop_key


def eval_key(seed: int) -> jax.Array:
    """The fixed key of a run's evaluations and samples (the same at every checkpoint, eval and plot)."""
    return jax.random.fold_in(jax.random.key(seed), 0xE7A1)


def precision_scope(precision: str):
    """The run's matmul precision (a config's `precision`) for everything traced inside (train, eval,
    sample): a context."""
    if precision == "default":
        return contextlib.nullcontext()
    return jax.default_matmul_precision(precision)


def auto_conv_impl(backend: str | None = None) -> str:
    """What `conv_impl=auto` means on `backend` (default: JAX's): convolutions as shifted slices and one
    matrix product on the CPU (XLA's CPU convolution is 17x slower inside lax.scan, docs/speed.md), XLA's
    own convolution (cuDNN, TPU) elsewhere."""
    return "slices" if (backend or jax.default_backend()) == "cpu" else "xla"


def env_info(train_np: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Versions, devices, command and code version of this start (env.json keeps one per start)."""
    import flax
    import optax
    import orbax.checkpoint

    devices = jax.devices()
    info = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "jaxgen": versions.version("jaxgen"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "jaxlib": importlib.metadata.version("jaxlib"),
        "flax": flax.__version__,
        "optax": optax.__version__,
        "orbax_checkpoint": getattr(orbax.checkpoint, "__version__", None),
        "numpy": np.__version__,
        "tensorboardX": versions.version("tensorboardX"),
        "tensorflow_datasets": versions.version("tensorflow-datasets"),
        "lock": versions.lock_status(),  # "matches" requirements.lock, "differs: ...", None (no lock file)
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "num_devices": jax.device_count(),
        "process_count": jax.process_count(),
        "cpu_count": os.cpu_count(),
        "argv": sys.argv,
        "git_commit": _git_commit(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "matmul_precision": str(jax.config.jax_default_matmul_precision or "default"),  # in precision_scope
        "conv_impl_auto": auto_conv_impl(),  # what conv_impl=auto runs here (jaxgen.convs)
    }
    if train_np is not None:
        h = hashlib.sha256()
        for k in sorted(train_np):
            h.update(np.ascontiguousarray(train_np[k]).tobytes())
        info["data_sha256"] = h.hexdigest()
    return info


def _git_commit() -> str | None:
    """The commit of the jaxgen source tree, when it is a git checkout (a '+' marks uncommitted changes)."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        return None
    try:
        git = ["git", "-C", str(repo)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "") if head.returncode == 0 else None


def device_name() -> str:
    """e.g. 'cpu (2 cores)' or 'NVIDIA H100 80GB HBM3 x1'."""
    d = jax.devices()[0]
    if d.platform == "cpu":
        return f"cpu ({os.cpu_count()} cores)"
    return f"{d.device_kind} x{jax.device_count()}"


def device_memory_bytes() -> int | None:
    """Memory one device offers (an accelerator's own bytes_limit; on the CPU, the machine's RAM), or None
    if it cannot be told. JAXGEN_DEVICE_MEMORY (bytes) overrides it (tests; a shared accelerator)."""
    if os.environ.get("JAXGEN_DEVICE_MEMORY", "").isdigit():
        return int(os.environ["JAXGEN_DEVICE_MEMORY"])
    d = jax.local_devices()[0]
    if d.platform != "cpu":
        stats = d.memory_stats() or {}
        return int(stats["bytes_limit"]) if "bytes_limit" in stats else None
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def device_from_env(env: dict[str, Any]) -> str:
    """device_name() of the machine that recorded `env` (a run's env.json): what its figures name."""
    if not env:
        return "?"
    if env.get("backend") == "cpu":
        return f"cpu ({env.get('cpu_count')} cores)"
    return f"{env.get('device_kind')} x{env.get('num_devices', 1)}"

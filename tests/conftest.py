"""Strict numerics in tests: implicit rank promotion is a bug waiting to happen. One compilation cache
for the whole session, subprocesses included."""

import contextlib
import io
import os
import tempfile
from pathlib import Path

# One BLAS thread per test process: pytest-xdist already runs one process per core, and OpenBLAS's own
# threads then spin against the other worker's XLA threads (tests/test_autoencoder.py: 120 s -> 76 s;
# a Gaussian-mixture fit 20 s -> 3 s beside a training job). Set before numpy loads; inherited by the
# subprocesses the tests start; threadpoolctl covers a numpy loaded earlier.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# On a GPU: full float32 matmuls (not TF32) in the subprocesses the tests start too (the walkthrough's
# linear-collapse check compares against float64 at 1e-4), and deterministic kernels (cuDNN's convolution
# backward may otherwise differ run to run: the conv tasks' bit-exact resume). The CPU ignores both.
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")
if "--xla_gpu_deterministic_ops" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()
# The tests check what the code computes, not how fast: at XLA's backend optimisation level 1 the CPU code
# compiles faster (two contract tests: 55 s -> 44 s) and computes the golden values within their tolerance
# (level 0 was faster still, but miscompiled a BatchNorm gradient to NaN). Bits differ from the default
# level's, so a test that compares against bits written elsewhere runs that part at the default level
# (test_record's 0.1.0 resume). Inherited by subprocesses. JAXGEN_TEST_XLA_OPT=1: XLA's default level.
if not os.environ.get("JAXGEN_TEST_XLA_OPT") and "--xla_backend_optimization_level" not in os.environ.get(
    "XLA_FLAGS", ""
):
    os.environ["XLA_FLAGS"] = (os.environ["XLA_FLAGS"] + " --xla_backend_optimization_level=1").strip()

import jax  # noqa: E402
import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(int(os.environ["OPENBLAS_NUM_THREADS"]), user_api="blas")

jax.config.update("jax_numpy_rank_promotion", "raise")
# GPUs run float32 matmuls as TF32 by default (errors near 1e-3); the tests compare against numpy/float64
# references and golden values printed on the CPU, so they pin full float32 everywhere. Tests of the
# `precision` setting itself open their own scope.
jax.config.update("jax_default_matmul_precision", "highest")

# The suite compiles the same small programs many times (every subprocess of a kill-and-resume test
# compiles its run's chunk again; every `make test` compiles what the last one did): JAX's persistent
# compilation cache, shared with the subprocesses through the environment, spends that time once per
# machine. It lives where pip keeps its wheels, under the user's cache folder (~/.cache/jaxgen-tests/xla),
# never in the checkout; JAX keys each entry by the program (without source locations), the jax and jaxlib
# versions, the backend and the flags, so a stale entry is never used (one state of the code: ~33 MB;
# delete the folder at will). No size limit: JAX's needs filelock and made a first run 50% slower (its
# bookkeeping on every read and write). The first run on a machine compiles everything (docs/testing.md).
# JAXGEN_TEST_CACHE=DIR puts it elsewhere; JAXGEN_TEST_NO_CACHE=1 compiles everything every time.
if not os.environ.get("JAXGEN_TEST_NO_CACHE"):
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jaxgen-tests" / "xla"
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ.get("JAXGEN_TEST_CACHE") or str(default))
    try:
        Path(os.environ["JAX_COMPILATION_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
    except OSError:  # an unwritable home: a cache for this session only
        os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxgen-test-xla-cache-")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST5K = REPO.parent / "shared" / "data" / "mnist-test5k"


@pytest.fixture
def mnist_test5k() -> Path:
    """The shared 5,000 real MNIST test digits (IDX), or skip where they are not beside the repo."""
    if not (MNIST_TEST5K / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("../shared/data/mnist-test5k is not here")
    return MNIST_TEST5K


def snapshot_files(root: Path, contents: bool = True) -> dict[str, bytes | None]:
    """Every file under `root` (relative path -> bytes, or None with contents=False): to assert that a
    refused command wrote and removed nothing."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if contents else None)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- one set of tiny trained runs

# The tiny classifier run's flags (hidden and steps first: tests rebuild variants by position).
TINY_MLP = ["--set", "hidden=16", "--set", "steps=20", "--set", "ckpt_every=10", "--set", "batch_size=32",
            "--set", "log_every=10", "--set", "warmup_steps=0"]  # fmt: skip
TINY_RUNS = {
    "mlp": ["train", "mlp", *TINY_MLP, "--no-plots"],
    # a latent-2 AE with its figures (latent space, grid, reconstructions)
    "ae": ["train", "ae", "--set", "hidden=64", "--set", "latent_dim=2", "--set", "steps=40",
           "--set", "ckpt_every=20", "--set", "log_every=20"],
    # a VAE on dynamically binarised digits (its likelihood, measured by eval --nll-k)
    "vae": ["train", "ae", "--set", "hidden=32", "--set", "latent_dim=2", "--set", "variational=true",
            "--set", "binarize=dynamic", "--set", "steps=20", "--set", "ckpt_every=20", "--no-plots"],
    # the GAN on the ring with two checkpoints (samples through training) and its figures
    "gan": ["train", "gan", "--data", "toy:ring8", "--set", "hidden=16", "--set", "latent_dim=2",
            "--set", "batch_size=32", "--set", "r1=0.5", "--set", "steps=4", "--set", "ckpt_every=2",
            "--set", "log_every=2"],
}  # fmt: skip


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """`tiny_runs(kind)`: the run directory of TINY_RUNS[kind], trained once per test process by the CLI and
    shared by every eval, sample, plot, judge and CLI test that reads one (the summary the command printed:
    summary.json beside it). Read-only: copy it to change it."""
    from jaxgen import cli

    made: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in made:
            wd = tmp_path_factory.mktemp(f"tiny-{kind}") / "run"
            argv = TINY_RUNS[kind]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert cli.main([*argv[:2], "--workdir", str(wd), *argv[2:], "--no-progress"]) == 0, kind
            (wd.parent / "summary.json").write_text(out.getvalue().strip().splitlines()[-1])
            made[kind] = wd
        return made[kind]

    return get


# The longest file first: xdist hands files out in collection order (make test: --dist loadfile), and the
# walkthrough's (its smoke run takes ~2 minutes on one process) collected last would leave the other process
# idle at the end. (--dist loadgroup would balance test by test, but pytest-xdist 3.8 marks a group by
# rewriting item._nodeid, which pytest 9 no longer reads: its groups split and module fixtures ran twice.)
FIRST = ("test_walkthrough.py",)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.nodeid.split("::")[0].rsplit("/", 1)[-1] not in FIRST)

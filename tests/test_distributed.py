"""Data parallelism and interruption, in subprocesses: several (fake) CPU devices, and Ctrl-C mid-run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from jaxgen.errors import EXIT_INTERRUPTED

TINY = [
    "--set",
    "hidden=32",
    "--set",
    "batch_size=32",
    "--set",
    "warmup_steps=0",
    "--set",
    "lr=0.01",
    "--no-progress",
    "--no-plots",
]


# Two devices from one CPU: XLA's host platform split in two (on a GPU machine too, which has one GPU).
TWO_CPUS = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}


def jaxgen(*args, env=None, **kw):
    return subprocess.run(
        [sys.executable, "-m", "jaxgen.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        **kw,
    )


def test_two_devices_shard_the_batch_and_match_one_device(tmp_path):
    common = ["--set", "steps=12", "--set", "ckpt_every=12", "--set", "log_every=6", *TINY]
    one = jaxgen("train", "mlp", "--workdir", str(tmp_path / "one"), *common, env={"JAX_PLATFORMS": "cpu"})
    two = jaxgen(
        "train",
        "mlp",
        "--workdir",
        str(tmp_path / "two"),
        *common,
        env=TWO_CPUS,
    )
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    s1, s2 = json.loads(one.stdout.splitlines()[-1]), json.loads(two.stdout.splitlines()[-1])
    assert s1["num_devices"] == 1 and s2["num_devices"] == 2 and s2["step"] == 12
    # Same math, other reduction order: equal to float tolerance, not necessarily to the bit.
    assert abs(s1["train_loss"] - s2["train_loss"]) < 1e-4
    assert abs(s1["test_accuracy"] - s2["test_accuracy"]) <= 0.004
    odd = jaxgen(
        "train",
        "mlp",
        "--workdir",
        str(tmp_path / "odd"),
        *common,
        "--set",
        "batch_size=33",
        env=TWO_CPUS,
    )
    assert odd.returncode == 2 and "multiple of the 2 devices" in odd.stderr


def test_ctrl_c_checkpoints_and_the_same_command_resumes(tmp_path):
    wd = tmp_path / "run"
    args = [
        "train",
        "mlp",
        "--workdir",
        str(wd),
        "--set",
        "steps=100000",
        "--set",
        "ckpt_every=50000",
        "--set",
        "log_every=20",
        *TINY,
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxgen.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    metrics = wd / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err[-2000:]  # resumable, not a usage error
    assert "interrupted at step" in err and "run the same command to resume" in err
    step = int(err.split("interrupted at step ")[1].split()[0])
    assert step >= 40 and (wd / "checkpoints" / str(step)).exists()
    again = jaxgen(*args[: -len(TINY)], "--set", "steps=" + str(step + 20), *TINY)
    assert f"resuming from step {step}" in again.stderr, again.stderr[-2000:]
    assert json.loads(again.stdout.splitlines()[-1])["step"] == step + 20


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # make test leaves it out: docs/testing.md
def test_two_processes_train_one_run_through_jax_distributed(tmp_path):
    def launch(steps):
        args = [
            "train",
            "mlp",
            "--workdir",
            str(tmp_path / "mp"),
            "--set",
            f"steps={steps}",
            "--set",
            "ckpt_every=6",
            "--set",
            "log_every=6",
            *TINY,
            "--distributed",
            "--coordinator",
            f"127.0.0.1:{_free_port()}",
            "--num-processes",
            "2",
        ]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "jaxgen.cli", *args, "--process-id", str(i)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "JAX_PLATFORMS": "cpu"},  # two ranks on one GPU would clash in NCCL
            )
            for i in (0, 1)
        ]
        outs = [p.communicate(timeout=240) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
        return outs

    (out0, _), (out1, _) = launch(12)
    s0, s1 = json.loads(out0.splitlines()[-1]), json.loads(out1.splitlines()[-1])
    assert s0["num_devices"] == 2 and s0["step"] == 12
    assert s0["params_sha256"] == s1["params_sha256"]  # one replicated model, not two
    assert "train_loss" in s0 and "train_loss" not in s1  # process 0 alone writes the logs
    (again0, err0), _ = launch(18)
    assert "resuming from step 12" in err0  # messages on stderr; stdout is the JSON line
    assert again0.splitlines() == [again0.splitlines()[-1]]
    assert json.loads(again0.splitlines()[-1])["step"] == 18


def _two_processes(workdir, steps: int) -> list[subprocess.Popen]:
    """`jaxgen train mlp` as one run of two processes through jax.distributed (CPU, gloo), started."""
    args = ["train", "mlp", "--workdir", str(workdir), "--set", f"steps={steps}", "--set", "log_every=20"]
    args += ["--set", "ckpt_every=1000", *TINY, "--distributed", "--coordinator", f"127.0.0.1:{_free_port()}"]
    return [
        subprocess.Popen(
            [sys.executable, "-m", "jaxgen.cli", *args, "--num-processes", "2", "--process-id", str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
        )
        for i in (0, 1)
    ]


def _finish(procs: list[subprocess.Popen], code: int) -> list[tuple[str, str]]:
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [code, code], outs[0][1][-2000:] + outs[1][1][-2000:]
    return outs


@pytest.mark.slow  # about 2 minutes on 2 busy CPU cores: 5 two-process runs
def test_sigterm_to_one_process_stops_every_process_at_one_step_and_resumes_bit_exact(tmp_path):
    """Issue 32: SIGTERM reaches one host; JAX's preemption service tells every process, they agree on one
    chunk boundary, all save that step's checkpoint together and exit 75; the same command resumes."""
    steps = 240
    (straight, _), _ = _finish(_two_processes(tmp_path / "straight", steps), 0)
    want = json.loads(straight.splitlines()[-1])["params_sha256"]
    for target in (1, 0):  # a worker, then the coordinator's process
        wd = tmp_path / f"term{target}"
        procs = _two_processes(wd, steps)
        metrics = wd / "metrics.jsonl"
        deadline = time.time() + 180
        while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.time() < deadline:
            time.sleep(0.1)
        # The other process is paused while the notice (polled once a second) spreads, so that the agreed
        # step falls early on a fast machine too; it is told when it runs on, and trains on meanwhile.
        other = procs[1 - target]
        other.send_signal(signal.SIGSTOP)
        procs[target].send_signal(signal.SIGTERM)
        time.sleep(2)
        other.send_signal(signal.SIGCONT)
        outs = _finish(procs, EXIT_INTERRUPTED)
        stopped = [int(err.split("interrupted at step ")[1].split()[0]) for _, err in outs]
        assert stopped[0] == stopped[1] and 40 <= stopped[0] < steps, stopped
        assert (wd / "checkpoints" / str(stopped[0])).exists()
        print(f"SIGTERM to process {target}: both stopped at step {stopped[0]}")
        (again, err), (again1, _) = _finish(_two_processes(wd, steps), 0)
        assert f"resuming from step {stopped[0]}" in err
        got = [json.loads(out.splitlines()[-1])["params_sha256"] for out in (again, again1)]
        assert got == [want, want], (target, stopped)

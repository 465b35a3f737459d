"""`jaxgen bench peers`: every loop measured in one run, the driver as the whole command, JSON + markdown."""

import dataclasses
import json

import pytest

from jaxgen import cli
from jaxgen.bench import peers

TINY = dataclasses.replace(
    peers.QUICK, hidden=32, batch_size=32, steps=10, driver_steps=(10, 30), rounds=1, cnn_steps=2,
    cnn_loops=("cnn_chunk", "cnn_xla_step", "cnn_torch_eager"),  # the other chunk: XLA's CPU conv in a scan
)  # fmt: skip


def test_peers_measure_every_loop_side_by_side(tmp_path, monkeypatch):
    seen = []

    def in_process(args, workdir):  # what _run_driver does, without a fresh interpreter's start-up
        import io
        import time
        from contextlib import redirect_stdout

        seen.append(args)
        buf = io.StringIO()
        t0 = time.perf_counter()
        with redirect_stdout(buf):
            assert cli.main([*args, "--workdir", str(workdir)]) == 0
        return time.perf_counter() - t0, json.loads(buf.getvalue().strip().splitlines()[-1])

    monkeypatch.setattr(peers, "_run_driver", in_process)
    report = peers.run(TINY, tmp_path / "out", log=lambda msg: None)
    loops = report["loops"]
    assert {"driver", "jax_scan", "jax_step", "gemm_only"} <= set(loops)
    for name, row in loops.items():
        if name != "driver":  # 20 steps' difference can drown in start-up noise: NaN then, said in the table
            assert row["samples_per_s"] > 0 and row["of_ceiling"] > 0, name
    # the driver row is the command, sized: a short and a long run, each in its own fresh workdir
    assert [a[a.index("--set") :][-1] for a in seen] == ["steps=10", "steps=30"]
    assert "augment=false" in seen[0] and "dropout=0" in seen[0] and "hidden=32,32" in seen[0]
    assert loops["jax_scan"]["vs_reference"] == 1.0  # ratios are taken within each round
    assert loops["driver"]["summary_samples_per_s"] > 0 and len(loops["driver"]["rounds"]) == 1
    assert report["ceiling"]["samples_per_s"] == pytest.approx(
        report["ceiling"]["flops_per_s"] / peers.flops_per_sample(32)
    )
    assert peers.executed_flops_per_sample(512) < peers.flops_per_sample(512)
    # torch rows are measured or skipped with a reason, never silently absent
    for k in ("torch_eager", "torch_graph"):
        assert (k in loops) != (k in report["skipped"])
    assert report["rounds_done"] == 1  # the report is rewritten after every round
    # the PyTorch that ran the torch rows is named (None where it does not import: the rows say why)
    assert (report["torch"] is None) == ("torch_eager" in report["skipped"])
    if report["torch"]:
        assert report["torch"].startswith("PyTorch ")
    strict = {"parse_constant": lambda name: pytest.fail(f"bare {name} in peers.json")}  # NaN is null
    on_disk = json.loads((tmp_path / "out" / "peers.json").read_text(), **strict)
    assert on_disk["loops"].keys() == loops.keys()
    md = (tmp_path / "out" / "peers.md").read_text()
    assert report["device"] in md and "PyTorch eager" in md and "matrix-product ceiling" in md
    assert not list((tmp_path / "out").glob("peers-*"))  # the driver's run folders are removed
    # the CNN rows: jaxgen's scanned chunk and XLA's convolution beside PyTorch eager (or why not)
    cnn = report["cnn"]
    assert {"cnn_chunk", "cnn_xla_step"} <= set(cnn["loops"])
    assert ("cnn_torch_eager" in cnn["loops"]) != ("cnn_torch_eager" in report["skipped"])
    assert all(row["samples_per_s"] > 0 and row["of_ceiling"] > 0 for row in cnn["loops"].values())
    assert "The CNN step" in md and ("BatchNorm" in cnn["work"]) == (
        peers.peer_loops.cnn_config(32, 2).norm == "batch"
    )
    assert on_disk["cnn"]["loops"].keys() == cnn["loops"].keys()


def test_cnn_flops_count_the_default_network():
    # conv 1->32 at 28x28, conv 32->64 at 14x14, dense 3136->256->10; 3 x forward
    fwd = 2 * 784 * 9 * 32 + 2 * 196 * 9 * 32 * 64 + 2 * (3136 * 256 + 256 * 10)
    assert peers.peer_loops.cnn_flops_per_sample((32, 64), (256,)) == 3 * fwd


def test_batch_size_flag_is_for_peers_only(capsys):
    assert cli.main(["bench", "throughput", "--quick", "--batch-size", "64", "--out", "x"]) == 2
    assert "--batch-size applies to `jaxgen bench peers`" in capsys.readouterr().err
    assert cli.main(["bench", "peers", "--batch-size", "0", "--out", "x"]) == 2
    assert "between 1 and 65536" in capsys.readouterr().err


def test_gpu_check_script_parses_and_names_real_commands():
    """benchmarks/gpu_check.sh runs unattended on a lent GPU: its shell and every jaxgen command in it must
    be valid before the device time is spent."""
    import re
    import shlex
    import subprocess
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    commands = re.findall(r"python3 -m jaxgen (bench .+)", text)
    assert len(commands) == 4
    for line in commands:
        argv = shlex.split(line.replace('"$WORK/', "w/").replace('"', ""))
        args = cli.build_parser().parse_args(argv)
        assert args.command == "bench" and args.quick
    assert "python3 -m jaxgen train mlp --no-plots" in text and "--set dtype=$dt" in text
    args = cli.build_parser().parse_args(
        ["train", "mlp", "--no-plots", "--workdir", "w", "--set", "dtype=bfloat16"]
    )
    assert args.command == "train"
    assert "-not -path '*/checkpoints*'" in text  # the one archive back stays far below 16 MiB
    boxes = [int(n) for n in re.findall(r"^step \S+ (\d+) ", text, re.M)]
    assert len(boxes) == 6 and sum(boxes) <= 560  # the whole script inside one 600 s device call


def test_python_dash_m_jaxgen_is_the_cli():
    """The driver row runs `python -m jaxgen train ...` in a subprocess."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "jaxgen", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("jaxgen ")

"""`jaxgen bench peers`: every loop measured in one run, the driver as the whole command, JSON + markdown."""

import dataclasses
import json
from pathlib import Path

import jax
import pytest

from jaxgen import cli
from jaxgen.bench import peer_dcgan, peers

TINY = dataclasses.replace(
    peers.QUICK, hidden=32, batch_size=32, steps=10, driver_steps=(10, 30), accel_driver_steps=(10, 30),
    rounds=1, cnn_steps=2,
    cnn_loops=("cnn_chunk", "cnn_xla_step", "cnn_torch_eager"),  # the other chunk: XLA's CPU conv in a scan
    dcgan_steps=0,  # test_dcgan_rows_time_the_driver_chunk_beside_torch: at a tiny size
)  # fmt: skip
# DCGAN at its smallest: one stride-2 stage each side (8x8x3 from a 4x4 grid), so its chunk compiles fast
TINY_GAN = peer_dcgan.Work(size=8, batch_size=4, latent_dim=4, channels=(4,), d_channels=(4,), images=16)


@pytest.mark.slow  # make test leaves it out: docs/testing.md
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


def test_dcgan_rows_time_the_driver_chunk_beside_torch(tmp_path):
    cfg = dataclasses.replace(
        TINY,
        loops=(),
        cnn_steps=0,
        dcgan_steps=2,
        dcgan=TINY_GAN,
        dcgan_loops=("dcgan_chunk", "dcgan_torch_eager"),
    )
    report = peers.run(cfg, tmp_path, log=lambda msg: None)
    gan = report["dcgan"]
    assert ("dcgan_torch_eager" in gan["loops"]) != ("dcgan_torch_eager" in report["skipped"])
    for row in gan["loops"].values():
        assert row["samples_per_s"] > 0 and 0 < row["of_ceiling"] < 1
        assert row["steps_per_s"] == pytest.approx(row["samples_per_s"] / TINY_GAN.batch_size)
    chunk = gan["loops"]["dcgan_chunk"]
    assert chunk["vs_torch_eager"] is None or chunk["vs_torch_eager"] > 0
    assert gan["flops_per_step"] == peer_dcgan.flops_per_step(TINY_GAN) and "8x8x3, batch 4" in gan["work"]
    assert gan["ceiling_samples_per_s"] == pytest.approx(
        report["ceiling"]["flops_per_s"] / peer_dcgan.flops_per_sample(TINY_GAN)
    )
    md = (tmp_path / "peers.md").read_text()
    assert "### The DCGAN step" in md and "driver's compiled chunk" in md and "G+D steps/s" in md
    assert json.loads((tmp_path / "peers.json").read_text())["dcgan"]["loops"].keys() == gan["loops"].keys()
    assert report["config"]["dcgan"]["size"] == 8 and not report["loops"]  # the other rows: off


def test_dcgan_torch_nets_are_jaxgens_layers():
    """PyTorch's G and D have jaxgen's parameter counts and image shapes (4x4 stride-2 padding 1 = 'SAME')."""
    import jax.numpy as jnp

    from jaxgen import tasks

    torch = pytest.importorskip("torch")
    work = dataclasses.replace(TINY_GAN, size=16, channels=(4, 8), d_channels=(4, 8))
    task = tasks.build(peer_dcgan.gan_config(work), peer_dcgan.dataset(work))
    state = task.init(jax.random.key(0))
    g, d = peer_dcgan.torch_nets(torch, work)

    def count(tree):
        return sum(x.size for x in jax.tree.leaves(tree))

    assert sum(p.numel() for p in g.parameters()) == count(state.params["g"]["params"])
    assert sum(p.numel() for p in d.parameters()) == count(state.params["d"])
    assert task.g_model.apply(state.params["g"], jnp.zeros((2, 4))).shape == (2, 16, 16, 3)
    assert tuple(g(torch.zeros(2, 4)).shape) == (2, 3, 16, 16)
    assert tuple(d(torch.zeros(2, 3, 16, 16)).shape) == (2, 1)
    assert peer_dcgan.blobs(3, 16).shape == (3, 16, 16, 3)


def test_dcgan_flops_count_the_layers_by_hand():
    # 16x16x3, G 4,8 from a 4x4 grid, D 4,8, z 4, batch 2; multiply-adds per sample:
    g_project = 4 * (4 * 4 * 8)  # z -> 4x4x8
    g = g_project + (4 * 4) * 16 * 8 * 4 + (8 * 8) * 16 * 4 * 3  # deconv 4x4x8 -> 8x8x4, 8x8x4 -> 16x16x3
    d_first = (8 * 8) * 16 * 3 * 4  # conv 16x16x3 -> 8x8x4
    d = d_first + (4 * 4) * 16 * 4 * 8 + 4 * 4 * 8  # conv 8x8x4 -> 4x4x8, dense 128 -> 1
    work = peer_dcgan.Work(size=16, batch_size=2, latent_dim=4, channels=(4, 8), d_channels=(4, 8))
    assert peer_dcgan.forward_macs(work) == {"g": g, "g_project": g_project, "d": d, "d_first": d_first}
    d_update = g + 2 * d + 2 * d + 2 * (d - d_first)  # G forward, D forward, weight and input gradients
    g_update = g + d + d + g + (g - g_project)  # G forward, D forward, D's input gradients, G's two
    assert peer_dcgan.flops_per_step(work) == 2 * 2 * (d_update + g_update)
    # Radford's widths: G 4x and D 2x as wide as the default (its middle layers 16x and 4x the work)
    assert peer_dcgan.flops_per_step(peer_dcgan.RADFORD) > 7 * peer_dcgan.flops_per_step(peer_dcgan.Work())


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
    singles = re.sub(r'^  [MG]=".*"$', "", text, flags=re.M).replace("\\\n", " ")  # the seed runs: below
    trains = re.findall(r"python3 -m jaxgen (train .+?)(?:\| tail|;|'|$)", singles, re.M)
    assert len(trains) == 4  # norm-cond, bf16, fashion-cnn, dcgan
    m, g = (re.search(rf'^  {v}="python3 -m jaxgen (train .+)"$', text, re.M).group(1) for v in "MG")
    seeds = re.findall(r"^  step seeds-\S+ \d+ \$([MG]) (.+)$", text, re.M)
    assert len(seeds) == 7  # the MLP with 1, 4, 16 seeds and 4 unrolled; the GAN with 1, 4, 16
    trains += [f"{m if v == 'M' else g} {rest}" for v, rest in seeds]
    for line in trains:
        line = line.replace('"$0/', "w/").replace('"$WORK/', "w/")
        argv = shlex.split(line.replace("$", "").replace('"', ""))
        args = cli.build_parser().parse_args(argv)
        assert args.command == "train" and args.no_plots
    assert "-not -path '*/checkpoints*'" in text  # the one archive back stays far below 16 MiB
    parts = re.split(r'^if \[ "\$PART" = (\w+) \]; then$', text, flags=re.M)
    assert parts[1::2] == ["speed", "suite", "extra", "seeds"]
    for body in parts[2::2]:
        boxes = [int(n) for n in re.findall(r"^  step \S+ (\d+) ", body.split("\nfi\n")[0], re.M)]
        assert len(boxes) >= 2 and sum(boxes) <= 300  # each part inside one call; two fit 15 device minutes
    assert "benchmarks/profile_chunk.py --first-step" in text and "JAXGEN_NORM_EVERY=$every" in text
    bad = subprocess.run(["bash", str(script), "everything"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage: bash benchmarks/gpu_check.sh speed|suite|extra" in bad.stderr


def test_python_dash_m_jaxgen_is_the_cli():
    """The driver row runs `python -m jaxgen train ...` in a subprocess."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "jaxgen", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("jaxgen ")


def test_profile_chunk_sums_the_traced_ops_of_a_call(tmp_path):
    """benchmarks/profile_chunk.py (issue 19's GPU profile): a traced call's executed ops are found in the
    trace, counted per step and ranked, and the report says so in markdown."""
    import importlib.util

    import jax.numpy as jnp

    path = Path(__file__).parents[1] / "benchmarks" / "profile_chunk.py"
    spec = importlib.util.spec_from_file_location("profile_chunk", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    f = jax.jit(lambda a: jax.lax.fori_loop(0, 4, lambda i, x: jnp.tanh(x @ x), a))
    a = jnp.ones((64, 64)) / 64
    row = mod.traced("toy", lambda: f(a).block_until_ready(), 4, tmp_path)
    assert row["ops_per_step"] >= 1 and 0 < row["op_ms_per_step"] <= row["wall_ms_per_step"]
    assert row["top_ops"] and row["top_ops"][0]["ms_per_step"] >= row["top_ops"][-1]["ms_per_step"]
    report = {"device": "cpu", "hidden": 64, "batch": 8, "steps": 4, "loops": [row], "first_step": {"x": 1}}
    text = mod.markdown(report)
    assert "| toy |" in text and "### toy: the 12 longest ops" in text and "- x: 1" in text

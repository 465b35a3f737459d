"""A run is its record: resolved.json holds every value concrete; eval, sample and resume rebuild the run from
it (runs written by 0.1.0 too), `jaxgen config` prints exactly what a run records, the tables of defaults
are complete and linked, a key of another architecture is refused, a code/record mismatch is told apart
from damage."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_MLP

from jaxgen import cli, config, configs, runs
from jaxgen.configs import legacy, table
from jaxgen.errors import UserError

REPO = Path(__file__).resolve().parents[1]
LEGACY = Path(__file__).parent / "fixtures" / "legacy-e5841b5"
TINY_SETS = TINY_MLP  # the shared tiny run's flags (conftest.TINY_RUNS)


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def tiny_run(tiny_runs):
    """The shared tiny mlp run (read-only: the tests copy it to change it)."""
    return tiny_runs("mlp")


def test_config_prints_what_the_run_records(tiny_run, capsys):
    assert cli.main(["config", "mlp", *TINY_SETS]) == 0
    printed = json.loads(capsys.readouterr().out)
    recorded = json.loads((tiny_run / "resolved.json").read_text())
    assert printed == recorded
    assert recorded["record_format"] == configs.RECORD_FORMAT and recorded["jaxgen_version"]
    assert None not in recorded.values() and "channels" not in recorded  # concrete, own arch's keys only


@pytest.mark.parametrize("argv", [["gan", "--set", "arch=conv"], ["gan", "--data", "toy:grid25"], ["ae"],
                                  ["mlp", "--set", "arch=conv"], ["mlp", "--data", "toy:moons"]])  # fmt: skip
def test_config_shows_real_values_not_placeholders(argv, capsys):
    assert cli.main(["config", *argv]) == 0
    out = json.loads(capsys.readouterr().out)
    cls = configs.CONFIGS[out["task"]]
    for key in config.optional_fields(cls) & set(out):
        assert not legacy._placeholder(key, out[key]), (key, out[key])
    if argv[:3] == ["gan", "--set", "arch=conv"]:
        got = (out["steps"], out["batch_size"], out["lr"], out["d_lr"], out["r1"])
        assert got == (12000, 64, 1e-3, 4e-3, 1.0)
        assert out["d_channels"] == [32, 64, 128] and "hidden" not in out and "init" not in out
    if argv == ["gan", "--data", "toy:grid25"]:
        got = (out["steps"], out["latent_dim"], out["r1"], out["pack"], out["d_hidden"])
        assert got == (60000, 2, 0.3, 2, out["hidden"])


def test_a_key_of_another_architecture_is_refused():
    with pytest.raises(UserError, match="hidden does nothing for arch=conv"):
        configs.make_config("mlp", {"arch": "conv", "hidden": (3,)})
    with pytest.raises(UserError, match="d_channels does nothing for arch=mlp"):
        configs.make_config("gan", {"d_channels": (8,)})
    assert "init" not in config.fields(configs.CONFIGS["gan"])  # no GAN network ever read it


class _Data:
    """What resolve reads of a dataset, without loading one."""

    def __init__(self, spec, kind, family, n=1000, dim=2, shape=(28, 28, 1)):
        self.spec, self.kind, self.family = spec, kind, family
        self.train = {"label": np.zeros(n, np.int32)}
        self.info = {"dim": dim}
        self.shape = shape if kind == "image" else (dim,)


DATA = [_Data("embedded", "image", "digits"), _Data("fashion", "image", "clothes", 60000),
        _Data("idx:x", "image", "digits", 60000), _Data("toy:ring8", "toy", "toy"),
        _Data("toy:grid25", "toy", "toy"), _Data("folder:emoji", "image", "colour", 3383, shape=(32, 32, 3)),
        _Data("folder:big", "image", "colour", 500, shape=(64, 64, 3)),
        _Data("npz:grey", "image", "grey", 500, shape=(16, 16, 1))]  # fmt: skip


@pytest.mark.parametrize("task", sorted(configs.CONFIGS))
def test_every_table_fills_every_key_for_every_data_and_arch(task):
    cls = configs.CONFIGS[task]
    for arch in cls.ARCHS:
        for ds in DATA:
            if (ds.kind == "toy" and (cls.ARCHS[arch].images_only or task == "ae")) or (
                task == "mlp" and ds.spec == "toy:grid25"
            ):
                continue
            cfg = configs.resolve(configs.make_config(task, {"arch": arch}), ds)
            body = config.record(cfg)
            assert None not in body.values(), (task, arch, ds.spec, body)
            assert configs.resolve(cfg, ds) == cfg  # once resolved, nothing is chosen again


def test_every_default_row_says_why_and_links_a_measurement():
    def slug(heading):
        return re.sub(r"[^\w\- ]", "", heading.strip().lstrip("#").strip().lower()).replace(" ", "-")

    for cls in configs.CONFIGS.values():
        for row in cls.DEFAULTS:
            assert row.why and row.values
            page, _, anchor = row.link.partition("#")
            text = (REPO / page).read_text()
            anchors = {slug(line) for line in text.splitlines() if line.startswith("#")}
            assert anchor in anchors, row.link
            assert set(row.values) <= set(config.fields(cls)), row.values


def test_help_shows_the_same_table(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "gan", "--help"])
    out = capsys.readouterr().out
    assert (
        "data *, arch conv: channels 32,64, steps 12000, batch_size 64" in out
        and "docs/defaults.md#dcgan" in out
    )
    assert re.search(r"lr\s+float\s+for data", out)


def test_a_new_default_does_not_change_an_existing_run(tmp_path, monkeypatch, capsys):
    wd = tmp_path / "run"
    sets = ["--set", "hidden=8", "--set", "ckpt_every=5", "--set", "log_every=5", "--set", "batch_size=16"]
    toy = configs.CONFIGS["mlp"].DEFAULTS[-1]
    toy = dataclasses.replace(toy, values={**toy.values, "steps": 5})
    monkeypatch.setattr(configs.CONFIGS["mlp"], "DEFAULTS", (*configs.CONFIGS["mlp"].DEFAULTS[:-1], toy))
    argv = ["train", "mlp", "--workdir", str(wd), "--data", "toy:moons", *sets, "--no-progress", "--no-plots"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    newer = dataclasses.replace(toy, values={**toy.values, "steps": 10})  # today's code would train 10 steps
    monkeypatch.setattr(configs.CONFIGS["mlp"], "DEFAULTS", (*configs.CONFIGS["mlp"].DEFAULTS[:-1], newer))
    assert cli.main(argv) == 0  # the same command: the run as recorded, already complete
    assert last_json(capsys.readouterr().out)["step"] == 5
    assert json.loads((wd / "resolved.json").read_text())["steps"] == 5
    assert cli.main([*argv, "--set", "steps=10"]) == 0  # extending it is the user's to ask
    assert last_json(capsys.readouterr().out)["step"] == 10


def test_a_changed_key_on_resume_names_a_fix_that_works(tiny_run, tmp_path, capsys):
    wd = tmp_path / "run"
    shutil.copytree(tiny_run, wd)
    assert cli.main(["train", "mlp", "--workdir", str(wd), *TINY_SETS, "--set", "lr=0.5", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "lr=0.001 (its resolved.json), not lr=0.5: drop --set lr" in err
    sets = [*TINY_SETS, "--set", "steps=30", "--no-plots", "--no-progress"]
    assert cli.main(["train", "mlp", "--workdir", str(wd), *sets]) == 0  # the fix: without --set lr
    assert last_json(capsys.readouterr().out)["step"] == 30


def test_a_record_that_disagrees_with_the_checkpoint_is_not_called_damage(tiny_run, tmp_path, capsys):
    wd = tmp_path / "run"
    shutil.copytree(tiny_run, wd)
    record = json.loads((wd / "resolved.json").read_text())
    (wd / "resolved.json").write_text(json.dumps({**record, "hidden": [64]}))
    assert cli.main(["eval", str(wd)]) == 2
    err = capsys.readouterr().err
    assert "code/record mismatch, not damage" in err and "[16] in the checkpoint, [64] in the model" in err


# ---------------------------------------------------------------- runs written by 0.1.0 (e5841b5)


@pytest.mark.parametrize("name", ["gan-conv", "mlp-conv", "vae-conv"])
def test_a_run_written_by_0_1_0_evaluates_as_it_ran(name, tmp_path, capsys):
    wd = tmp_path / name
    shutil.copytree(LEGACY / name, wd)
    before = {p: p.read_bytes() for p in wd.rglob("*") if p.is_file()}
    task, spec, cfg = runs.load_run(wd)
    assert None not in config.record(cfg).values()
    if name == "gan-conv":  # empty d_channels meant G's channels until dae395f: a two-stage D
        today = configs.make_config("gan", {"arch": "conv", "channels": (4, 8)})
        assert cfg.d_channels == (4, 8)
        assert configs.resolve(today, _Data("embedded", "image", "digits")).d_channels == (4, 8, 16)
    if name == "mlp-conv":
        assert cfg.tta == "none" and cfg.warmup_steps == 2
    likelihood = ["--nll-k", "3"] if name.startswith("vae") else []  # a VAE's likelihood too, cheaply
    assert cli.main(["eval", str(wd), *likelihood]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["step"] == 20 and out["task"] == task
    assert out.get("nll_is_k") == (3 if likelihood else None)
    assert {p: p.read_bytes() for p in wd.rglob("*") if p.is_file()} == before  # a reader writes nothing


def test_a_run_written_by_0_1_0_samples_and_resumes(tmp_path, capsys):
    wd = tmp_path / "gan-conv"
    shutil.copytree(LEGACY / "gan-conv", wd)
    assert cli.main(["sample", str(wd), "--n", "3", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape[0] == 3
    capsys.readouterr()
    argv = ["train", "gan", "--workdir", str(wd), "--set", "arch=conv", "--set", "steps=40", "--set",
            "ckpt_every=20", "--no-progress", "--no-plots"]  # fmt: skip
    # at XLA's default optimisation level, as the old code ran (conftest lowers it for the suite's speed)
    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if "optimization_level" not in f)
    proc = subprocess.run([sys.executable, "-m", "jaxgen.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, "XLA_FLAGS": flags}, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = last_json(proc.stdout)
    # the bits e5841b5's own code reaches resuming this run to step 40 (tests/fixtures: provenance)
    assert out["step"] == 40 and out["params_sha256"].startswith("b7c2d09802bd7ece27f6bf86b3568dae")
    record = json.loads((wd / "resolved.json").read_text())
    assert record["d_channels"] == [4, 8] and record["steps"] == 40 and record["record_format"] == 2


def test_a_0_1_0_config_json_reads_as_what_was_asked(tmp_path):
    old = json.loads((LEGACY / "gan-conv" / "config.json").read_text())
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    overrides, spec = configs.read_file(configs.CONFIGS["gan"], str(path))
    assert spec == "embedded" and "d_channels" not in overrides and "r1" in overrides
    assert "lr" not in overrides and "init" not in overrides and "hidden" not in overrides
    assert table  # the module the tables live in

"""The runnable lecture walkthrough: every claim of the lecture shown on real runs, with the command.

    python -m jaxgen.lecture [--quick] [--out DIR] [--md FILE] [--reuse]
    make walkthrough            # figures and walkthrough.json in docs/walkthrough/, docs/walkthrough.md
    make walkthrough QUICK=1    # the same path on a tiny preset, into runs/walkthrough-quick/

Each section runs its `jaxgen ...` commands in this process through `jaxgen.cli.main` (the console
script's own code), reads the JSON line each prints, adds the measurements no command makes (the hand
chain rule against jax.grad, a coin and a Gaussian against samples, the far probe of the classifier
against the GAN's density), copies the figures into DIR and writes DIR/walkthrough.json. The markdown is
rendered from that JSON alone (jaxgen.lecture.markdown), so its numbers are the JSON's.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxgen import cli, runs, runtime
from jaxgen.bench import activations as bench_activations
from jaxgen.errors import UserError
from jaxgen.lecture import markdown
from jaxgen.lecture.presets import BENCHES, FULL, QUICK, Preset

REPO = Path(__file__).resolve().parents[2]
TEST5K = REPO.parent / "shared" / "data" / "mnist-test5k"  # real MNIST test digits, when beside the repo
EMOJI = REPO.parent / "shared" / "data" / "emoji-google"  # 64 x 64 colour emoji (section 8), never copied in
TOY = "toy:moons"
TOY_MLP = ["--set", "hidden=64,64", "--set", "dropout=0", "--set", "label_smoothing=0"]


def _shown(path: Path) -> str:
    """A path as the reader types it: relative to the repository when inside it or in ../shared beside it
    (the shared data); anything else (a scratch folder such as /tmp/...) stays absolute."""
    path = Path(path).absolute()
    for root in (REPO, REPO.parent / "shared"):
        if path == root or root in path.parents:
            return os.path.relpath(path, REPO)
    return str(path)


class Runner:
    """Runs jaxgen commands in process and records each (section, command, seconds)."""

    def __init__(self, out: Path, runs: Path, preset: Preset, reuse: bool):
        self.out, self.runs, self.preset, self.reuse = out, runs, preset, reuse
        self.commands: list[dict[str, Any]] = []

    def jaxgen(self, section: str, *argv: str) -> Any:
        """`jaxgen ARGV`: the parsed JSON line it prints (its text for backprop)."""
        shown = "jaxgen " + shlex.join(argv)
        print(f"[walkthrough] {shown}", file=sys.stderr, flush=True)
        buf = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            status = cli.main(list(argv))
        wall = time.perf_counter() - t0
        if status != 0:
            raise UserError(f"walkthrough step failed (status {status}): {shown}; see the message above")
        self.commands.append({"section": section, "command": shown, "wall_s": round(wall, 2)})
        text = buf.getvalue().strip()
        return text if argv[0] == "backprop" else json.loads(text.splitlines()[-1])

    def run_dir(self, name: str) -> Path:
        """A fresh run directory (kept with --reuse: train then resumes, i.e. re-reports, a finished run)."""
        path = self.runs / name
        if path.exists() and not self.reuse:
            shutil.rmtree(path)
        return path

    def train(
        self, section: str, task: str, name: str, *args: str, steps: int | None = None, ckpt: bool = True
    ) -> dict:
        """`jaxgen train TASK --workdir RUNS/NAME ARGS` with the preset's steps; the summary.
        ckpt=False: one checkpoint, at the end (no progress snapshots needed)."""
        sets = []
        if steps is not None:
            sets += ["--set", f"steps={steps}"]
            every = self.preset.ckpt_every if ckpt else steps
            if every is not None:
                sets += ["--set", f"ckpt_every={every}"]
        return self.jaxgen(section, "train", task, "--workdir", _shown(self.run_dir(name)), *args, *sets)

    def figure(self, src: Path, name: str) -> str:
        """Copy a run's figure into the output folder as NAME; returns NAME."""
        shutil.copyfile(src, self.out / name)
        return name


def test_spec(preset: Preset = FULL) -> str:
    """The real MNIST test digits when they are beside the repository (and the preset reads them), else the
    embedded held-out 500."""
    found = (TEST5K / "t10k-images-idx3-ubyte.gz").exists()
    return f"idx:{_shown(TEST5K)}" if found and preset.real_test else "embedded"


# ---------------------------------------------------------------- sections


def section_backprop(r: Runner) -> dict:
    """The 2-2-2 worked example by hand (`jaxgen backprop`) against jax.grad, and its error over training."""
    from jaxgen.lecture import figures

    text = r.jaxgen("backprop", "backprop", "--iters", str(r.preset.backprop_iters))
    numbers = figures.backprop_against_autodiff(r.preset.backprop_iters, r.out / "backprop.png")
    return {"text": text, **numbers, "figures": ["backprop.png"]}


def section_nonlinear(r: Runner, bench: dict) -> dict:
    """The same MLP on two moons, linear against ReLU; the deep linear MNIST net against softmax
    regression (from the activation benchmark)."""
    from jaxgen.lecture import figures

    steps = r.preset.mlp_toy_steps
    lin = r.train("nonlinear", "mlp", "mlp-moons-linear", "--data", TOY, *TOY_MLP,
                  "--set", "activation=linear", steps=steps, ckpt=False)  # fmt: skip
    relu = r.train("nonlinear", "mlp", "mlp-moons", "--data", TOY, *TOY_MLP, steps=steps, ckpt=False)
    collapse = figures.linear_vs_relu(Path(lin["workdir"]), Path(relu["workdir"]), r.out / "nonlinear.png")
    return {
        "linear": {k: lin[k] for k in ("test_accuracy", "test_loss", "step", "wall_s")},
        "relu": {k: relu[k] for k in ("test_accuracy", "test_loss", "step", "wall_s", "workdir")},
        "toy_composed": collapse,
        "mnist_collapse": bench.get("linear_collapse"),
        "figures": ["nonlinear.png"],
    }


def section_activations(r: Runner) -> dict:
    """`jaxgen bench activations --quick` (or the tiny preset): gradient flow, dead units, accuracy."""
    out = r.run_dir("bench-activations")
    if r.preset.bench == "quick":
        report = r.jaxgen("activations", "bench", "activations", "--quick", "--out", _shown(out))
        report = json.loads((out / "activations.json").read_text())
    else:
        t0 = time.perf_counter()
        report = bench_activations.run(BENCHES[r.preset.bench], out)
        shown = f"bench_activations.run(presets.{r.preset.bench.upper()}_BENCH, {_shown(out)!r})"
        r.commands.append(
            {"section": "activations", "command": shown, "wall_s": round(time.perf_counter() - t0, 2)}
        )
    figs = [
        r.figure(out / f, f"activations-{f}")
        for f in ("grad_flow_init.png", "dead_saturated.png", "accuracy.png")
    ]
    acts = report["activations"]
    keep = ("init", "grad_ratio_first_last", "dead_fraction", "dead_fraction_init", "saturated_pair_fraction",
            "test_accuracy")  # fmt: skip
    return {
        "mode": report["config"]["mode"],
        "config": {k: report["config"][k] for k in ("depth", "width", "seeds", "steps", "lr", "batch_size")},
        "test_data": report["test_data"],
        "activations": {n: {k: a.get(k) for k in keep} for n, a in acts.items()},
        "claims": report["claims"],
        "linear_collapse": report.get("linear_collapse"),
        "bench_wall_s": report["wall_s"],
        "full_mode": {k: getattr(bench_activations.FULL, k) for k in ("depth", "seeds", "steps")},
        "figures": figs,
    }


def section_distributions(r: Runner, ae2: dict) -> dict:
    """A coin and a Gaussian against samples; digits as points in 784 dimensions and as 2-D codes."""
    from jaxgen.lecture import figures

    key = jax.random.key(0)
    coin = figures.coin_and_gaussian(key, r.preset.coin_flips, r.preset.gauss_samples,
                                     r.out / "distributions.png")  # fmt: skip
    points = figures.digits_as_points(Path(ae2["workdir"]), ae2["spec"], r.out / "digits_as_points.png")
    return {**coin, "digits": points, "figures": ["distributions.png", "digits_as_points.png"]}


def section_discgen(r: Runner, mlp_dir: Path) -> dict:
    """The moons classifier's p(y | x) beside the GAN's density on the same data; the far probe."""
    from jaxgen.lecture import discgen

    gan = r.train("discgen", "gan", "gan-moons", "--data", TOY, steps=r.preset.gan_toy_steps)
    clf, clf_state, *_ = runs.restore_for_eval(mlp_dir)
    g, g_state, _, _, ds, *_ = runs.restore_for_eval(Path(gan["workdir"]))
    numbers, arrays = discgen.measure(
        clf, clf_state.params, g, g_state.params, ds, runtime.eval_key(0), n_samples=r.preset.far_samples
    )
    discgen.discgen_figure(clf, clf_state.params, g, arrays, numbers, ds, r.out / "discgen.png")
    figs = [
        "discgen.png",
        r.figure(Path(gan["workdir"]) / "plots" / "progress.png", "gan-moons-progress.png"),
    ]
    gan_keys = ("step", "wall_s", "test_modes_covered", "test_modes_total", "test_hq_fraction",
                "test_d_real_mean", "test_d_fake_mean")  # fmt: skip
    return {"far_probe": numbers, "gan": {k: gan.get(k) for k in gan_keys}, "figures": figs}


def section_gan(r: Runner) -> dict:
    """The 2014 game on a 1-D Gaussian (D against D*, D(G(z)) -> ½) and on MNIST (samples through
    training)."""
    g1 = r.train("gan", "gan", "gan-gauss1d", "--data", "toy:gauss1d", steps=r.preset.gan_toy_steps)
    mn = r.train("gan", "gan", "gan-mnist", steps=r.preset.gan_mnist_steps)
    p1, pm = Path(g1["workdir"]) / "plots", Path(mn["workdir"]) / "plots"
    figs = [
        r.figure(p1 / "gan_curves.png", "gan-gauss1d-curves.png"),
        r.figure(p1 / "dstar.png", "gan-gauss1d-dstar.png"),
        r.figure(pm / "progress.png", "gan-mnist-progress.png"),
        r.figure(pm / "gan_curves.png", "gan-mnist-curves.png"),
    ]
    keys = ("step", "wall_s", "test_d_real_mean", "test_d_fake_mean", "test_dstar_distance", "train_d_loss",
            "train_g_loss", "train_d_real", "train_d_fake")  # fmt: skip
    return {
        "gauss1d": {k: g1.get(k) for k in keys},
        "mnist": {k: mn.get(k) for k in keys},
        "log4": float(np.log(4.0)),
        "figures": figs,
    }


def section_autoencoder(r: Runner) -> tuple[dict, dict]:
    """The default AE (reconstructions, blur, decoded likely codes), a 2-D one (codes by digit) and the
    convolutional AE at the default's latent size (its reconstructions beside the MLP's)."""
    spec = test_spec(r.preset)
    out: dict[str, Any] = {"test_data": spec, "figures": []}
    for name, args in (
        ("ae", ()),
        ("ae-latent2", ("--set", "latent_dim=2")),
        ("ae-conv", ("--set", "arch=conv", *r.preset.conv_ae)),
    ):
        # no figures at the end of training: `jaxgen plot` draws them on the real test digits below
        summary = r.train("autoencoder", "ae", name, *args, "--no-plots", steps=r.preset.ae_steps, ckpt=False)
        wd = summary["workdir"]
        scores = r.jaxgen("autoencoder", "eval", _shown(Path(wd)), "--data", spec)
        r.jaxgen("autoencoder", "plot", _shown(Path(wd)), "--data", spec)
        latent = json.loads((Path(wd) / "resolved.json").read_text())["latent_dim"]
        out[name] = {"train_wall_s": summary["wall_s"], "step": summary["step"], "workdir": wd, "spec": spec,
                     "latent_dim": latent,
                     **{k: v for k, v in scores.items() if isinstance(v, int | float)}}  # fmt: skip
        plots = Path(wd) / "plots"
        wanted = {
            "ae": ("reconstructions.png", "samples.png"),
            "ae-latent2": ("latent_space.png", "latent_grid.png"),
            "ae-conv": ("reconstructions.png",),  # beside the MLP's: the same digits, the conv decoder
        }[name]
        out["figures"] += [r.figure(plots / f, f"{name}-{f}") for f in wanted]
    return out, out["ae-latent2"]


def section_emoji(r: Runner) -> dict:
    """A 64 x 64 x 3 emoji as one point in 12,288 dimensions: the image as its numbers, nearest neighbours
    in pixels against a conv VAE's codes, a straight walk in each, DCGAN samples beside real emoji."""
    from jaxgen.lecture import colour

    if not (EMOJI / "train").is_dir():
        return {"skipped": f"{_shown(EMOJI)} not found beside the repository", "figures": []}
    root = EMOJI
    if r.preset.emoji_subset:  # the tests: a few emoji per category, linked from the folder
        root = colour.subset_folder(EMOJI, r.run_dir("emoji-subset"), *r.preset.emoji_subset)
    spec = f"folder:{_shown(root)}"
    conv = ("--data", spec, "--set", "arch=conv")
    defaults = r.jaxgen("emoji", "config", "gan", *conv)  # the DCGAN's defaults for this data
    vae = r.train("emoji", "ae", "emoji-vae", *conv, "--set", "variational=true", *r.preset.emoji_vae,
                  "--no-plots", steps=r.preset.emoji_vae_steps, ckpt=False)  # fmt: skip
    gan = r.train("emoji", "gan", "emoji-dcgan", *conv, *r.preset.emoji_gan, "--no-plots",
                  steps=r.preset.emoji_gan_steps, ckpt=False)  # fmt: skip
    vae_dir, gan_dir = Path(vae["workdir"]), Path(gan["workdir"])
    t0 = time.perf_counter()
    out: dict[str, Any] = {
        "spec": spec,
        "subset": list(r.preset.emoji_subset or ()) or None,
        "vector": colour.emoji_as_vector(root, spec, r.out / "emoji-vector.png"),
        "neighbours": colour.neighbours(root, spec, vae_dir, r.out / "emoji-neighbours.png"),
        "walk": colour.walk(root, spec, vae_dir, r.out / "emoji-walk.png"),
        "dcgan": colour.dcgan_samples(gan_dir, r.out / "emoji-dcgan.png"),
    }
    r.commands.append({"section": "emoji", "command": "the four figures (jaxgen/lecture/colour.py)",
                       "wall_s": round(time.perf_counter() - t0, 2)})  # fmt: skip
    resolved = json.loads((vae_dir / "resolved.json").read_text())
    vae_keys = ("step", "wall_s", "test_recon_bce", "test_kl", "test_elbo_bits_per_dim",
                "test_latent_knn_accuracy", "test_pca_knn_accuracy", "test_sharpness_ratio")  # fmt: skip
    out["vae"] = {**{k: vae.get(k) for k in vae_keys},
                  **{k: resolved[k] for k in ("image_size", "latent_dim", "channels", "steps")}}  # fmt: skip
    out["gan"] = {k: gan.get(k) for k in ("step", "wall_s", "test_d_real_mean", "test_d_fake_mean")}
    out["gan"]["default_steps"], out["gan"]["default_channels"] = defaults["steps"], defaults["channels"]
    out["figures"] = ["emoji-vector.png", "emoji-neighbours.png", "emoji-walk.png", "emoji-dcgan.png"]
    return out


# ---------------------------------------------------------------- driver


def _report_head(preset: Preset) -> dict[str, Any]:
    """What the page names before the sections: the preset, the device, jax, the test data, the command."""
    d = jax.devices()[0]
    return {
        "preset": preset.name,
        "device": runtime.device_name(),
        "device_repr": str(d),
        "platform": d.platform,
        "jax": jax.__version__,
        "cpu_count": os.cpu_count(),
        "mnist_test": test_spec(preset),
        "command": "make walkthrough" + (" QUICK=1" if preset.name != "full" else ""),
        "sections": {},
    }


def run_sections(r: Runner) -> dict[str, dict]:
    """Every section, in an order that lets later ones reuse earlier runs, from the repository root (the
    commands name paths relative to the repository, as the reader runs them)."""
    s: dict[str, dict] = {}
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        s["backprop"] = section_backprop(r)
        s["activations"] = section_activations(r)
        s["nonlinear"] = section_nonlinear(r, s["activations"])
        s["autoencoder"], ae2 = section_autoencoder(r)
        s["distributions"] = section_distributions(r, ae2)
        s["discgen"] = section_discgen(r, Path(s["nonlinear"]["relu"]["workdir"]))
        s["gan"] = section_gan(r)
        s["emoji"] = section_emoji(r)
    finally:
        os.chdir(cwd)
    return s


def run(preset: Preset, out: str | Path, md: str | Path | None = None, *, reuse: bool = False) -> dict:
    """Every section; writes OUT/walkthrough.json, the markdown and the figures."""
    t_start = time.perf_counter()
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: name a folder")
    out.mkdir(parents=True, exist_ok=True)
    md_path = Path(md).absolute() if md else out / "walkthrough.md"
    if md_path.suffix != ".md":
        raise UserError(f"--md {md} must name a .md file")
    run_root = (REPO / "runs" / "walkthrough") if preset.name == "full" else out / "runs"
    r = Runner(out, run_root, preset, reuse)
    report = _report_head(preset)
    report["sections"] = run_sections(r)
    report["commands"] = r.commands
    report["wall_s"] = round(time.perf_counter() - t_start, 1)
    (out / "walkthrough.json").write_text(json.dumps(report, indent=1) + "\n")
    render(out, md)
    print(f"[walkthrough] {report['wall_s']:.0f} s: {md_path}, {out / 'walkthrough.json'}", file=sys.stderr)
    return report


def render(out: str | Path, md: str | Path | None = None) -> Path:
    """Write the markdown from OUT/walkthrough.json alone (figure links relative to the markdown file)."""
    out = Path(out).absolute()
    source = out / "walkthrough.json"
    if not source.exists():
        raise UserError(f"{source} not found: run python -m jaxgen.lecture (or make walkthrough) first")
    md_path = Path(md).absolute() if md else out / "walkthrough.md"
    report = json.loads(source.read_text())
    md_path.write_text(markdown.render(report, os.path.relpath(out, md_path.parent)))
    return md_path


def main(argv: list[str] | None = None) -> int:
    """`python -m jaxgen.lecture`: returns the exit status (2 and one line for a mistake)."""
    p = cli._Parser(prog="python -m jaxgen.lecture", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the tiny preset (a few minutes on a 2-core CPU)")
    p.add_argument("--out", default=None, help="figures and walkthrough.json (default: docs/walkthrough, "
                   "or runs/walkthrough-quick with --quick)")  # fmt: skip
    p.add_argument("--md", default=None, help="where the markdown goes (default: OUT/walkthrough.md)")
    p.add_argument("--reuse", action="store_true", help="keep finished runs (re-report them), do not retrain")
    p.add_argument("--render", action="store_true", help="only rewrite the markdown from OUT's JSON")
    try:
        args = p.parse_args(argv)
        out = args.out or str(REPO / ("runs/walkthrough-quick" if args.quick else "docs/walkthrough"))
        if args.render:
            render(out, args.md)
        else:
            run(QUICK if args.quick else FULL, out, args.md, reuse=args.reuse)
    except UserError as err:
        print(f"jaxgen walkthrough: error: {err}", file=sys.stderr)
        return 2
    return 0

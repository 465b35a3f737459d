"""The runnable lecture: `make walkthrough QUICK=1` end to end, and the committed page read from its JSON."""

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from jaxgen.lecture import markdown, presets, walkthrough

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "walkthrough"
SECTIONS = ("backprop", "nonlinear", "activations", "distributions", "discgen", "gan", "autoencoder", "emoji")
LATER = {"emoji"}  # sections a page rendered before they joined the walkthrough may lack (it says so)
EMOJI_FOUND = (walkthrough.EMOJI / "train").is_dir()


def _check_page(page: str, report: dict, page_dir: Path, prefix: str) -> None:
    """Every figure the JSON lists exists, is linked from the page, and the page is the JSON rendered."""
    figdir = page_dir / prefix
    assert set(SECTIONS) - LATER <= set(report["sections"]) <= set(SECTIONS)
    for name in report["sections"]:
        for fig in report["sections"][name]["figures"]:
            path = figdir / fig
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000, path
            assert f"]({prefix}/{fig})" in page, fig
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", page)
    assert links and all((page_dir / link).exists() for link in links), links
    assert page == markdown.render(report, prefix)
    assert report["device"] in page and report["jax"] in page and report["device_repr"] in page


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The walkthrough's whole path in process on the smoke preset (`make walkthrough QUICK=1` runs the same
    code with more steps: test_make_walkthrough_quick_is_this_command pins that command)."""
    out = tmp_path_factory.mktemp("walkthrough-smoke")
    report = walkthrough.run(presets.SMOKE, out)
    assert report == json.loads((out / "walkthrough.json").read_text())
    return out, report


def test_make_walkthrough_quick_is_this_command():
    if shutil.which("make") is None:
        pytest.skip("no make here")
    dry = subprocess.run(["make", "-n", "walkthrough", "QUICK=1"], capture_output=True, text=True, cwd=REPO)
    assert dry.returncode == 0, dry.stderr
    assert "-m jaxgen.lecture --quick --out runs/walkthrough-quick" in dry.stdout
    full = subprocess.run(["make", "-n", "walkthrough"], capture_output=True, text=True, cwd=REPO).stdout
    assert "-m jaxgen.lecture --out docs/walkthrough --md docs/walkthrough.md" in full


def test_quick_walkthrough_end_to_end(quick):
    out, report = quick
    assert report["preset"] == "smoke" and report["wall_s"] > 0
    _check_page((out / "walkthrough.md").read_text(), report, out, ".")
    commands = [c["command"] for c in report["commands"]]
    for task in ("mlp", "ae", "gan"):
        assert any(c.startswith(f"jaxgen train {task} ") for c in commands), task
    assert any(c.startswith("jaxgen backprop") for c in commands)
    # the autoencoder section sets the conv AE's reconstructions beside the MLP's, with both sharpness ratios
    conv = report["sections"]["autoencoder"]["ae-conv"]
    assert "ae-conv-reconstructions.png" in report["sections"]["autoencoder"]["figures"]
    assert f"sharpness **{conv['sharpness_ratio']:.3f}**" in (out / "walkthrough.md").read_text()
    # the quick runs live in the scratch folder, never in the repository's runs/ or docs/
    assert all(str(out / "runs") in c for c in commands if "--workdir" in c)


def test_quick_walkthrough_numbers(quick):
    _, report = quick
    s = report["sections"]
    assert s["backprop"]["grad_max_abs_diff_vs_jax_grad"] < 1e-12
    assert abs(s["backprop"]["E_total_first"] - 0.298371109) < 1e-9
    fp = s["discgen"]["far_probe"]
    assert fp["probe_min_distance_to_data"] >= 2.0 - 1e-6
    assert fp["density_true_far_mean"] < 1e-100 and 0.5 <= fp["confidence_far_mean"] <= 1
    coin = s["distributions"]["coin"]
    assert abs(coin["p1_empirical"] - 0.5) < 5 * coin["standard_error"]
    assert s["nonlinear"]["toy_composed"]["composed_logits_max_rel_diff"] < 1e-4


def _finite_numbers(tree, where: str = "emoji") -> int:
    """How many numbers `tree` holds; every one of them finite."""
    if isinstance(tree, dict):
        return sum(_finite_numbers(v, f"{where}.{k}") for k, v in tree.items())
    if isinstance(tree, list | tuple):
        return sum(_finite_numbers(v, f"{where}[{i}]") for i, v in enumerate(tree))
    if isinstance(tree, bool) or not isinstance(tree, int | float):
        return 0
    assert math.isfinite(tree), where
    return 1


def test_quick_walkthrough_emoji_section(quick):
    """Section 8 on a few emoji per category (linked from ../shared/data/emoji-google): every figure drawn,
    every number finite, the page quoting the neighbour shares; skipped, and saying so, without the folder."""
    out, report = quick
    em = report["sections"]["emoji"]
    page = (out / "walkthrough.md").read_text()
    assert "## 8. " in page
    if not EMOJI_FOUND:
        assert em["skipped"] and not em["figures"] and "*Skipped in this run*" in page
        pytest.skip(f"{walkthrough.EMOJI} not found")
    assert em["figures"] == ["emoji-vector.png", "emoji-neighbours.png", "emoji-walk.png", "emoji-dcgan.png"]
    assert all((out / f).stat().st_size > 10_000 for f in em["figures"])
    assert _finite_numbers(em) > 40
    vec, nb = em["vector"], em["neighbours"]
    assert vec["shape"] == [64, 64, 3] and vec["dim"] == 12288 and vec["code"] == "1f600"
    assert em["walk"]["from"] == "1f600" and em["walk"]["to"] == "1f431"
    assert nb["pixel_dim"] == 12288 and nb["latent_dim"] == 8 and nb["k"] == 5
    assert len(nb["queries"]) == 5  # every named query is in the linked subset
    for space in ("pixels", "latent"):
        assert 0 <= nb["share_same_category"][space] <= 1
        assert f"{100 * nb['share_same_category'][space]:.1f} %" in page
    assert em["dcgan"]["image_size"] == 32 and em["gan"]["default_steps"] > em["gan"]["step"]
    commands = [c["command"] for c in report["commands"] if c["section"] == "emoji"]
    vae = [c for c in commands if c.startswith("jaxgen train ae ") and "variational=true" in c]
    gan = [c for c in commands if c.startswith("jaxgen train gan ")]
    assert vae and gan and all("--set arch=conv" in c for c in vae + gan)
    # the data are linked, never copied: the subset's files are symbolic links into the emoji folder
    subset = out / "runs" / "emoji-subset"
    files = list(subset.rglob("*.png"))
    assert files and all(p.is_symlink() for p in files)


def test_emoji_section_skips_without_the_folder(tmp_path, monkeypatch):
    """No emoji folder: the section trains nothing, and the page says it was skipped and why."""
    monkeypatch.setattr(walkthrough, "EMOJI", tmp_path / "absent")
    r = walkthrough.Runner(tmp_path, tmp_path / "runs", presets.SMOKE, reuse=False)
    em = walkthrough.section_emoji(r)
    assert em == {"skipped": f"{tmp_path / 'absent'} not found beside the repository", "figures": []}
    assert not r.commands and not (tmp_path / "runs").exists()
    page = "\n".join(markdown._emoji({"sections": {"emoji": em}, "commands": []}, "."))
    assert f"*Skipped in this run*: {em['skipped']}." in page


def test_render_rewrites_the_page_from_the_json(quick, tmp_path):
    out, report = quick
    page = walkthrough.render(out, tmp_path / "page.md")
    assert page.read_text() == markdown.render(report, os.path.relpath(out, tmp_path))


def test_committed_walkthrough_is_its_json_rendered():
    """docs/walkthrough.md holds exactly the numbers of docs/walkthrough/walkthrough.json."""
    report = json.loads((DOCS / "walkthrough.json").read_text())
    assert report["preset"] == "full"
    _check_page((REPO / "docs" / "walkthrough.md").read_text(), report, REPO / "docs", "walkthrough")
    fp = report["sections"]["discgen"]["far_probe"]
    assert fp["classifier_test_accuracy"] >= 0.99  # the target for the two-class toy
    assert fp["density_gen_far_mean"] < 1e-3 * fp["density_gen_data_mean"]
    assert report["wall_s"] < 20 * 60


def test_walkthrough_mistakes_are_one_line(tmp_path, capsys):
    assert walkthrough.main(["--render", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "walkthrough.json not found" in err and "\n" not in err
    (tmp_path / "file").write_text("x")
    assert walkthrough.main(["--quick", "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_results_page_quotes_the_committed_walkthrough():
    """The results page's summary of the walkthrough quotes docs/walkthrough/walkthrough.json, not older
    runs; the README links the walkthrough."""
    assert "(docs/walkthrough.md)" in (REPO / "README.md").read_text()
    readme = (REPO / "docs" / "results.md").read_text()
    assert "(walkthrough.md)" in readme and "make walkthrough QUICK=1" in readme
    r = json.loads((DOCS / "walkthrough.json").read_text())
    s = r["sections"]
    fp, ae = s["discgen"]["far_probe"], s["autoencoder"]
    ae2 = ae["ae-latent2"]
    quoted = [
        f"{s['backprop']['grad_max_abs_diff_vs_jax_grad']:.1e}",
        f"{100 * s['nonlinear']['linear']['test_accuracy']:.2f} %",
        f"{100 * s['nonlinear']['relu']['test_accuracy']:.2f} %",
        f"{fp['confidence_far_mean']:.4f} confident",
        f"{fp['density_gen_far_mean']:.1e}",
        f"D(G(z)) = {s['gan']['gauss1d']['test_d_fake_mean']:.3f}",
        f"accuracy {ae2['latent_knn_accuracy']:.3f} against PCA's {ae2['pca_knn_accuracy']:.3f}",
        f"sharpness {ae['ae']['sharpness_ratio']:.3f}",
        f"{r['wall_s'] / 60:.1f} minutes",
    ]
    flat = " ".join(readme.split())
    for q in quoted:
        assert q in flat, q

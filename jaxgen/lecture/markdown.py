"""docs/walkthrough.md rendered from walkthrough.json alone: every number in the text is a JSON value."""

from __future__ import annotations

from typing import Any


def _pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f} %"


def _acc(a: dict | None) -> str:
    return "–" if not a else f"{100 * a['mean']:.2f} ± {100 * a['std']:.2f} %"


def _cmds(report: dict, section: str, contains: str = "") -> str:
    rows = [c for c in report["commands"] if c["section"] == section and contains in c["command"]]
    body = "\n".join(f"{c['command']}    # {c['wall_s']:.0f} s" for c in rows)
    return f"```\n{body}\n```\n" if rows else ""


def _figs(report: dict, section: str, figdir: str) -> str:
    names = report["sections"][section]["figures"]
    return "\n".join(f"![{n[:-4]}]({figdir}/{n})" for n in names) + "\n"


def _mins(seconds: float) -> str:
    return f"{seconds / 60:.1f} min ({seconds:.0f} s)"


def _header(report: dict, figdir: str) -> list[str]:
    """The title, the QUICK warning, and what ran where (device, jax, total time, test data)."""
    out: list[str] = ["# The lecture, run: a walkthrough\n"]
    if report["preset"] != "full":
        out.append(
            "> **QUICK preset**: tiny runs that check the path end to end; the numbers below are *not* the "
            "lecture's results. `make walkthrough` (no QUICK) writes those.\n"
        )
    out.append(
        f"Every claim of the classic lecture on backpropagation, activations, distributions and generative "
        f"models, shown on runs of this repository. `{report['command']}` (`python -m jaxgen.lecture`) "
        f"ran every command below, wrote every figure into `{figdir}/` and every number into "
        f"[`walkthrough.json`]({figdir}/walkthrough.json); this page is rendered from that JSON alone. "
        f"Device: **{report['device']}** (`jax.devices()[0]` = `{report['device_repr']}`), jax "
        f"{report['jax']}; the whole walkthrough took **{_mins(report['wall_s'])}**. MNIST scores and "
        f"figures use the test split of `{report['mnist_test']}`. Each command's wall time is beside it "
        "(training, evaluation and figures; the CPU may have been shared).\n"
    )
    return out


def _backprop(report: dict, figdir: str) -> list[str]:
    """1. The chain rule on the 2-2-2 network against jax.grad, with the command's first lines."""
    bp = report["sections"]["backprop"]
    out: list[str] = []
    add = out.append
    add("## 1. Backpropagation: the chain rule on the 2-2-2 network\n")
    add(
        "**Claim.** Backpropagation is the chain rule applied from the output back: each weight's gradient "
        "is "
        "a product of local derivatives, summed over the paths from that weight to the error, and it is "
        "exactly what automatic differentiation computes.\n"
    )
    add(_cmds(report, "backprop"))
    add(
        f"**Measured** (float64, `jaxgen/backprop.py` against `jax.grad` of the same error): E_total = "
        f"{bp['E_total_first']:.9f} before the first step; ∂E/∂w5 = {bp['dE_dw5']:.9f}, ∂E/∂w1 = "
        f"{bp['dE_dw1']:.9f}; after one step (lr {bp['lr']:g}) w5 = {bp['w5_after_first_step']:.8f}, "
        f"w1 = {bp['w1_after_first_step']:.9f}. The largest difference between the 12 hand-written "
        f"gradients and `jax.grad`'s is **{bp['grad_max_abs_diff_vs_jax_grad']:.1e}**; along "
        f"{bp['iters']:,} steps the two error curves differ by at most "
        f"{bp['E_curve_max_abs_diff_vs_jax_grad']:.1e}, and E_total falls to {bp['E_total_last']:.3g}. "
        "The command prints the chain rule step by step (first lines):\n"
    )
    head = bp["text"].splitlines()[:32]
    add("```\n" + "\n".join(head) + "\n```\n")
    add(_figs(report, "backprop", figdir))
    return out


def _nonlinear(report: dict, figdir: str) -> list[str]:
    """2. Linear against ReLU on the moons; the deep linear MNIST net against softmax regression."""
    nl = report["sections"]["nonlinear"]
    out: list[str] = []
    add = out.append
    add("## 2. Why a network needs a non-linearity\n")
    add(
        "**Claim.** Without an activation function a stack of layers is one affine map (W3(W2(W1 x + b1) + "
        "b2) + b3 = W x + b): depth adds nothing, and the decision boundary of a classifier stays a straight "
        "line.\n"
    )
    add(_cmds(report, "nonlinear"))
    tc = nl["toy_composed"]
    add(
        f"**Measured.** The same MLP (hidden 64, 64) on the two moons: linear, test accuracy "
        f"**{_pct(nl['linear']['test_accuracy'])}**; ReLU, **{_pct(nl['relu']['test_accuracy'])}**. "
        "The linear "
        f"net's three weight matrices multiplied out into one {'x'.join(map(str, tc['composed_map_shape']))} "
        f"map reproduce its logits to a relative {tc['composed_logits_max_rel_diff']:.1e}."
    )
    mc = nl.get("mnist_collapse")
    if mc:
        add(
            f" On MNIST (the activation benchmark of section 3): a {mc['depth']}-layer linear net reaches "
            f"{_acc(mc['deep_linear_accuracy'])} test accuracy, softmax regression (no hidden layer) "
            f"{_acc(mc['softmax_regression_accuracy'])}; its product map reproduces its logits to a relative "
            f"{mc['composed_logits_max_rel_diff']:.1e}."
        )
    add("\n")
    add(_figs(report, "nonlinear", figdir))
    return out


def _activations(report: dict, figdir: str) -> list[str]:
    """3. The activation benchmark: its table and its own verdicts."""
    act = report["sections"]["activations"]
    c = act["config"]
    out: list[str] = []
    add = out.append
    add("## 3. Activation functions: gradient flow, dead units, accuracy\n")
    add(
        "**Claim.** Sigmoid's derivative is at most ¼, so in a deep net its gradients shrink layer by layer "
        "and it barely trains; tanh is zero-centred and trains better but still saturates; ReLU passes "
        "gradients unchanged where it is active, but a unit that is never active is dead; Leaky ReLU's "
        "small slope keeps every unit alive.\n"
    )
    add(_cmds(report, "activations"))
    add(
        f"**Measured** ({act['mode']} mode: {c['depth']} hidden layers of {c['width']} units, {c['seeds']} "
        f"seeds, {c['steps']} AdamW steps at lr {c['lr']:g}, batch {c['batch_size']}; test accuracy on "
        f"{act['test_data']['n']:,} digits of `{act['test_data']['spec']}`):\n"
    )
    add(
        "| activation | init | gradient norm, first / last hidden layer | dead units "
        "| saturated (unit, example) pairs | test accuracy |"
    )
    add("|---|---|---|---|---|---|")
    for name, a in act["activations"].items():
        add(
            f"| {name} | {a['init']} | {a['grad_ratio_first_last']:.2e} | {_pct(a['dead_fraction'], 1)} | "
            f"{_pct(a['saturated_pair_fraction'], 1)} | {_acc(a['test_accuracy'])} |"
        )
    out += _activation_verdicts(act)
    add("")
    add(_figs(report, "activations", figdir))
    return out


def _activation_verdicts(act: dict) -> list[str]:
    """The benchmark's claims with their verdicts; a note on those this configuration does not support."""
    out = ["\nWhat the benchmark concludes from these numbers (its own verdicts, from the same JSON):\n"]
    for cl in act["claims"]:
        verdict = "" if cl["verdict"] == "info" else f" — **{cl['verdict']}**"
        out.append(f"- *{cl['claim']}*{verdict}: {cl['evidence']}.")
    full = act["full_mode"]
    contradicted = [cl["claim"].split(" (")[0] for cl in act["claims"] if cl["verdict"] == "contradicted"]
    if contradicted:
        out.append(
            f"\nIn this {act['mode']} configuration the benchmark does not support: "
            + "; ".join(f"*{c}*" for c in contradicted)
            + ". Such verdicts depend on depth and budget: the benchmark's full mode (`jaxgen bench "
            f"activations --out DIR`: {full['depth']} layers, {full['seeds']} seeds, {full['steps']} steps "
            "and a depth sweep, too long for this walkthrough) is reported in the README."
        )
    return out


def _distributions(report: dict, figdir: str) -> list[str]:
    """4. A coin and a Gaussian against samples; digits as points, in pixels and as 2-D codes."""
    dist = report["sections"]["distributions"]
    coin, g, dg_pts = dist["coin"], dist["gaussian"], dist["digits"]
    knn = dg_pts["knn5_accuracy"]
    out: list[str] = []
    add = out.append
    add("## 4. Probability distributions, and data as points in a space\n")
    add(
        "**Claim.** A discrete distribution gives each outcome a probability (a fair coin: P(X = 1) = ½); a "
        "continuous one a density (a Gaussian pdf); samples drawn from either match it more closely the more "
        "there are. Data are points in a space: a 28 × 28 digit is a point of [0, 1]^784, digits of one "
        "kind lie near each other, and a 2-D code can keep much of that structure.\n"
    )
    add(
        "The coin and the Gaussian are drawn with `jax.random` by `python -m jaxgen.lecture` "
        "(`jaxgen/lecture/figures.py`); the 2-D codes come from the latent-2 autoencoder of section 7:\n"
    )
    add(_cmds(report, "autoencoder", "ae-latent2"))
    runs = ", ".join(f"{int(k):,} flips: {v:.4f}" for k, v in coin["running"].items())
    add(
        f"**Measured.** The coin, frequency of X = 1: {runs} (standard error after {coin['n']:,}: "
        f"{coin['standard_error']:.4f}). N({g['mu']:g}, {g['sigma']:g}²), {g['n']:,} samples: mean "
        f"{g['sample_mean']:.4f}, std {g['sample_std']:.4f}; the largest gap between the {g['bins']}-bin "
        f"histogram and the pdf is {g['hist_pdf_max_abs_diff']:.3f} (the pdf's peak is {g['pdf_peak']:.3f}). "
        f"Digits as points ({dg_pts['n_test']:,} test digits, {dg_pts['n_train']:,} training digits as "
        f"neighbours): the 5-nearest-neighbour digit accuracy is {knn['pixels']:.3f} in "
        f"the 784 pixel dimensions, {knn['ae2']:.3f} on the autoencoder's 2-D codes and "
        f"{knn['pca2']:.3f} on PCA's 2-D projection: the learned 2-D code keeps "
        f"{'more' if knn['ae2'] > knn['pca2'] else 'less'} of the "
        "digits' grouping than the best linear one.\n"
    )
    add(_figs(report, "distributions", figdir))
    return out


def _discgen(report: dict, figdir: str) -> list[str]:
    """5. The classifier's confidence against the GAN's density on far probes: the claim and the table."""
    fp = report["sections"]["discgen"]["far_probe"]
    out: list[str] = []
    add = out.append
    add("## 5. Discriminative versus generative, on the same data\n")
    add(
        "**Claim.** A discriminative model learns p(y | x): where the boundary between the classes lies, and "
        "nothing about where the data are, so it is confident even far from every example. A generative "
        "model learns p(x) (the GAN implicitly, as a sampler): it knows where the data are, and puts almost "
        "no probability far from them.\n"
    )
    add(_cmds(report, "discgen").rstrip("\n"))
    add(
        f"(the classifier is the ReLU MLP of section 2, `{fp['data']}`: two moons, 2-D points labelled by "
        "moon). \n"
    )
    add(
        f"**Measured.** Classifier test accuracy **{_pct(fp['classifier_test_accuracy'])}** "
        f"({fp['n_test']:,} test points). {fp['n_probes']} probe points on a circle of radius "
        f"{fp['probe_radius']:.2f} around the data's centre, each at least "
        f"{fp['probe_min_distance_to_data']:.2f} from every training point:\n"
    )
    add("| | on the far probes | on the test points |")
    add("|---|---|---|")
    add(
        f"| classifier: mean max p(y \\| x) (chance {fp['chance_confidence']:.1f}) | "
        f"**{fp['confidence_far_mean']:.4f}** (lowest {fp['confidence_far_min']:.4f}) | "
        f"{fp['confidence_data_mean']:.4f} |"
    )
    add(
        f"| GAN: mean density p̂(x), Gaussian KDE of {fp['n_samples']:,} samples | "
        f"**{fp['density_gen_far_mean']:.1e}** (mean log10 {fp['log10_density_gen_far_mean']:.1f}, highest "
        f"log10 {fp['log10_density_gen_far_max']:.1f}) | {fp['density_gen_data_mean']:.3f} |"
    )
    add(
        f"| true density p(x) | {fp['density_true_far_mean']:.1e} (mean log10 "
        f"{fp['log10_density_true_far_mean']:.0f}) | {fp['density_true_data_mean']:.3f} |"
    )
    add(_discgen_summary(report["sections"]["discgen"]))
    add(_figs(report, "discgen", figdir))
    return out


def _discgen_summary(dg: dict) -> str:
    """The far-probe comparison in words, and the moons GAN's own scores."""
    fp, gm = dg["far_probe"], dg["gan"]
    ratio = fp["density_gen_far_mean"] / fp["density_gen_data_mean"] if fp["density_gen_data_mean"] else 0.0
    far, near = fp["confidence_far_mean"], fp["confidence_data_mean"]
    return (
        f"\nOn the far probes the classifier's mean confidence is {far:.3f}, "
        f"{'at least as high as' if far >= near else 'below'} its {near:.3f} on real points, while the "
        f"GAN's density there is {ratio:.1e} times its density on the data. The GAN itself: "
        f"{gm['test_modes_covered']} of {gm['test_modes_total']} arc components covered, "
        f"{_pct(gm['test_hq_fraction'], 1)} of 2,500 samples within 3 std of one, mean D(x) "
        f"{gm['test_d_real_mean']:.3f} and D(G(z)) {gm['test_d_fake_mean']:.3f} after {gm['step']:,} steps.\n"
    )


def _gan(report: dict, figdir: str) -> list[str]:
    """6. The 2014 game: D(G(z)) -> ½ and D's loss -> log 4 on a 1-D Gaussian, and on MNIST."""
    gan = report["sections"]["gan"]
    g1, mn = gan["gauss1d"], gan["mnist"]
    out: list[str] = []
    add = out.append
    add("## 6. The GAN (2014) and its equilibrium D(G(z)) = ½\n")
    add(
        "**Claim.** G and D play min_G max_D E[log D(x)] + E[log(1 − D(G(z)))]. For a fixed G the best D is "
        "D*(x) = p_data(x) / (p_data(x) + p_g(x)); at the game's equilibrium p_g = p_data, so D* = ½ "
        "everywhere, D(G(z)) → ½ and D's loss → log 4.\n"
    )
    add(_cmds(report, "gan"))
    add(
        f"**Measured.** On N(4, 0.5²) (`toy:gauss1d`, {g1['step']:,} generator steps): mean D(G(z)) = "
        f"**{g1['test_d_fake_mean']:.3f}** on 2,500 samples ({abs(g1['test_d_fake_mean'] - 0.5):.3f} "
        f"from ½), mean D(x) = {g1['test_d_real_mean']:.3f} on the test points; D's last training loss "
        f"{g1['train_d_loss']:.4f} against log 4 = {gan['log4']:.4f}; the "
        f"trained D differs from D* by {g1['test_dstar_distance']:.3f} on average (weighted by the two "
        f"densities). On MNIST ({mn['step']:,} steps): mean D(x) {mn['test_d_real_mean']:.3f}, D(G(z)) "
        f"{mn['test_d_fake_mean']:.3f}, D loss {mn['train_d_loss']:.4f}. The MNIST samples through training "
        "come from one fixed z per column, saved at every checkpoint; the moons' progress is in section 5.\n"
    )
    add(_figs(report, "gan", figdir))
    return out


def _autoencoder(report: dict, figdir: str) -> list[str]:
    """7. The default and the latent-2 autoencoder against PCA: reconstruction, sharpness, codes by digit."""
    ae = report["sections"]["autoencoder"]
    a32, a2 = ae["ae"], ae["ae-latent2"]
    out: list[str] = []
    add = out.append
    add("## 7. The MNIST autoencoder: codes by digit, blurry reconstructions, decoding likely codes\n")
    add(
        "**Claim.** An autoencoder squeezes each digit through a small code; the codes of one digit group "
        "together; reconstructions are blurry (under a per-pixel loss the decoder outputs the average of "
        "the digits a code could stand for); decoding codes where the codes are dense gives new digits.\n"
    )
    add(_cmds(report, "autoencoder"))
    add(
        f"**Measured** on `{ae['test_data']}`: latent {a32['latent_dim']} (the default, {a32['step']:,} "
        f"steps): reconstruction BCE **{a32['recon_bce']:.4f}** against PCA-{a32['latent_dim']}'s "
        f"{a32['pca_recon_bce']:.4f}; sharpness (mean image-gradient magnitude of reconstructions over the "
        f"originals', 1 = as sharp) **{a32['sharpness_ratio']:.3f}**, PCA {a32['pca_sharpness_ratio']:.3f}"
        f"{': blurrier than the digits' if a32['sharpness_ratio'] < 1 else ''}; 5-NN digit accuracy of "
        f"the codes {a32['latent_knn_accuracy']:.3f} "
        f"(PCA {a32['pca_knn_accuracy']:.3f}). Latent {a2['latent_dim']}: 5-NN accuracy of the codes "
        f"**{a2['latent_knn_accuracy']:.3f}** against PCA-2's {a2['pca_knn_accuracy']:.3f}, BCE "
        f"{a2['recon_bce']:.4f} (PCA-{a2['latent_dim']} {a2['pca_recon_bce']:.4f}), sharpness "
        f"{a2['sharpness_ratio']:.3f}. "
        "The samples decode draws from a 10-component Gaussian mixture fitted to the training codes (the "
        "likely codes); the latent-2 plane shows the decoder over the codes' density.\n"
    )
    conv = ae.get("ae-conv")  # pages rendered before the conv AE joined the section have none
    if conv:
        add(
            f"**MLP against convolutions** (`--set arch=conv`, latent {conv['latent_dim']}, {conv['step']:,} "
            "steps): the convolutional AE's reconstructions have sharpness "
            f"**{conv['sharpness_ratio']:.3f}** "
            f"against the MLP's {a32['sharpness_ratio']:.3f} (1 = as sharp as the digits) and BCE "
            f"{conv['recon_bce']:.4f} against {a32['recon_bce']:.4f}; the same test digits in both "
            "reconstruction figures below (`ae-reconstructions`: MLP, `ae-conv-reconstructions`: conv).\n"
        )
    add(_figs(report, "autoencoder", figdir))
    return out


def _emoji(report: dict, figdir: str) -> list[str]:
    """8. The lecture's example: a 64 x 64 x 3 emoji, one point of a 12,288-dimensional distribution."""
    out: list[str] = ["## 8. The lecture's example: a 64 × 64 × 3 image is one point in 12,288 dimensions\n"]
    add = out.append
    add(
        "**Claim.** An image is a vector: a 64 × 64 colour emoji is 64 × 64 × 3 = 12,288 numbers, one point "
        "of [0, 1]^12,288, and a set of emoji is a sample from a distribution over that space. Distance in "
        "that space says little about what an image shows; a learned latent space (a VAE's codes) puts "
        "images of a kind nearer each other, and a straight line between two codes decodes to images, where "
        "the straight line between two pixel vectors is a cross-fade. A generative model (DCGAN) draws new "
        "points from its estimate of the distribution.\n"
    )
    em = report["sections"].get("emoji")
    if em is None:  # a page rendered from a JSON written before the section existed
        add(
            "*Not in this page's run*: its `walkthrough.json` was written before this section joined the "
            "walkthrough; `make walkthrough` (or `make walkthrough QUICK=1`) runs it on "
            "`../shared/data/emoji-google`.\n"
        )
        return out
    if em.get("skipped"):
        add(f"*Skipped in this run*: {em['skipped']}.\n")
        return out
    vec, nb, wk, dc, vae, gan = (em[k] for k in ("vector", "neighbours", "walk", "dcgan", "vae", "gan"))
    if em.get("subset"):
        tr, te = em["subset"]
        add(f"(This preset reads a subset: the first {tr} training and {te} test emoji of each category and "
            "the emoji named below, linked from the folder.)\n")  # fmt: skip
    add(_cmds(report, "emoji", "jaxgen "))
    share, chance = nb["share_same_category"], nb["share_by_chance"]
    verdict = "more often" if share["latent"] > share["pixels"] else "no more often"
    h, w, c = vec["shape"]
    widths = {k: ",".join(map(str, v)) for k, v in (("vae", vae["channels"]), ("dcgan", dc["channels"]),
                                                    ("default", gan["default_channels"]))}  # fmt: skip
    short = ", too long for the walkthrough" if gan["step"] < gan["default_steps"] else ""
    size = vae["image_size"]
    default_size = " (the colour default; 64 × 64 is `--set image_size=64` away, four times as long)"
    add(
        f"**Measured** on `{em['spec']}` ({nb['n_train']:,} training and {nb['n_test']} test emoji, "
        f"{nb['n_categories']} categories). `{vec['code']}.png` ({vec['category']}) read at {h} × {w} is "
        f"{h} × {w} × {c} = **{vec['dim']:,}** numbers (mean {vec['mean']:.3f}; "
        f"{_pct(vec['white_fraction'], 1)} of its pixels white background). For every test emoji, the "
        f"share of its {nb['k']} nearest training emoji that are in its category: "
        f"**{_pct(share['pixels'], 1)}** in pixel space ({nb['pixel_dim']:,}-D, {h} × {w}) against "
        f"**{_pct(share['latent'], 1)}** among the "
        f"conv VAE's {nb['latent_dim']}-D codes ({_pct(chance, 1)} by chance, the categories' shares of the "
        f"training set): here the codes' neighbours are of the query's kind {verdict} than the pixels'. "
        f"The VAE trained at {size} × {size}{default_size if size != 64 else ''}, channels {widths['vae']}, "
        f"{vae['step']:,} steps: {vae['test_elbo_bits_per_dim']:.3f} bits per dimension, KL "
        f"{vae['test_kl']:.1f} nats, 5-NN category accuracy of its codes "
        f"{vae['test_latent_knn_accuracy']:.3f} against PCA's {vae['test_pca_knn_accuracy']:.3f}.\n"
    )
    add(
        f"The walk from `{wk['from']}.png` to `{wk['to']}.png` ({wk['frames']} frames; the two are "
        f"{wk['pixel_distance']:.1f} apart in pixels, Euclidean, and {wk['code_distance']:.2f} in codes): "
        "the pixel line lays one image over the other; the code line passes through decoded images of its "
        f"own. DCGAN (`arch=conv`, {dc['image_size']} × {dc['image_size']}, channels {widths['dcgan']}; "
        f"{gan['step']:,} steps in {gan['wall_s']:.0f} s, where this data's defaults are {widths['default']} "
        f"and {gan['default_steps']:,} steps{short}): mean D(x) {gan['test_d_real_mean']:.3f}, D(G(z)) "
        f"{gan['test_d_fake_mean']:.3f}; its {dc['n']} samples lie {dc['sample_nn_rms']:.3f} per value (root "
        f"mean square) from their nearest training emoji, real test emoji {dc['test_nn_rms']:.3f}.\n"
    )
    add(_figs(report, "emoji", figdir))
    return out


def _what_ran(report: dict) -> list[str]:
    """Every command with its section and wall time, and the total."""
    out = ["## What ran\n", "| section | command | wall s |", "|---|---|---|"]
    out += [f"| {c['section']} | `{c['command']}` | {c['wall_s']:.1f} |" for c in report["commands"]]
    out.append(f"\nTotal: {_mins(report['wall_s'])} on {report['device']}.\n")
    return out


SECTIONS = (_backprop, _nonlinear, _activations, _distributions, _discgen, _gan, _autoencoder, _emoji)


def render(report: dict[str, Any], figdir: str) -> str:
    """The walkthrough page; `figdir` is the figures folder relative to the page."""
    out = _header(report, figdir)
    for section in SECTIONS:
        out += section(report, figdir)
    out += _what_ran(report)
    return "\n".join(out)

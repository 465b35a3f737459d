"""The activation benchmark's PNG figures, all drawn from its JSON report: gradient flow, accuracy,
dead and saturated units, speed, accuracy against depth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# Colours fixed per activation so every figure reads the same way.
_COLOURS = {
    "sigmoid": "tab:red",
    "tanh": "tab:orange",
    "relu": "tab:blue",
    "leaky_relu": "tab:cyan",
    "elu": "tab:green",
    "gelu": "tab:purple",
    "silu": "tab:pink",
    "softplus": "tab:olive",
    "linear": "tab:gray",
}


def _colour(name: str) -> str:
    return _COLOURS.get(name.partition(":")[0], "black")


# One function per figure: (report, plt) -> the figure, or None when the report lacks its measurements.


def fig_grad_flow_init(report: dict, plt) -> Any:
    """Gradient norm by layer at initialisation: usual initialisers (and one shared initialiser)."""
    acts, cfg, dev = report["activations"], report["config"], report["device"]
    panels = [("grad_norm_by_layer", "usual initialisation")]
    if all("grad_norm_by_layer_shared_init" in a for a in acts.values()):
        panels.append(("grad_norm_by_layer_shared_init", f"all {cfg['shared_init']}"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for n, a in acts.items():
            y = a[key]
            ax.semilogy(range(1, len(y) + 1), y, "o-", ms=3, color=_colour(n), label=n)
        ax.set_xlabel(f"layer (1 = first hidden, {cfg['depth'] + 1} = readout)")
        ax.set_ylabel("||dL/dW|| at initialisation")
        ax.set_title(f"gradient norm by layer, depth {cfg['depth']}, {label}\n{dev}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=2)
    return fig


def fig_grad_flow_training(report: dict, plt) -> Any:
    """First/last gradient ratio and test accuracy as training goes."""
    acts, depth, dev = report["activations"], report["config"]["depth"], report["device"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for n, a in acts.items():
        h = a["history"]
        axes[0].semilogy(h["steps"], h["grad_ratio_first_last"], "o-", ms=3, color=_colour(n), label=n)
        axes[1].plot(h["steps"], h["test_accuracy"], "o-", ms=3, color=_colour(n), label=n)
    axes[0].set_ylabel("||dL/dW first hidden|| / ||dL/dW last hidden||")
    axes[1].set_ylabel("test accuracy (mean over seeds)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_title(f"gradient ratio as training goes, depth {depth}\n{dev}", fontsize=10)
    axes[1].set_title(f"test accuracy as training goes\n{dev}", fontsize=10)
    axes[0].legend(fontsize=7, ncol=2)
    return fig


def fig_accuracy(report: dict, plt) -> Any:
    """Test accuracy per activation (and softmax regression), mean ± std with every seed as a dot."""
    acts, cfg = report["activations"], report["config"]
    bars = [(n, a["test_accuracy"]) for n, a in acts.items()]
    if report.get("linear_collapse"):
        bars.append(("softmax regr.", report["linear_collapse"]["softmax_regression_accuracy"]))
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = np.arange(len(bars))
    ax.bar(xs, [b["mean"] for _, b in bars], yerr=[b["std"] for _, b in bars], capsize=4,
           color=[_colour(n) for n, _ in bars])  # fmt: skip
    for x, (_, b) in zip(xs, bars, strict=True):
        ax.plot([x] * len(b["seeds"]), b["seeds"], "k.", ms=4)
    ax.set_xticks(xs, [n for n, _ in bars], rotation=30, ha="right")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(
        f"test accuracy after {cfg['steps']} steps, depth {cfg['depth']}, mean ± std over "
        f"{cfg['seeds']} seeds\n{report['device']}",
        fontsize=10,
    )
    return fig


def _dead_panel(ax, report: dict) -> None:
    acts, cfg = report["activations"], report["config"]
    names = list(acts)
    xs = np.arange(len(names))
    high = {n: acts[n].get("high_lr", {}) for n in names}
    series = [
        ("dead", [acts[n]["dead_fraction"] for n in names], [acts[n]["dead_fraction_std"] for n in names]),
        ("dead at initialisation", [acts[n]["dead_fraction_init"] for n in names], None),
        ("never positive (dead if it were relu)", [acts[n]["never_positive_fraction"] for n in names], None),
    ]
    if any(high.values()):
        dead_high = [high[n].get("dead_fraction", 0) for n in names]
        std_high = [high[n].get("dead_fraction_std", 0) for n in names]
        series.insert(1, (f"dead at lr {cfg['high_lr']:g}", dead_high, std_high))
    w = 0.8 / len(series)
    for j, (label, values, err) in enumerate(series):
        offset = (j - (len(series) - 1) / 2) * w
        ax.bar(xs + offset, values, w, yerr=err, capsize=2, label=label)
    ax.set_xticks(xs, names, rotation=30, ha="right")
    ax.set_ylabel("fraction of hidden units")
    ax.set_title(f"dead units (output 0 on every probe) after training, depth {cfg['depth']}\n"
                 f"{report['device']}", fontsize=10)  # fmt: skip
    ax.legend(fontsize=8)


def _saturated_panel(ax, report: dict) -> None:
    acts = report["activations"]
    sat = [n for n, a in acts.items() if a.get("saturated_fraction") is not None]
    sat_series = (
        ("units, at initialisation", "saturated_fraction_init"),
        ("units", "saturated_fraction"),
        ("(unit, example) pairs", "saturated_pair_fraction"),
    )
    for j, (label, key) in enumerate(sat_series):
        ax.bar(np.arange(len(sat)) + (j - 1) * 0.27, [acts[n][key] for n in sat], 0.27, label=label)
    ax.set_xticks(np.arange(len(sat)), sat)
    ax.set_title(f"saturated after training\n{report['device']}", fontsize=10)
    ax.legend(fontsize=8)


def fig_dead_saturated(report: dict, plt) -> Any:
    """Dead (and never-positive) units per activation; saturated sigmoid / tanh units."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [3, 1]})
    _dead_panel(axes[0], report)
    _saturated_panel(axes[1], report)
    return fig


def fig_speed(report: dict, plt) -> Any:
    """Training samples/s (all seeds; one seed when measured) and the activation's own elementwise cost."""
    acts, cfg, dev = report["activations"], report["config"], report["device"]
    names = list(acts)
    xs = np.arange(len(names))
    panels = [("samples_per_s", f"training samples/s, {cfg['seeds']} seeds vmapped")]
    if all("samples_per_s_single_seed" in a for a in acts.values()):
        panels.append(("samples_per_s_single_seed", "training samples/s, one seed"))
    panels.append(("elementwise_ms", f"ms per forward+backward alone, {cfg['elementwise_size']:,} floats"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4))
    for ax, (key, label) in zip(axes, panels, strict=True):
        ax.bar(xs, [acts[n][key] for n in names], yerr=[acts[n][key + "_std"] for n in names], capsize=3,
               color=[_colour(n) for n in names])  # fmt: skip
        ax.set_xticks(xs, names, rotation=30, ha="right")
        ax.set_title(f"{label}\n{dev}", fontsize=10)
    axes[0].set_ylabel(f"depth {cfg['depth']}, width {cfg['width']}, batch {cfg['batch_size']}")
    return fig


def fig_accuracy_vs_depth(report: dict, plt) -> Any:
    """Test accuracy against depth (full mode); None when the depths were not trained."""
    acts, cfg = report["activations"], report["config"]
    if not all("accuracy_by_depth" in a for a in acts.values()):
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for n, a in acts.items():
        by = a["accuracy_by_depth"]
        ds = sorted(by, key=int)
        ax.errorbar([int(d) for d in ds], [by[d]["test_accuracy"]["mean"] for d in ds],
                    yerr=[by[d]["test_accuracy"]["std"] for d in ds], fmt="o-", ms=3, capsize=3,
                    color=_colour(n), label=n)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("hidden layers")
    ax.set_ylabel("test accuracy")
    ax.set_title(
        f"accuracy against depth, {cfg['steps']} steps, {cfg['seeds']} seeds\n{report['device']}", fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return fig


FIGURES = {
    "grad_flow_init.png": fig_grad_flow_init,
    "grad_flow_training.png": fig_grad_flow_training,
    "accuracy.png": fig_accuracy,
    "dead_saturated.png": fig_dead_saturated,
    "speed.png": fig_speed,
    "accuracy_vs_depth.png": fig_accuracy_vs_depth,
}


def draw(report: dict, out: Path) -> list[Path]:
    """PNGs of gradient flow, accuracy, dead/saturated units, speed (and accuracy vs depth, full mode)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name, make in FIGURES.items():
        fig = make(report, plt)
        if fig is None:
            continue
        fig.savefig(out / name, dpi=100, bbox_inches="tight")
        plt.close(fig)
        paths.append(out / name)
    return paths

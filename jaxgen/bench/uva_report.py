"""The UvA tutorial 3 preset's page (jaxgen.bench.uva): its markdown and JSON, beside UvA's figures."""

from __future__ import annotations

import time
from pathlib import Path

from jaxgen.bench import common
from jaxgen.bench.report import fmt_acc

UVA_DEFINITIONS = {
    "test_accuracy": "accuracy on the test images of each seed's best-validation-epoch parameters; mean and "
    "sample std (ddof 1) over seeds; UvA's figure is one seed (PRNGKey(42))",
    "trains_fraction": "fraction of seeds whose test accuracy is above config.trains_above (chance is 0.1)",
    "best_epoch": "per seed, 1-based epoch of the highest validation accuracy (a new best must be strictly "
    "higher, as in UvA's loop)",
    "epochs_run": "per seed, epochs up to its own stop: `patience` epochs in a row without a new best, or "
    "max_epochs; epochs_program: epochs the vmapped program ran, the longest seed's (a stopped seed keeps "
    "training inside the program; its figures no longer change)",
    "dead_fraction_by_layer": "per hidden layer, fraction of units whose output is exactly 0 on every one of "
    "the training images (data.train_n; UvA: its 50,000), after training (best-validation parameters); "
    "*_init: the same at initialisation; mean over seeds and per seed",
    "samples_per_s": "training throughput of the vmapped epoch program (every seed's samples counted), "
    "compilation and validation excluded, block_until_ready",
}


def _pct_list(fractions: list[float]) -> str:
    return ", ".join(f"{100 * f:.2f}%" for f in fractions)


def _setup(report: dict) -> str:
    cfg, d = report["config"], report["data"]
    quick = report["mode"] != "uva"
    widths = "-".join(str(w) for w in [784, *cfg["hidden"], 10])
    caveat = " **Quick form: a subsample and a few epochs, not comparable with UvA's figures.**"
    return (
        f"`jaxgen bench activations --preset uva{' --quick' if quick else ''} --data {d['spec']} --out DIR` "
        f"on {common.machine(report)}: {report['wall_s']:.0f} s wall time. UvA DL tutorial 3's setting: MLP "
        f"{widths}, every kernel and bias (readout too) uniform(±1/sqrt(fan_in)), inputs (x/255 - 0.5)/0.5 "
        f"in [-1, 1]; SGD lr {cfg['lr']:g} momentum {cfg['momentum']:g}, batch {cfg['batch_size']} "
        f"(remainder dropped), up to {cfg['max_epochs']} epochs, early stopping on validation accuracy with "
        f"patience {cfg['patience']}; {d['train_n']} training / {d['val_n']} validation images drawn from "
        f"the training split (fixed split seed {cfg['split_seed']}), tested on {d['test_n']} test images. "
        f"{cfg['seeds']} seeds per activation trained as one vmapped program (`chunks.run_chunk`, one chunk "
        "per epoch); each seed keeps its own best-validation parameters and its own stop, the program runs "
        "to the longest seed's stop. Leaky ReLU slope 0.1 (UvA's), Swish = silu." + (caveat if quick else "")
    )


def _table(report: dict) -> list[str]:
    acts, anchors, cfg = report["activations"], report["anchors"], report["config"]
    lines = [
        f"| activation | jaxgen test accuracy ({cfg['seeds']} seeds) | seeds that train (> "
        f"{100 * cfg['trains_above']:.0f}%) | UvA JAX (1 seed) | UvA PyTorch (1 seed) | epochs run per "
        "seed | best epoch per seed |",
        "|---" * 7 + "|",
    ]
    for name, a in acts.items():
        uva = anchors["test_accuracy_pct"].get(name)
        torch = anchors["pytorch_test_accuracy_pct"].get(name)
        cells = [f"{name} ({anchors['names'].get(name, '–')})", fmt_acc(a["test_accuracy"]),
                 f"{100 * a['trains_fraction']:.0f}%", "–" if uva is None else f"{uva:.2f}%",
                 "–" if torch is None else f"{torch:.2f}%", ", ".join(map(str, a["epochs_run"])),
                 ", ".join(map(str, a["best_epoch"]))]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _dead_table(report: dict) -> list[str]:
    acts, dead = report["activations"], report["anchors"]["dead_relu"]
    uva = lambda counts: _pct_list([c / w for c, w in zip(counts, dead["widths"], strict=True)])
    lines = [
        f"Dead units per hidden layer (output exactly 0 on every one of the {report['data']['train_n']} "
        f"training images; UvA: on its {dead['images']:,}), mean over seeds:",
        "",
        "| activation | jaxgen at initialisation | jaxgen after training | UvA at initialisation | "
        "UvA after training |",
        "|---" * 5 + "|",
    ]
    for name, a in acts.items():
        ref = name.partition(":")[0] == "relu"
        cells = [name, _pct_list(a["dead_fraction_by_layer_init"]["mean"]),
                 _pct_list(a["dead_fraction_by_layer"]["mean"]),
                 uva(dead["init"]) if ref else "–", uva(dead["trained"]) if ref else "–"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict) -> str:
    """The preset's page: setup, accuracy beside UvA's, dead units beside UvA's, sources, definitions."""
    anchors = report["anchors"]
    lines = ["## Activation functions: UvA DL tutorial 3, side by side", "", _setup(report), ""]
    lines += [*_table(report), "", *_dead_table(report), ""]
    speed = ", ".join(f"{n} {a['samples_per_s']:.0f}/s (compile {a['compile_s']:.1f} s)"
                      for n, a in report["activations"].items())  # fmt: skip
    lines += [f"Training throughput, all seeds together: {speed}.", ""]
    lines += ["Sources of UvA's figures:", "",
              f"- test accuracy (JAX) and dead ReLU units: {anchors['test_accuracy_source']}",
              f"- test accuracy (PyTorch): {anchors['pytorch_source']}", ""]  # fmt: skip
    lines += [f"- *{k}*: {v}." for k, v in report["definitions"].items()]
    lines += ["", "Every number here comes from `activations_uva.json` beside this file.", ""]
    return "\n".join(lines)


def write(report: dict, out: Path, t_start: float) -> dict:
    """Add definitions and wall time to the preset's `report`; write activations_uva.{json,md} in `out`."""
    report["definitions"] = UVA_DEFINITIONS
    report["wall_s"] = round(time.perf_counter() - t_start, 2)
    common.write_report(out, "activations_uva", report, markdown(report))
    return report

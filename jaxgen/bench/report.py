"""The activation benchmark's verdicts and markdown, drawn from its JSON report (its figures:
jaxgen.bench.figures)."""

from __future__ import annotations

import math
import time
from pathlib import Path

from jaxgen.bench import common, figures


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def fmt_acc(a: dict) -> str:
    """mean ± std of an accuracy summary, in %."""
    return f"{100 * a['mean']:.2f} ± {100 * a['std']:.2f}%"


DEFINITIONS = {
    "layers": "Dense kernels, first layer first: hidden_0 .. hidden_{depth-1}, then the linear readout `out`",
    "grad_norm_by_layer": "Frobenius norm of dL/dW of each Dense kernel (order of `layers`) at "
    "initialisation, on a fixed batch of training images, L = mean softmax cross-entropy; mean over seeds",
    "grad_ratio_first_last": "||dL/dW hidden_0|| / ||dL/dW hidden_{depth-1}|| (first over last hidden "
    "layer, the readout excluded) at initialisation, per seed, then the mean over seeds",
    "dead_fraction": "fraction of hidden units (all layers) whose output is exactly 0 on every probe "
    "example after training (their gradient is 0 for ever); mean over seeds",
    "never_positive_fraction": "fraction of hidden units whose pre-activation is <= 0 on every probe "
    "example: dead under ReLU, still learning under Leaky ReLU",
    "saturated_fraction": "sigmoid and tanh only: fraction of hidden units in the flat region (sigmoid "
    "< 0.02 or > 0.98; |tanh| > 0.96: derivative < 8% of its maximum) on >= 99% of probe examples; "
    "saturated_pair_fraction: fraction of (unit, example) pairs in the flat region",
    "samples_per_s": "training throughput of the benchmark's compiled program (every seed vmapped; all "
    "seeds' samples counted), compilation excluded, block_until_ready; mean and std over the timed chunks. "
    "compile_s: that program's lower + compile time; *_single_seed: the same for one seed's run_chunk",
    "elementwise_ms": "forward + backward of the activation alone on a large float32 array, no matmul",
}


def _claim(claim: str, ok: bool | None, evidence: str) -> dict[str, str]:
    verdict = "info" if ok is None else ("supported" if ok else "contradicted")
    return {"claim": claim, "verdict": verdict, "evidence": evidence}


def _claims_linear(report: dict) -> list[dict[str, str]]:
    col = report.get("linear_collapse")
    if not col:
        return []
    d, s = col["deep_linear_accuracy"], col["softmax_regression_accuracy"]
    margin = 2 * math.hypot(d["std"], s["std"]) + 0.005
    shape = "x".join(str(v) for v in col["composed_map_shape"])
    depth, rel = report["config"]["depth"], col["composed_logits_max_rel_diff"]
    return [
        _claim(
            "without a non-linearity, stacked layers collapse into one linear map",
            d["mean"] <= s["mean"] + margin and rel < 1e-3,
            f"a {depth}-layer linear net reaches {fmt_acc(d)}, softmax regression (no hidden layer, lr "
            f"{col['softmax_regression_lr']:g}) {fmt_acc(s)}; the deep net's weights multiplied out into one "
            f"{shape} map reproduce its logits to a relative {rel:.1e}",
        )
    ]


def _claims_sigmoid(acts: dict, cfg: dict) -> list[dict[str, str]]:
    if "sigmoid" not in acts or "relu" not in acts:
        return []
    s, r, depth = acts["sigmoid"], acts["relu"], cfg["depth"]
    rs, rr = s["grad_ratio_first_last"], r["grad_ratio_first_last"]
    orders = math.log10(rr / rs) if rs > 0 and rr > 0 else float("inf")
    return [
        _claim(
            "sigmoid's gradients shrink layer by layer (its derivative is at most 1/4)",
            orders >= 2,
            f"at depth {depth}, at initialisation, the first/last hidden-layer gradient-norm ratio is "
            f"{rs:.1e} for sigmoid ({s['init']}) and {rr:.2g} for relu ({r['init']}), {orders:.1f} orders "
            "of magnitude apart",
        ),
        _claim(
            "deep sigmoid nets barely train",
            s["test_accuracy"]["mean"] < r["test_accuracy"]["mean"] - 0.1,
            f"after {cfg['steps']} AdamW steps at depth {depth}: sigmoid {fmt_acc(s['test_accuracy'])}, "
            f"relu {fmt_acc(r['test_accuracy'])}",
        ),
    ]


def _claims_tanh(acts: dict) -> list[dict[str, str]]:
    if "tanh" not in acts or "sigmoid" not in acts:
        return []
    t, s = acts["tanh"], acts["sigmoid"]
    return [
        _claim(
            "tanh (zero-centred) trains better than sigmoid",
            t["test_accuracy"]["mean"] > s["test_accuracy"]["mean"],
            f"tanh {fmt_acc(t['test_accuracy'])}, sigmoid {fmt_acc(s['test_accuracy'])}",
        ),
        _claim(
            "tanh still saturates (here: >= 5% of (unit, example) pairs in the flat region after training)",
            (t["saturated_pair_fraction"] or 0) >= 0.05,
            f"{_pct(t['saturated_pair_fraction'])} of tanh's (unit, example) pairs are in the flat region, "
            f"{_pct(t['saturated_fraction'])} of its units on >= 99% of probes (sigmoid: "
            f"{_pct(s['saturated_pair_fraction'])} and {_pct(s['saturated_fraction'])}; at initialisation "
            f"{_pct(t['saturated_fraction_init'])} and {_pct(s['saturated_fraction_init'])} of units)",
        ),
    ]


def _claims_dead_relu(acts: dict) -> list[dict[str, str]]:
    if "relu" not in acts or "leaky_relu" not in acts:
        return []
    r, lk = acts["relu"], acts["leaky_relu"]
    rows = [(r, lk)] + ([(r["high_lr"], lk["high_lr"])] if "high_lr" in r and "high_lr" in lk else [])
    text = "; ".join(
        f"lr {a['lr']:g}: relu {_pct(a['dead_fraction'])} dead ({_pct(a['dead_fraction_init'])} "
        f"already at initialisation), leaky_relu {_pct(b['dead_fraction'])} dead with "
        f"{_pct(b['never_positive_fraction'])} never positive but still learning"
        for a, b in rows
    )
    died = any(a["dead_fraction"] > 0 for a, _ in rows)
    if not died:
        text += "; in this setting no ReLU unit died"
    return [_claim("ReLU units can die; Leaky ReLU's slope keeps every unit alive",
                   died and all(b["dead_fraction"] == 0 for _, b in rows), text)]  # fmt: skip


def _claims_overall(acts: dict) -> list[dict[str, str]]:
    ranked = sorted(acts, key=lambda n: -acts[n]["test_accuracy"]["mean"])
    err = max(a["softmax_max_sum_err"] for a in acts.values())
    out = [
        _claim("accuracy ranking (mean ± std over seeds)", None,
               ", ".join(f"{n} {fmt_acc(acts[n]['test_accuracy'])}" for n in ranked)),
        _claim("softmax turns logits into a distribution", err < 1e-5,
               f"every trained net's test logits through activations.softmax sum to 1 within {err:.1e}"),
    ]  # fmt: skip
    if "relu" in acts:
        base = acts["relu"]["elementwise_ms_median"]
        ordered = sorted(acts, key=lambda n: acts[n]["elementwise_ms_median"])
        rates = [a["samples_per_s"] for a in acts.values()]
        out.append(
            _claim(
                "what each activation costs",
                None,
                "forward + backward of the activation alone, median time relative to relu: "
                + ", ".join(f"{n} {acts[n]['elementwise_ms_median'] / base:.2f}x" for n in ordered)
                + f"; whole training steps differ far less (samples/s from {min(rates):.0f} to "
                f"{max(rates):.0f}, {100 * (max(rates) / min(rates) - 1):.0f}% apart): the matmuls dominate",
            )
        )
    return out


def claims(report: dict) -> list[dict[str, str]]:
    """Each textbook claim the numbers speak to: supported or contradicted (or info), and the evidence."""
    acts, cfg = report["activations"], report["config"]
    return [
        *_claims_linear(report),
        *_claims_sigmoid(acts, cfg),
        *_claims_tanh(acts),
        *_claims_dead_relu(acts),
        *_claims_overall(acts),
    ]


def _setup(report: dict) -> str:
    cfg = report["config"]
    return (
        f"`jaxgen bench activations{' --quick' if report['mode'] == 'quick' else ''} --out DIR` "
        f"({report['mode']} mode) on {common.machine(report)}: {report['wall_s']:.0f} s wall time. MLP with "
        f"{cfg['depth']} hidden layers of {cfg['width']} units, AdamW (peak lr {cfg['lr']:g}, cosine decay, "
        f"no warm-up, weight decay 1e-4), {cfg['steps']} steps of {cfg['batch_size']} examples from the "
        f"{report['train_data']['n']} training examples of `{_short(report['train_data']['spec'])}`, no "
        f"dropout, augmentation or label smoothing; {cfg['seeds']} seeds trained as one vmapped program. "
        f"Test accuracy on {report['test_data']['n']} held-out examples "
        f"(`{_short(report['test_data']['spec'])}`)."
    )


def _table(report: dict) -> list[str]:
    """The table's lines: one row per activation, then softmax regression when it was trained."""
    acts, cfg = report["activations"], report["config"]
    high = any("high_lr" in a for a in acts.values())
    single = all("samples_per_s_single_seed" in a for a in acts.values())
    lines = [
        "| activation | init | grad ratio first/last | dead units | "
        + (f"dead at lr {cfg['high_lr']:g} | " if high else "")
        + "saturated units (pairs) | test accuracy | samples/s (all seeds) | compile s | "
        + ("samples/s (1 seed) | " if single else "")
        + "elementwise ms |",
        "|---" * (9 + high + single) + "|",
    ]
    for name, a in acts.items():
        cells = [name, a["init"], f"{a['grad_ratio_first_last']:.2e}", _pct(a["dead_fraction"])]
        if high:
            cells.append(_pct(a["high_lr"]["dead_fraction"]) if "high_lr" in a else "–")
        sat = a["saturated_fraction"]
        cells.append("–" if sat is None else f"{_pct(sat)} ({_pct(a['saturated_pair_fraction'])})")
        cells += [fmt_acc(a["test_accuracy"]), f"{a['samples_per_s']:.0f} ± {a['samples_per_s_std']:.0f}",
                  f"{a['compile_s']:.2f}"]  # fmt: skip
        if single:
            cells.append(f"{a['samples_per_s_single_seed']:.0f} ± {a['samples_per_s_single_seed_std']:.0f}")
        cells.append(
            f"{a['elementwise_ms_median']:.2f} ({a['elementwise_ms']:.2f} ± {a['elementwise_ms_std']:.2f})"
        )
        lines.append("| " + " | ".join(cells) + " |")
    col = report.get("linear_collapse")
    if col:
        cells = [f"*softmax regression, lr {col['softmax_regression_lr']:g}*", "glorot_uniform"]
        cells += ["–"] * (3 + high) + [fmt_acc(col["softmax_regression_accuracy"])] + ["–"] * (3 + single)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _depth_table(report: dict) -> list[str]:
    acts, depths = report["activations"], report["config"]["depths"]
    if not depths:
        return []
    lines = ["", "Test accuracy against depth (same budget, mean ± std over seeds):", "",
             "| activation | " + " | ".join(f"depth {d}" for d in depths) + " |",
             "|---" * (1 + len(depths)) + "|"]  # fmt: skip
    for name, a in acts.items():
        by = a["accuracy_by_depth"]
        lines.append(f"| {name} | " + " | ".join(fmt_acc(by[str(d)]["test_accuracy"]) for d in depths) + " |")
    return lines


def _how_to_read(cfg: dict) -> str:
    return (
        "How to read it. *grad ratio*: ||dL/dW|| of the first hidden layer over that of the last hidden "
        "layer at initialisation, with each activation's usual initialiser (the `init` column), on a fixed "
        "training batch, mean over seeds. A unit is *dead* when its output is exactly 0 on every one of "
        f"{cfg['probe_size']} held-out probe images after training; *saturated* (sigmoid, tanh) when it sits "
        "in the flat region (derivative < 8% of its maximum) on >= 99% of them (in brackets: the fraction of "
        "(unit, example) pairs in the flat region). *samples/s*: the compiled training program, compilation "
        "excluded, `block_until_ready`, mean ± std over timed chunks. *elementwise*: forward + backward of "
        f"the activation alone on {cfg['elementwise_size']:,} float32s, median (mean ± std) over "
        f"{cfg['elementwise_reps']} calls. Speeds compare activations within one run on one machine; on a "
        "shared CPU they are noisy. Every number here comes from `activations.json` beside this file."
    )


def markdown(report: dict) -> str:
    """The README section: setup, table, verdicts, definitions, figures."""
    lines = ["## Activation benchmark", "", _setup(report), "", *_table(report)]
    lines += ["", "What the measurements say about the textbook story:", ""]
    for c in report["claims"]:
        verdict = "" if c["verdict"] == "info" else f" — **{c['verdict']}**"
        lines.append(f"- *{c['claim']}*{verdict}: {c['evidence']}.")
    lines += [*_depth_table(report), "", _how_to_read(report["config"]), ""]
    lines += [f"![{fig}]({fig})" for fig in report.get("figures", [])]
    lines.append("")
    return "\n".join(lines)


def _short(spec: str) -> str:
    source, _, path = spec.partition(":")
    return f"{source}:.../{Path(path).name}" if source == "idx" else spec


def write(report: dict, out: Path, t_start: float, *, plots: bool = True) -> dict:
    """Add definitions, verdicts, figures and wall time to `report`; write activations.{json,md} in `out`."""
    report["definitions"] = DEFINITIONS
    report["claims"] = claims(report)
    report["figures"] = [p.name for p in figures.draw(report, out)] if plots else []
    report["wall_s"] = round(time.perf_counter() - t_start, 2)
    common.write_report(out, "activations", report, markdown(report))
    return report

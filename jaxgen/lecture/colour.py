"""Section 8's measurements and figures: the lecture's own example, a 64 x 64 x 3 emoji as one point of a
12,288-dimensional distribution (the image as its 12,288 numbers; nearest neighbours in pixel space against
a conv VAE's latent space; a straight walk in each; DCGAN samples beside real emoji).

Everything is read from the emoji folder (`folder:PATH`, never copied into the repository) and from the runs
the walkthrough trains; emoji are found by their file names (code points: 1f600.png is 😀)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from jaxgen import data, metrics, runs, runtime
from jaxgen.data import folder
from jaxgen.plots.common import class_label, mosaic, plt, save, show_image

SIDE = 64  # the lecture's example: 64 x 64 x 3 = 12,288 numbers
K = 5  # neighbours per query
FACE, CAT = "1f600", "1f431"  # 😀 grinning face (smileys_emotion), 🐱 cat face (animals_nature): training
# test queries: 😍 heart-eyes face, 😽 kissing cat face, 🐰 rabbit face, a runner, 📀 a DVD
QUERIES = ("1f60d", "1f63d", "1f430", "1f3c3-1f3fb-200d-2640-fe0f", "1f4c0")
WALK_FRAMES = 9
GRID = (6, 8)  # DCGAN samples and real emoji: rows x cols
CHANNEL_COLOURS = ("tab:red", "tab:green", "tab:blue")


def subset_folder(src: Path, dst: Path, train_per_class: int, test_per_class: int) -> Path:
    """DST/train/<class>/ and DST/test/<class>/ as symbolic links to the first files of each of SRC's class
    folders (sorted by name) and to every emoji this section names: a small copy of the layout for the
    tests' preset, with no image copied. Kept as it is when DST already holds it."""
    named = {f"{c}.png" for c in (FACE, CAT, *QUERIES)}
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for cls in sorted(p.name for p in (src / split).iterdir() if p.is_dir()):
            files = sorted(os.listdir(src / split / cls))
            keep = [f for f in files if f.endswith(".png")][:n] + [f for f in files if f in named]
            (dst / split / cls).mkdir(parents=True, exist_ok=True)
            for f in dict.fromkeys(keep):
                link = dst / split / cls / f
                if not link.exists():
                    link.symlink_to((src / split / cls / f).absolute())
    return dst


def _find(root: Path, split: str, code: str, images: np.ndarray) -> int | None:
    """Index of ROOT/SPLIT/<class>/CODE.png among `images` (uint8 [N, S, S, 3], as folder:ROOT reads them),
    found by its pixels; None where the file is absent."""
    paths = sorted((root / split).glob(f"*/{code}.png"))
    if not paths:
        return None
    with Image.open(paths[0]) as im:
        im.load()
        pixels = folder.square_image(im, "RGB", images.shape[1])
    hits = np.flatnonzero((images == pixels[None]).reshape(len(images), -1).all(1))
    return int(hits[0]) if len(hits) else None


def _unit(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float32) / 255.0


# ---------------------------------------------------------------- 1. an emoji as 12,288 numbers


def emoji_as_vector(root: Path, spec: str, path: Path) -> dict[str, Any]:
    """The grinning face at 64 x 64 (or the first training emoji) beside its 12,288 values, R, G and B
    coloured, and one row of pixels close up."""
    ds = data.load(spec, SIDE)
    train = data.split(ds, "train")
    i = _find(root, "train", FACE, train["image"])
    i, code = (0, "?") if i is None else (i, FACE)
    img = _unit(train["image"][i])
    h, w, c = img.shape
    values = img.reshape(-1)  # row-major, as every jaxgen model and metric flattens: (row, column, channel)
    row = h // 2
    numbers = {"spec": spec, "code": code, "category": ds.name_of(int(train["label"][i])),
               "shape": [h, w, c], "dim": int(values.size), "mean": float(values.mean()),
               "white_fraction": float(np.mean(img.min(-1) >= 0.99)), "row": row}  # fmt: skip
    fig = plt.figure(figsize=(16, 5.2), layout="constrained")
    grid = fig.add_gridspec(2, 4)
    ax = fig.add_subplot(grid[:, 0])
    show_image(ax, img)
    ax.axhline(row, color="k", lw=0.6, ls=":")
    ax.set_title(f"{code}.png ({numbers['category']}): {h} × {w} pixels, {c} colours", fontsize=9)
    ax.axis("off")
    index = np.arange(values.size)
    full, zoom = fig.add_subplot(grid[0, 1:]), fig.add_subplot(grid[1, 1:])
    lo = row * w * c
    for ch, (name, colour) in enumerate(zip("RGB", CHANNEL_COLOURS, strict=True)):
        full.scatter(index[ch::c], values[ch::c], s=0.6, color=colour, linewidths=0, label=name)
        zoom.plot(index[lo + ch : lo + w * c : c], values[lo + ch : lo + w * c : c], ".-", lw=0.7, ms=3,
                  color=colour, label=f"{name} of each pixel")  # fmt: skip
    full.set_xlim(0, values.size)
    full.set_ylabel("value in [0, 1]")
    full.legend(markerscale=12, fontsize=8, loc="lower left", ncols=3)
    full.set_title(f"the same emoji as one point of [0, 1]^{values.size:,}: value against index (row-major: "
                   "row, column, then R, G, B)", fontsize=9)  # fmt: skip
    zoom.set_xlim(lo, lo + w * c)
    zoom.set_xlabel("index")
    zoom.set_ylabel("value")
    zoom.legend(fontsize=8, loc="lower left", ncols=3)
    zoom.set_title(f"close up: row {row} (the dotted line), indices {lo:,}–{lo + w * c - 1:,}: "
                   f"{w} pixels × R, G, B", fontsize=9)  # fmt: skip
    fig.suptitle(f"an image is a vector: {h} × {w} × {c} = {values.size:,} numbers ({spec})", fontsize=11)
    save(fig, Path(path))
    return numbers


# ---------------------------------------------------------------- 2. neighbours, pixels against codes


def _share_same(train_y: np.ndarray, test_y: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    """Per query: the share of its neighbours in its own category."""
    return (train_y[nearest] == test_y[:, None]).mean(1)


def neighbours(root: Path, spec: str, vae_dir: Path, path: Path) -> dict[str, Any]:
    """Each test emoji's K nearest training emoji in pixel space (64 x 64 x 3 = 12,288-D) and among the VAE's
    codes (its posterior means, of the images at the size it trained at): the share of neighbours in the
    query's category, over the test set, for each space and by chance; the figure of a few queries."""
    task, state, step, _, ds_vae, cfg, _ = runs.restore_for_eval(vae_dir)
    ds = data.load(spec, SIDE)
    tr, te = data.split(ds, "train"), data.split(ds, "test")
    tr_v, te_v = data.split(ds_vae, "train"), data.split(ds_vae, "test")
    for a, b in ((tr, tr_v), (te, te_v)):  # one file order at every size (folder:PATH's fixed shuffle)
        if not np.array_equal(a["label"], b["label"]):
            raise RuntimeError(f"{spec} read at {SIDE} and at {cfg.image_size} gives other orders")
    train_y, test_y = np.asarray(tr["label"]), np.asarray(te["label"])
    pixel_nn = metrics.knn_neighbours(_unit(tr["image"]), _unit(te["image"]), K)
    codes_tr = task.encode(state.params, _unit(tr_v["image"]))
    codes_te = task.encode(state.params, _unit(te_v["image"]))
    latent_nn = metrics.knn_neighbours(codes_tr, codes_te, K)
    share = {k: _share_same(train_y, test_y, v) for k, v in (("pixels", pixel_nn), ("latent", latent_nn))}
    counts = np.bincount(train_y, minlength=ds.num_classes) / len(train_y)
    picks = [i for i in (_find(root, "test", q, te["image"]) for q in QUERIES) if i is not None]
    picks = picks or list(range(min(len(QUERIES), len(test_y))))
    numbers = {
        "spec": spec, "k": K, "n_test": int(len(test_y)), "n_train": int(len(train_y)),
        "n_categories": int(ds.num_classes),
        "pixel_dim": int(np.prod(ds.shape)), "latent_dim": int(codes_tr.shape[1]),
        "vae_image_size": int(cfg.image_size), "vae_step": int(step),
        "share_same_category": {k: float(v.mean()) for k, v in share.items()},
        "share_by_chance": float(counts[test_y].mean()),
        "queries": [{"category": ds.name_of(int(test_y[i])), "pixels": float(share["pixels"][i]),
                     "latent": float(share["latent"][i])} for i in picks],
    }  # fmt: skip
    _neighbours_figure(tr["image"], te["image"], train_y, test_y, ds.class_names,
                       {"pixels": pixel_nn, "latent": latent_nn}, picks, numbers, path)  # fmt: skip
    return numbers


def _neighbours_figure(train_x, test_x, train_y, test_y, names, nearest: dict, picks, numbers, path: Path):
    """One row per query: the query, its K pixel-space neighbours, its K latent-space neighbours; each
    neighbour titled by its category, green when it is the query's."""
    share, rows = numbers["share_same_category"], len(picks)
    fig = plt.figure(figsize=(1.3 * (2 * K + 1.4), 1.45 * rows + 0.8), layout="constrained")
    left, *groups = fig.subfigures(1, 3, width_ratios=[1.3, K, K], wspace=0.03)
    left.suptitle("test emoji", fontsize=9)
    for r, q in enumerate(picks):
        ax = left.add_subplot(rows, 1, r + 1)
        show_image(ax, test_x[q])
        ax.set_title(class_label(names, int(test_y[q]), 12), fontsize=7, fontweight="bold")
        ax.axis("off")
    for sub, key in zip(groups, ("pixels", "latent"), strict=True):
        what = (f"pixel space ({numbers['pixel_dim']:,}-D)" if key == "pixels"
                else f"the VAE's codes ({numbers['latent_dim']}-D)")  # fmt: skip
        sub.suptitle(f"{K} nearest in {what}: {share[key]:.1%} in the query's category", fontsize=9)
        axes = sub.subplots(rows, K, squeeze=False)
        for r, q in enumerate(picks):
            for j, n in enumerate(nearest[key][q]):
                ax = axes[r, j]
                show_image(ax, train_x[n])
                same = train_y[n] == test_y[q]
                ax.set_title(class_label(names, int(train_y[n]), 12), fontsize=6.5,
                             color="tab:green" if same else "tab:red")  # fmt: skip
                ax.axis("off")
    fig.suptitle(
        f"the {K} nearest of {numbers['n_train']:,} training emoji; over all {numbers['n_test']} test emoji "
        f"{share['pixels']:.1%} (pixels) against {share['latent']:.1%} (codes) of them share the query's "
        f"category, {numbers['share_by_chance']:.1%} by chance",
        fontsize=10,
    )
    save(fig, Path(path))


# ---------------------------------------------------------------- 3. a straight walk in each space


def walk(root: Path, spec: str, vae_dir: Path, path: Path) -> dict[str, Any]:
    """From the grinning face to the cat face: WALK_FRAMES points of the straight line between them in pixel
    space (a cross-fade, at 64 x 64) against the decoded straight line between their VAE codes."""
    task, state, step, _, ds_vae, cfg, _ = runs.restore_for_eval(vae_dir)
    ds = data.load(spec, SIDE)
    tr, tr_v = data.split(ds, "train"), data.split(ds_vae, "train")
    ends = [_find(root, "train", c, tr["image"]) for c in (FACE, CAT)]
    codes = [FACE, CAT] if None not in ends else ["?", "?"]
    ends = ends if None not in ends else [0, 1]
    t = np.linspace(0.0, 1.0, WALK_FRAMES, dtype=np.float32)[:, None]
    a, b = (_unit(tr["image"][i]).reshape(1, -1) for i in ends)
    fade = ((1 - t) * a + t * b).reshape(WALK_FRAMES, *ds.shape)
    z = task.encode(state.params, _unit(tr_v["image"][ends]))
    decoded = task.decode(state.params, (1 - t) * z[:1] + t * z[1:])
    numbers = {"from": codes[0], "to": codes[1], "frames": WALK_FRAMES, "vae_image_size": int(cfg.image_size),
               "pixel_distance": float(np.linalg.norm(a - b)), "latent_dim": int(z.shape[1]),
               "code_distance": float(np.linalg.norm(z[0] - z[1])), "vae_step": int(step)}  # fmt: skip
    fig, axes = plt.subplots(2, WALK_FRAMES, figsize=(1.6 * WALK_FRAMES, 4.1), layout="constrained")
    rows = ((fade, f"pixel space ({int(np.prod(ds.shape)):,}-D): (1 − t)·x_a + t·x_b, a cross-fade"),
            (decoded, f"VAE latent space ({z.shape[1]}-D): decode((1 − t)·z_a + t·z_b), "
                      f"{cfg.image_size} × {cfg.image_size}"))  # fmt: skip
    for r, (frames, title) in enumerate(rows):
        for k, ax in enumerate(axes[r]):
            show_image(ax, frames[k])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"t = {t[k, 0]:.3g}", fontsize=7)
        axes[r, WALK_FRAMES // 2].set_title(title, fontsize=9)
    fig.suptitle(f"a straight walk from {codes[0]}.png to {codes[1]}.png ({spec}; the VAE after {step:,} "
                 "steps)", fontsize=10)  # fmt: skip
    save(fig, Path(path))
    return numbers


# ---------------------------------------------------------------- 4. DCGAN samples beside real emoji


def dcgan_samples(gan_dir: Path, path: Path) -> dict[str, Any]:
    """rows x cols samples of the DCGAN (the run's evaluation key) beside as many training emoji; how far,
    per pixel value (root mean square), each sample and each test emoji is from its nearest training emoji."""
    task, state, step, _, ds, cfg, spec = runs.restore_for_eval(gan_dir)
    n = GRID[0] * GRID[1]
    samples = np.asarray(task.sample(state.params, runtime.eval_key(cfg.seed), n), np.float32)
    tr, te = data.split(ds, "train"), data.split(ds, "test")
    train_x, test_x = _unit(tr["image"]), _unit(te["image"])
    dim = int(np.prod(ds.shape))

    def nn_rms(x: np.ndarray) -> float:
        nearest = metrics.knn_neighbours(train_x, x, 1)[:, 0]
        return float(np.sqrt(((x - train_x[nearest]) ** 2).reshape(len(x), -1).mean(1)).mean())

    numbers = {"step": int(step), "image_size": int(cfg.image_size), "channels": list(cfg.channels),
               "n": n, "dim": dim, "sample_nn_rms": nn_rms(samples), "test_nn_rms": nn_rms(test_x[:n]),
               "sample_mean": float(samples.mean()), "train_mean": float(train_x.mean())}  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.6), layout="constrained")
    widths = ",".join(map(str, cfg.channels))
    for ax, images, title in (
        (axes[0], samples, f"{n} DCGAN samples after {step:,} steps (channels {widths})"),
        (axes[1], train_x[:n], f"{n} real training emoji, at the same {cfg.image_size} × {cfg.image_size}"),
    ):
        show_image(ax, mosaic(images, *GRID))
        ax.axis("off")
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"new points of the {dim:,}-dimensional emoji distribution ({spec}): mean distance to the "
                 f"nearest training emoji {numbers['sample_nn_rms']:.3f} per value (test emoji: "
                 f"{numbers['test_nn_rms']:.3f})", fontsize=10)  # fmt: skip
    save(fig, Path(path))
    return numbers

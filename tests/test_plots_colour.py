"""Figures of images of any size and channel count (issue 30): one helper draws an image [H, W, C] (C = 1 in
grey, C = 3 as RGB) or a flat vector, `mosaic` tiles a batch; the classifier, autoencoder and GAN figures
draw colour [N, 16, 16, 3] data with long class names from small fake tasks (no training), and an old
run's flat [N, 784] GAN snapshots still draw as 28 x 28 grey."""

import json
import types

import matplotlib.image
import numpy as np
import pytest

from jaxgen import metrics
from jaxgen.plots import autoencoder as ae_plots
from jaxgen.plots import classifier as clf_plots
from jaxgen.plots import common
from jaxgen.plots import gan as gan_plots

NAMES = ("smileys_emotion", "animals_nature", "travel_places")  # long names, as the emoji categories
RED, GREEN, BLUE = np.eye(3, dtype=np.float32)


def red_square_batch(n: int = 4, h: int = 32, w: int = 32) -> np.ndarray:
    """n black colour images [h, w, 3]; image 1 has a red square at rows 8..15, columns 8..15."""
    x = np.zeros((n, h, w, 3), np.float32)
    x[1, 8:16, 8:16] = RED
    return x


# ---------------------------------------------------------------- the helpers


def test_mosaic_places_colour_pixels_and_white_gaps():
    x = red_square_batch()
    m = common.mosaic(x, 2, 2, gap=2)
    assert m.shape == (66, 66, 3) and m.dtype == np.float32
    np.testing.assert_array_equal(
        m[8:16, 34 + 8 : 34 + 16], np.broadcast_to(RED, (8, 8, 3))
    )  # image 1: row 0, col 1
    np.testing.assert_array_equal(m[0:32, 34:66][:8], 0.0)  # black rows of image 1 above the square
    np.testing.assert_array_equal(m[:, 32:34], 1.0)  # the gap between columns: white
    np.testing.assert_array_equal(m[32:34, :], 1.0)  # and between rows
    assert (m[..., 0] != m[..., 1]).any()  # the channels differ: not folded to grey
    # uint8 0..255 reads as 0..1; any size; missing cells white
    m8 = common.mosaic((x * 255).astype(np.uint8)[:3, :10, :20], 1, 4, gap=1)
    assert m8.shape == (10, 4 * 21 - 1, 3)
    np.testing.assert_array_equal(m8[8:10, 21 + 8 : 21 + 16], np.broadcast_to(RED, (2, 8, 3)))
    np.testing.assert_array_equal(m8[:, 63:], 1.0)


def test_mosaic_grey_and_flat_rows():
    x = np.zeros((3, 784), np.float32)
    x[2, :28] = 1.0  # first row of image 2 is ink
    m = common.mosaic(x, 1, 3)  # flat 784: 28 x 28 grey, 2 pixels of background (0: white in gray_r)
    assert m.shape == (28, 3 * 30 - 2, 1)
    np.testing.assert_array_equal(m[0, 60:88, 0], 1.0)
    assert m[1:, 60:88].sum() == 0 and m[:, 28:30].sum() == 0
    # flat colour rows with the images' shape; [N, H, W] grey
    flat = red_square_batch(2, 16, 12).reshape(2, -1)
    assert common.mosaic(flat, 1, 2, shape=(16, 12, 3)).shape == (16, 26, 3)
    assert common.mosaic(np.zeros((2, 5, 7)), 2, 1).shape == (12, 7, 1)


def test_as_image_reads_every_layout():
    assert common.as_image(np.zeros(784)).shape == (28, 28, 1)  # an old flat digit
    assert common.as_image(np.zeros(32 * 32 * 3)).shape == (32, 32, 3)  # flat square colour
    assert common.as_image(np.zeros(16 * 12 * 3), shape=(16, 12, 3)).shape == (16, 12, 3)
    assert common.as_image(np.zeros(784), shape=(16, 16, 3)).shape == (28, 28, 1)  # shape that does not fit
    assert common.as_image(np.zeros((5, 7))).shape == (5, 7, 1)
    np.testing.assert_array_equal(common.as_image(np.full((2, 2, 3), 1.5)), 1.0)  # clipped
    np.testing.assert_allclose(common.as_image(np.full((2, 2, 3), 51, np.uint8)), 0.2)
    with pytest.raises(ValueError):
        common.as_image(np.zeros(10))
    with pytest.raises(ValueError):
        common.as_image(np.zeros((4, 4, 2)))


def test_show_image_draws_colour_as_rgb_and_grey_as_a_grey_map():
    fig, axes = common.plt.subplots(1, 3)
    rgb = common.show_image(axes[0], red_square_batch()[1])
    assert rgb.get_array().shape == (32, 32, 3)
    np.testing.assert_array_equal(np.asarray(rgb.get_array())[10, 10], RED)
    grey = common.show_image(axes[1], np.zeros((20, 30, 1)))
    assert grey.get_array().shape == (20, 30)
    assert grey.get_cmap().name == "gray_r" and grey.get_clim() == (0, 1)
    flat = common.show_image(axes[2], np.zeros(784, np.uint8))
    assert flat.get_array().shape == (28, 28) and flat.get_cmap().name == "gray_r"
    common.plt.close(fig)


def test_image_grid_writes_colour_pixels(tmp_path):
    x = (red_square_batch(3) * 255).astype(np.uint8)
    path = common.image_grid(x, tmp_path / "grid.png", titles=["a", "b≠c", "c"], cols=3)
    png = matplotlib.image.imread(path)[..., :3]
    red = (png[..., 0] > 0.9) & (png[..., 1] < 0.1) & (png[..., 2] < 0.1)
    assert red.sum() > 20  # the red square is in the file as red, not grey


def test_short_names():
    assert common.short_name("smileys_emotion") == "smileys_emoti…" and len(common.short_name("x" * 40)) == 14
    assert common.class_label(NAMES, 1) == "animals_nature" and common.class_label(NAMES, 7) == "7"


# ---------------------------------------------------------------- the figures, from fake tasks


@pytest.fixture
def drawn(monkeypatch):
    """file name -> what the figure held when saved: its images' (array shape, colour map) and its texts."""
    seen = {}
    original = common.save

    def recording_save(fig, path):
        images, texts = [], []
        for ax in fig.axes:
            images += [(tuple(im.get_array().shape), im.get_cmap().name) for im in ax.images]
            texts += [ax.get_title(), *(t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels())]
            if ax.get_legend():
                texts += [t.get_text() for t in ax.get_legend().get_texts()]
        seen[path.name] = {"images": images, "texts": [t for t in texts if t]}
        return original(fig, path)

    for module in (common, ae_plots, gan_plots):
        monkeypatch.setattr(module, "save", recording_save)
    return seen


def colour_data(n_per_class: int = 8, side: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [3 n, side, side, 3]: class c a square of primary colour c on a mid-grey ground."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), n_per_class)
    x = np.full((len(y), side, side, 3), 0.5, np.float32) + 0.05 * rng.standard_normal(
        (len(y), side, side, 3)
    )
    for i, c in enumerate(y):
        x[i, 4:12, 4:12] = np.eye(3)[c]
    return (np.clip(x, 0, 1) * 255).astype(np.uint8), y


def assert_colour(images, n_min: int = 1):
    assert len(images) >= n_min
    for shape, _ in images:
        assert len(shape) == 3 and shape[-1] in (3, 4), images  # RGB (or the RGBA density panel)


def assert_short_names(texts):
    assert any("smileys_emoti…" in t for t in texts), texts
    assert not any("smileys_emotion" in t for t in texts), texts


def test_classifier_figures_in_colour(tmp_path, drawn):
    x, y = colour_data()

    def logits(params, images):
        assert images.shape[1:] == (16, 16, 3)
        out = np.asarray(images, np.float32)[:, 8, 8, :]  # the square's colour: the class
        out[0] = [0, 0, 1]  # one wrong: "pred≠true"
        return out

    task = types.SimpleNamespace(
        kind="image", num_classes=3, class_names=NAMES, shape=(16, 16, 3), logits=logits
    )
    paths = clf_plots.figures(task, None, {"image": x, "label": y}, tmp_path / "plots")
    assert [p.name for p in paths] == ["predictions.png", "confusion.png"] and all(p.exists() for p in paths)
    grid = drawn["predictions.png"]
    assert_colour(grid["images"], len(y))
    assert all(shape == (16, 16, 3) for shape, _ in grid["images"])
    assert "travel_places\n≠smileys_emoti…" in grid["texts"]
    assert_short_names(drawn["confusion.png"]["texts"])


class FakeAE:
    """The autoencoder task's surface that jaxgen.plots.autoencoder uses: codes are an image's mean colour
    (red, green first), decoding paints an image of the code's colour."""

    def __init__(self, shape=(16, 16, 3), names=NAMES, latent_dim=2):
        self.shape, self.class_names = shape, names
        self.cfg = types.SimpleNamespace(
            variational=True, noise=0.0, arch_spec=types.SimpleNamespace(label="conv"),
            latent_dim=latent_dim, seed=0, mixture=3,
        )  # fmt: skip
        x, y = colour_data(side=shape[0])
        if shape[-1] == 1:
            x = x.mean(-1, keepdims=True).astype(np.uint8)
        self.x, self.y = x.astype(np.float32) / 255.0, y

    def encode(self, params, images):
        x = np.asarray(images, np.float32).reshape(len(images), *self.shape)
        means = x.mean((1, 2))  # [N, C]
        return np.concatenate([means, x[:, :8].mean((1, 2)), x[:, :6, :6].mean((1, 2))], 1)[
            :, : self.cfg.latent_dim
        ]

    def decode(self, params, codes):
        z = np.asarray(codes, np.float32)
        colour = np.clip(np.stack([z[:, 0], z[:, -1], 1 - z[:, 0]], 1), 0, 1)[:, : self.shape[-1]]
        return np.broadcast_to(colour[:, None, None, :], (len(z), *self.shape)).astype(np.float32)

    def train_images(self, n=None):
        return self.x, self.y

    def pca(self):
        return metrics.pca_fit(self.x.reshape(len(self.x), -1), self.cfg.latent_dim)

    def sample(self, params, key, n):
        return self.decode(params, np.random.default_rng(1).random((n, self.cfg.latent_dim)))


def test_autoencoder_figures_in_colour(tmp_path, drawn):
    task = FakeAE()
    arrays = {"image": (task.x * 255).astype(np.uint8), "label": task.y}
    paths = ae_plots.figures(task, None, arrays, tmp_path / "plots", step=5)
    names = {p.name for p in paths}
    assert names == {f"{n}.png" for n in ("reconstructions", "latent_space", "digit_means", "interpolation",
                                          "samples", "latent_grid")}  # fmt: skip
    assert all(p.exists() for p in paths)
    for name in names - {"latent_space.png"}:
        assert_colour(drawn[name]["images"])
    assert drawn["reconstructions.png"]["images"][0][0] == (16, 6 * 18 - 2, 3)  # two of each of 3 classes
    assert drawn["samples.png"]["images"][0][0] == (8 * 18 - 2, 8 * 18 - 2, 3)
    assert [s for s, _ in drawn["digit_means.png"]["images"]] == [(16, 16, 3)] * 3
    assert drawn["latent_grid.png"]["images"][0][0] == (20 * 16, 20 * 16, 4)
    for name in ("latent_space.png", "digit_means.png", "interpolation.png", "latent_grid.png"):
        assert_short_names(drawn[name]["texts"])


def test_autoencoder_figures_grey_digits_look_as_before(tmp_path, drawn):
    task = FakeAE(shape=(28, 28, 1), names=(), latent_dim=3)
    arrays = {"image": (task.x * 255).astype(np.uint8), "label": task.y}
    ae_plots.figures(task, None, arrays, tmp_path / "plots", step=5)
    assert "latent_grid.png" not in drawn  # latent_dim 3
    samples = drawn["samples.png"]["images"]
    assert samples == [((8 * 30 - 2, 8 * 30 - 2), "gray_r")]
    assert all(len(s) == 2 and cmap == "gray_r" for s, cmap in drawn["interpolation.png"]["images"])
    assert {"0 → 1", "1 → 2", "2 → 0"} <= set(drawn["interpolation.png"]["texts"])


def gan_task(shape):
    sample = lambda params, key, n: np.broadcast_to(RED, (n, *shape[:2], 3))[..., : shape[-1]].copy()  # noqa: E731
    return types.SimpleNamespace(
        kind="image", spec="npz:emoji", shape=shape, class_names=NAMES, gp=0.0, reading="d",
        resolved={"pack": 1, "r1": 0.0, "ema": 0.0, "d_lr": 2e-4},
        cfg=types.SimpleNamespace(lr=2e-4, d_steps=1, loss="ns", seed=0, pack=1),
        loss=types.SimpleNamespace(probability=True, at_zero=(float(np.log(4)), float(np.log(2)))),
        sample=sample,
    )  # fmt: skip


def gan_run(tmp_path, snapshots: dict[int, np.ndarray]):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    for step, x in snapshots.items():
        np.save(run / "samples" / f"{step}.npy", x)
    rows = [{"step": s, "train/d_loss": 1.3, "train/g_loss": 0.7, "train/d_real": 0.6, "train/d_fake": 0.4}
            for s in (10, 20)]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_gan_figures_in_colour(tmp_path, drawn):
    snap = red_square_batch(12, 16, 16)
    run = gan_run(tmp_path, {10: snap, 20: snap})
    paths = gan_plots.figures(gan_task((16, 16, 3)), None, {}, run / "plots", step=20)
    assert {p.name for p in paths} == {"gan_curves.png", "progress.png", "samples.png"}
    assert all(p.exists() for p in paths)
    assert [s for s, _ in drawn["progress.png"]["images"]] == [(16, 16, 3)] * 24
    assert [s for s, _ in drawn["samples.png"]["images"]] == [(16, 16, 3)] * 64


def test_gan_progress_of_an_old_run_with_flat_digits(tmp_path, drawn):
    run = gan_run(tmp_path, {10: np.zeros((12, 784), np.float32)})
    path = gan_plots.progress(gan_task((28, 28, 1)), run, run / "plots", {})
    assert path.exists()
    assert drawn["progress.png"]["images"] == [((28, 28), "gray_r")] * 12


# ---------------------------------------------------------------- checkpoint images (uint8 RGB), no files


@pytest.fixture
def rendered(monkeypatch):
    """The texts (titles, tick labels) of every figure rendered to an RGB array, in order."""
    seen = []
    original = common.figure_rgb

    def recording(fig):
        seen.append([t.get_text() for t in fig.texts])
        return original(fig)

    monkeypatch.setattr(common, "figure_rgb", recording)
    return seen


def test_rgb_grid_draws_colour_as_rgb_and_grey_as_ink_on_white():
    colour = common.rgb_grid(red_square_batch(3))  # 3 images: 2 x 2, the fourth cell white
    assert colour.shape == (66, 66, 3) and colour.dtype == np.uint8
    np.testing.assert_array_equal(colour[8:16, 34 + 8 : 34 + 16], np.broadcast_to([255, 0, 0], (8, 8, 3)))
    assert (colour[:, 32:34] == 255).all() and (colour[34:, 34:] == 255).all()
    grey = np.zeros((2, 5, 4, 1), np.float32)
    grey[0, 0] = 1.0  # ink: drawn black
    g = common.rgb_grid(grey, cols=2, gap=1)
    assert g.shape == (5, 9, 3) and (g[0, :4] == 0).all() and (g[1:] == 255).all()


def test_checkpoint_previews_in_colour_and_grey(rendered):
    task = FakeAE()  # variational: a row of samples below the reconstructions
    arrays = {"image": (task.x * 255).astype(np.uint8), "label": task.y}
    rgb = ae_plots.preview(task, None, arrays)
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[-1] == 3
    assert (np.abs(rgb.astype(int)[..., 0] - rgb[..., 1]) > 100).any()  # colour pixels, not grey
    assert_short_names(rendered[-1])
    assert {"test", "reconstruction", "samples"} <= set(rendered[-1])
    grey = FakeAE(shape=(28, 28, 1), names=())
    rgb = ae_plots.preview(grey, None, {"image": (grey.x * 255).astype(np.uint8), "label": grey.y})
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()  # grey as grey
    assert len([t for t in rendered[-1] if t in "0123456789"]) == 8  # 3 classes, filled to 8 with digits

    x, y = colour_data()
    wrong = lambda params, images: np.eye(3, dtype=np.float32)[(y[: len(images)] + 1) % 3]  # noqa: E731
    clf = types.SimpleNamespace(kind="image", class_names=NAMES, shape=(16, 16, 3), logits=wrong)
    rgb = clf_plots.preview(clf, None, {"image": x, "label": y})
    assert rgb.dtype == np.uint8 and rgb.shape[-1] == 3
    assert len(rendered[-1]) == 16 + 2 and "animals_nature≠smileys_emoti…" in rendered[-1]

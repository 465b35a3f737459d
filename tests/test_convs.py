"""Convolutions (jaxgen.convs) against flax's own, and the conv models of every image task (arch=conv)."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import cli, config, configs, convs, data, models, runtime, tasks, train
from jaxgen.errors import UserError
from jaxgen.tasks import base


def close(a, b, rtol=2e-5):
    """Float32 agreement relative to the larger magnitude."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-12)
    assert np.abs(a - b).max() <= rtol * scale, (np.abs(a - b).max(), scale)


def grads(module, params, x):
    """Kernel, bias and input gradients of a scalar of the output, jitted (one compile beats the op-by-op
    dispatch of the slices' backward: 3 s against 10 s for the second-order case below)."""
    return jax.jit(jax.grad(lambda p, x: jnp.sum(jnp.sin(module.apply(p, x))), argnums=(0, 1)))(params, x)


@pytest.mark.parametrize(
    "k,stride,padding,side",
    [(3, 1, "SAME", 14), (3, 2, "SAME", 14), (4, 2, "SAME", 14), (5, 1, "VALID", 14), (3, 2, "SAME", 7),
     (3, 2, "VALID", 14), (2, 2, "VALID", 7)],
)  # fmt: skip
def test_slices_conv_matches_nn_conv_and_its_gradients(k, stride, padding, side):
    """Outputs, kernel and input gradients (jax.grad through the slices) against nn.Conv's."""
    x = jax.random.normal(jax.random.key(0), (3, side, side, 5))
    ref = nn.Conv(7, (k, k), strides=(stride, stride), padding=padding)
    params = ref.init(jax.random.key(1), x)
    for impl in ("slices", "xla"):
        mine = convs.Conv(7, k, stride, padding, impl=impl)
        close(mine.apply(params, x), ref.apply(params, x))
        for a, b in zip(
            jax.tree.leaves(grads(mine, params, x)), jax.tree.leaves(grads(ref, params, x)), strict=True
        ):
            close(a, b)


@pytest.mark.parametrize("k,stride", [(4, 2), (3, 2), (5, 2), (3, 1)])
def test_phase_transposed_conv_matches_nn_conv_transpose(k, stride):
    x = jax.random.normal(jax.random.key(0), (2, 7, 7, 6))
    ref = nn.ConvTranspose(5, (k, k), strides=(stride, stride), padding="SAME")
    params = ref.init(jax.random.key(1), x)
    for impl in ("slices", "xla"):
        mine = convs.ConvTranspose(5, k, stride, impl=impl)
        assert mine.apply(params, x).shape == (2, 7 * stride, 7 * stride, 5)
        close(mine.apply(params, x), ref.apply(params, x))
        for a, b in zip(
            jax.tree.leaves(grads(mine, params, x)), jax.tree.leaves(grads(ref, params, x)), strict=True
        ):
            close(a, b)


def test_second_order_gradient_through_slices_matches_xla():
    """R1 takes the gradient of a gradient of D: both implementations give the same one."""
    x = jax.random.normal(jax.random.key(0), (2, 28, 28, 1))
    d = models.DCGANDiscriminator((4, 8), impl="xla")
    params = d.init(jax.random.key(1), x)

    def r1(impl):
        m = models.DCGANDiscriminator((4, 8), impl=impl)
        pen = lambda p: jnp.sum(jax.grad(lambda x: m.apply(p, x).sum())(x) ** 2)
        return jax.jit(jax.grad(pen))(params)

    for a, b in zip(jax.tree.leaves(r1("slices")), jax.tree.leaves(r1("xla")), strict=True):
        close(a, b, 1e-4)


def test_max_pool_is_nn_max_pool():
    x = jax.random.normal(jax.random.key(0), (2, 14, 14, 3))
    close(convs.max_pool(x), nn.max_pool(x, (2, 2), (2, 2)))
    assert convs.max_pool(jnp.zeros((1, 7, 7, 1))).shape == (1, 3, 3, 1)


def test_auto_is_slices_on_cpu_and_xla_elsewhere():
    assert convs.resolve_impl("auto", "cpu") == "slices"
    assert convs.resolve_impl("auto", "gpu") == convs.resolve_impl("auto", "tpu") == "xla"
    assert convs.resolve_impl("xla", "cpu") == "xla"
    assert runtime.env_info()["conv_impl_auto"] == convs.resolve_impl("auto")
    assert convs.IMPLS == config.CONV_IMPLS and models.NORMS == config.NORMS


def dcgan_g_count(z, c1, c2):
    """Dense z -> 7*7*c2 (no bias, BatchNorm follows), BN(c2), 4x4 deconv c2->c1 (no bias), BN(c1),
    4x4 deconv c1->1 with bias."""
    return z * 49 * c2 + 2 * c2 + 16 * c2 * c1 + 2 * c1 + 16 * c1 + 1


def dcgan_d_count(c1, c2, pack=1):
    """4x4 conv pack->c1, 4x4 conv c1->c2 (with biases), dense 7*7*c2 -> 1."""
    return 16 * pack * c1 + c1 + 16 * c1 * c2 + c2 + 49 * c2 + 1


def dcgan_d3_count(c1, c2, c3):
    """Three 4x4 stride-2 convs 1 -> c1 -> c2 -> c3 (28 -> 14 -> 7 -> 4, with biases), dense 4*4*c3 -> 1."""
    return 16 * c1 + c1 + 16 * c1 * c2 + c2 + 16 * c2 * c3 + c3 + 16 * c3 + 1


@pytest.mark.parametrize("z,c1,c2", [(16, 32, 64), (100, 64, 128), (3, 4, 8)])
def test_dcgan_parameter_counts_and_shapes(z, c1, c2):
    g = models.DCGANGenerator((c1, c2), (28, 28, 1))
    v = jax.eval_shape(g.init, jax.random.key(0), jnp.zeros((1, z)))  # shapes only: nothing compiled
    assert models.param_count(v["params"]) == dcgan_g_count(z, c1, c2)
    assert set(v["batch_stats"]) == {"net"}
    assert jax.eval_shape(g.apply, v, jnp.ones((3, z))).shape == (3, 28, 28, 1)
    d = models.DCGANDiscriminator((c1, c2), pack=2)
    vd = jax.eval_shape(d.init, jax.random.key(0), jnp.zeros((1, 2, 28, 28, 1)))  # PacGAN: 2 per row
    assert models.param_count(vd) == dcgan_d_count(c1, c2, 2)
    assert jax.eval_shape(d.apply, vd, jnp.zeros((5, 2, 28, 28, 1))).shape == (5,)
    if c1 == 4:  # the values of a small one: pixels in [0, 1]
        out = g.apply(g.init(jax.random.key(0), jnp.zeros((1, z))), jnp.ones((3, z)))
        assert 0 <= float(out.min()) and float(out.max()) <= 1


def test_gan_d_channels_set_the_discriminator_apart_from_the_generator():
    """d_channels: D's widths (up to 3 stride-2 stages: 28 -> 14 -> 7 -> 4) while G keeps `channels`;
    empty = G's widths and one stage more, twice as wide; more than 3 stages or a zero width is one line
    before anything compiles."""
    ds = data.load("embedded")

    def counts(**over):
        task = tasks.build(tasks.make_config("gan", {"arch": "conv", "latent_dim": 16, **over}), ds)
        z, x = jnp.zeros((1, 16)), jnp.zeros((1, 28, 28, 1))
        g = jax.eval_shape(task.g_model.init, jax.random.key(0), z)
        d = jax.eval_shape(task.d_model.init, jax.random.key(0), x)
        assert jax.eval_shape(task.d_model.apply, d, jnp.zeros((5, 28, 28, 1))).shape == (5,)
        return models.param_count(g["params"]), models.param_count(d)

    wide_g = counts(channels=(64, 128), d_channels=(32, 64))
    assert wide_g == (dcgan_g_count(16, 64, 128), dcgan_d_count(32, 64))
    two = counts(channels=(32, 64), d_channels=(32, 64))
    assert two == (dcgan_g_count(16, 32, 64), dcgan_d_count(32, 64))
    # three stages: 4x4 convs 1->8->16->32, dense 4*4*32 -> 1
    three = 16 * 8 + 8 + 16 * 8 * 16 + 16 + 16 * 16 * 32 + 32 + 16 * 32 + 1
    assert counts(channels=(4, 8), d_channels=(8, 16, 32))[1] == three
    # the default D: G's 32, 64 and a third stage of 128 (and one stage more than a one-stage G)
    assert counts() == (dcgan_g_count(16, 32, 64), dcgan_d3_count(32, 64, 128))
    assert counts(channels=(8, 16))[1] == dcgan_d3_count(8, 16, 32)
    assert counts(channels=(8,))[1] == dcgan_d_count(8, 16)  # a one-stage G (14 -> 28): D 28 -> 14 -> 7
    with pytest.raises(UserError, match="d_channels must be 1 to 8 positive widths"):
        tasks.make_config("gan", config.parse_sets(tasks.config_class("gan"), ["d_channels=0,8"]))
    with pytest.raises(UserError, match="d_channels has 5 stride-2 stages, more than 28x28 images can be"):
        counts(d_channels=(4, 8, 16, 32, 64))  # 28 -> 14 -> 7 -> 4 -> 2 -> 1: one too many


def test_cnn_and_conv_autoencoder_shapes_and_counts():
    net = models.ConvNet((32, 64), (256,), 10)
    v = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)))  # shapes only
    # conv 3x3 1->32, BN 32, conv 32->64, BN 64 (no conv biases under BatchNorm), dense 7*7*64->256->10
    assert models.param_count(v["params"]) == 9 * 32 + 64 + 9 * 32 * 64 + 128 + 3136 * 256 + 256 + 2570
    logits, feats = jax.eval_shape(lambda v, x: net.apply(v, x, features=True), v, jnp.zeros((4, 28, 28, 1)))
    assert logits.shape == (4, 10) and feats.shape == (4, 256)
    grey, colour = (28, 28, 1), (32, 32, 3)
    ae = models.ConvAutoencoderNet((32, 64), 16, grey, variational=True)
    va = jax.eval_shape(ae.init, jax.random.key(0), jnp.zeros((1, *grey)))
    mu, logvar = jax.eval_shape(lambda v, x: ae.apply(v, x, method=ae.encode), va, jnp.zeros((2, *grey)))
    assert mu.shape == logvar.shape == (2, 16)
    assert jax.eval_shape(lambda v, z: ae.apply(v, z, method=ae.decode), va, mu).shape == (2, *grey)
    one = models.ConvAutoencoderNet((8,), 4, grey)  # one stage: 28 -> 14 -> 28
    v1 = jax.eval_shape(one.init, jax.random.key(0), jnp.zeros((1, *grey)))
    assert jax.eval_shape(one.apply, v1, jnp.zeros((2, *grey))).shape == (2, *grey)
    # colour 32x32: three stages 32 -> 16 -> 8 -> 4 and back; the decoder ends in three maps
    three = models.ConvAutoencoderNet((8, 16, 32), 4, colour)
    v3 = jax.eval_shape(three.init, jax.random.key(0), jnp.zeros((1, *colour)))
    assert v3["params"]["decoder"]["project"]["kernel"].shape == (4, 4 * 4 * 32)
    assert v3["params"]["decoder"]["deconv_2"]["kernel"].shape == (4, 4, 8, 3)
    assert jax.eval_shape(three.apply, v3, jnp.zeros((2, *colour))).shape == (2, *colour)


def one_batch(ds, n=32):
    return {"image": jnp.asarray(ds.train["image"][:n]), "label": jnp.asarray(ds.train["label"][:n])}


@pytest.mark.parametrize("name", ["mlp", "ae", "gan"])
def test_conv_loss_falls_on_one_batch(name):
    ds = data.load("embedded")
    over = {"arch": "conv", "channels": (8, 16), "steps": 200, "batch_size": 32, "augment": False}
    if name == "mlp":
        over |= {"head": (32,), "dropout": 0.0, "warmup_steps": 0, "label_smoothing": 0.0}
    if name == "ae":
        over |= {"latent_dim": 8}
    if name == "gan":
        over = {
            "arch": "conv",
            "channels": (8, 16),
            "steps": 200,
            "batch_size": 32,
            "latent_dim": 4,
            "r1": 0.0,
        }
    cfg = tasks.resolve(tasks.make_config(name, over), ds)
    task = tasks.build(cfg, ds)
    state = task.init(jax.random.key(0))
    step = jax.jit(task.step)
    batch = one_batch(ds)
    first = None
    for i in range(40):
        state, m = step(state, batch, jax.random.key(i))
        key = "d_loss" if name == "gan" else "loss"
        first = float(m[key]) if first is None else first
    if name == "gan":  # D learns to tell this batch from G's samples: its loss falls below log 4
        assert float(m["d_loss"]) < first
    else:
        assert float(m["loss"]) < 0.5 * first, (first, float(m["loss"]))


def test_batchnorm_statistics_move_in_training_and_evaluation_uses_them():
    ds = data.load("embedded")
    over = {"arch": "conv", "norm": "batch", "channels": (4, 8), "head": (16,), "steps": 10}
    cfg = tasks.resolve(tasks.make_config("mlp", over), ds)
    task = tasks.build(cfg, ds)
    state = task.init(jax.random.key(0))
    before = state.params["batch_stats"]
    new, _ = jax.jit(task.step)(state, one_batch(ds), jax.random.key(1))
    after = new.params["batch_stats"]
    moved = [
        not np.allclose(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True)
    ]
    assert all(moved)
    # the optimizer never sees them: its state mirrors the trainable parameters only
    assert "batch_stats" not in str(jax.tree_util.tree_structure(new.opt_state))
    # eval mode reads the running statistics: other statistics, other logits
    x = ds.test["image"][:8]
    fake = {**new.params, "batch_stats": jax.tree.map(lambda a: a + 1.0, after)}
    assert not np.allclose(task.logits(new.params, x), task.logits(fake, x))
    # and eval of one image does not depend on the rest of its batch (no batch statistics)
    close(task.logits(new.params, x[:1]), task.logits(new.params, x)[:1], 1e-4)


def test_gan_updates_g_statistics_in_g_phase_only():
    ds = data.load("embedded")
    over = {"arch": "conv", "channels": (4, 8), "latent_dim": 4, "batch_size": 16, "steps": 10, "d_steps": 3,
            "r1": 0.0}  # fmt: skip
    cfg = tasks.resolve(tasks.make_config("gan", over), ds)
    task = tasks.build(cfg, ds)
    state = task.init(jax.random.key(0))
    batch = {"image": jnp.asarray(ds.train["image"][: 3 * 16])}
    new, _ = jax.jit(task.step)(state, batch, jax.random.key(1))
    mean0 = state.params["g"]["batch_stats"]["net"]["norm_project"]["mean"]
    mean1 = new.params["g"]["batch_stats"]["net"]["norm_project"]["mean"]
    # momentum 0.9, one update per generator step (three D steps ran before it, none of them counted)
    g_trainable, g_stats = base.split_variables(state.params["g"])
    z = jax.random.normal(jax.random.split(jax.random.key(1))[1], (16, 4))
    _, once = base.apply_train(task.g_model, g_trainable, g_stats, z, True)
    close(mean1, once["batch_stats"]["net"]["norm_project"]["mean"], 1e-5)
    assert not np.allclose(mean0, mean1)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "ae", "--data", "toy:moons", "--set", "arch=conv"], "ae trains on images"),
        (["train", "gan", "--data", "toy:ring8", "--set", "arch=conv"], "arch=mlp"),
        (["train", "mlp", "--data", "toy:moons", "--set", "arch=conv"], "arch=mlp"),
        (
            ["train", "ae", "--set", "arch=conv", "--set", "channels=8,16,32"],
            "give channels at most 2 widths",
        ),
        (
            ["train", "gan", "--set", "arch=conv", "--set", "channels=8,16,32"],
            "give channels at most 2 widths",
        ),
        (["train", "gan", "--set", "arch=conv", "--set", "image_size=26"], "cannot halve 26x26 images"),
        (["train", "mlp", "--set", "arch=resnet"], "arch must be one of mlp, conv"),
        (["train", "mlp", "--set", "conv_impl=cudnn"], "conv_impl must be one of"),
        (["train", "mlp", "--set", "norm=layer"], "norm must be one of"),
    ],
)
def test_impossible_conv_settings_are_one_line_errors(argv, needle, tmp_path, capsys):
    wd = tmp_path / "run"
    assert cli.main([*argv[:2], "--workdir", str(wd), *argv[2:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxgen: error:") and needle in err[0], err
    assert not wd.exists() or not any(wd.rglob("*.json")), "nothing written before the error"


def test_conv_keys_are_in_help():
    for name in ("mlp", "ae", "gan"):
        text = configs.describe(tasks.config_class(name))
        for key in ("arch", "channels", "norm", "conv_impl"):
            assert key in text, (name, key)
    with pytest.raises(UserError, match="arch=mlp"):
        tasks.resolve(tasks.make_config("mlp", {"arch": "conv"}), data.load("toy:moons"))


def test_dcgan_defaults_are_chosen_for_the_arch():
    """batch_size 0 = for the data: DCGAN 64 (more steps in its 20 minutes), the MLP GAN 256; DCGAN
    samples from G itself (no EMA); an explicit value stays; tasks without the choice refuse 0."""
    ds = data.load("embedded")
    mlp = tasks.resolve(tasks.make_config("gan"), ds)
    conv = tasks.resolve(tasks.make_config("gan", {"arch": "conv"}), ds)
    assert (mlp.batch_size, mlp.ema, mlp.steps) == (256, 0.999, 10000)
    assert (conv.batch_size, conv.ema, conv.lr, conv.r1, conv.steps) == (64, 0.0, 1e-3, 1.0, 12000)
    assert (conv.d_lr, mlp.d_lr) == (4e-3, mlp.lr)  # DCGAN's D learns 4x faster than G; the MLP GAN's alike
    assert (conv.d_channels, mlp.d_hidden) == ((32, 64, 128), mlp.hidden)  # D one stage deeper than G, said
    given = tasks.make_config("gan", {"arch": "conv", "d_channels": (32, 64)})
    assert tasks.resolve(given, ds).d_channels == (32, 64)
    assert tasks.resolve(tasks.make_config("gan", {"arch": "conv", "d_lr": 1e-3}), ds).d_lr == 1e-3
    assert tasks.resolve(tasks.make_config("gan", {"arch": "conv", "batch_size": 128}), ds).batch_size == 128
    with pytest.raises(UserError, match="batch_size must be a positive integer, got 0"):
        tasks.make_config("gan", {"batch_size": 0})


def test_cnn_steps_are_chosen_for_the_data_and_named_in_help():
    """The CNN's length for the data (docs/conv.md): 6,000 steps on the embedded sample, 20 epochs
    elsewhere (the MLP: 2,000 and 90); --help says both."""
    cls = tasks.config_class("mlp")
    ds = data.load("embedded")
    assert tasks.resolve(tasks.make_config("mlp", {"arch": "conv"}), ds).steps == 6000
    assert tasks.resolve(tasks.make_config("mlp"), ds).steps == 2000
    # --help prints the table the values come from
    text = configs.describe(cls)
    assert "data embedded, arch conv: steps 6000" in text and "data *, arch conv: steps 20 epochs" in text
    assert "data embedded, arch mlp: steps 2000" in text and "data *, arch *: steps 90 epochs" in text


def test_mirror_tta_is_chosen_for_the_conv_on_clothes_only():
    """tta for the data: the CNN on clothes (trained with mirrors) averages over each image and its mirror;
    the MLP, digits, no mirrors or no augmentation keep one look; tta=mirror on toy points is one line."""
    digits = data.load("embedded")
    clothes = dataclasses.replace(digits, family="clothes")

    def tta(ds, **over):
        return tasks.resolve(tasks.make_config("mlp", over), ds).tta

    assert tta(clothes, arch="conv") == "mirror"
    assert tta(clothes) == tta(digits, arch="conv") == "none"
    assert tta(clothes, arch="conv", hflip=0.0) == tta(clothes, arch="conv", augment=False) == "none"
    assert tta(digits, arch="conv", tta="mirror") == "mirror"  # asked for: kept
    with pytest.raises(UserError, match="tta=none"):
        tasks.resolve(tasks.make_config("mlp", {"tta": "mirror"}), data.load("toy:moons"))
    with pytest.raises(UserError, match="tta must be one of"):
        tasks.make_config("mlp", {"tta": "flip"})


def test_mirror_tta_averages_the_two_looks_and_is_mirror_invariant():
    """With tta=mirror, p(y | x) is the mean of the one-look probabilities of x and of its mirror, so an
    image and its mirror get the same prediction; tta=none is the plain eval-mode softmax."""
    ds = data.load("embedded")
    tiny = {"arch": "conv", **tasks.config_class("mlp").TINY_CONV}
    plain = tasks.build(tasks.make_config("mlp", {**tiny, "tta": "none"}), ds)
    both = tasks.build(tasks.make_config("mlp", {**tiny, "tta": "mirror"}), ds)
    params = plain.init(jax.random.key(0)).params
    x = np.asarray(ds.test["image"][:40])
    mirror = x[:, :, ::-1]
    expect = (plain.probs(params, x) + plain.probs(params, mirror)) / 2
    np.testing.assert_allclose(both.probs(params, x), expect, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(both.probs(params, mirror), both.probs(params, x), rtol=1e-5, atol=1e-7)
    assert not np.allclose(plain.probs(params, x), expect, atol=1e-4)  # the mirror changes the one look
    m = both.evaluate(params, {"image": x, "label": np.asarray(ds.test["label"][:40])})
    assert m["accuracy"] == np.mean(expect.argmax(-1) == np.asarray(ds.test["label"][:40]))


def test_a_cnn_run_judges_generated_images_through_its_hidden_features(tmp_path):
    """--judge takes a CNN run (`jaxgen train mlp --set arch=conv`) as it takes an MLP run: class shares,
    confidence and the Fréchet distance in its last hidden layer (the dense head), beside the real floor."""
    from jaxgen.judge import Judge

    tiny = {"arch": "conv", **tasks.config_class("mlp").TINY_CONV, "steps": 20, "ckpt_every": 20}
    cfg = tasks.make_config("mlp", {**tiny, "log_every": 10})
    train.train(cfg, tmp_path / "cnn", "embedded", progress=False, make_plots=False)
    judge = Judge(tmp_path / "cnn")
    real = np.asarray(data.load("embedded").test["image"][:200], np.float32) / 255.0
    probs, feats = judge(real[:10])
    assert probs.shape == (10, 10) and feats.shape == (10, tiny["head"][-1])
    noise = np.random.default_rng(0).uniform(size=(100, 784)).astype(np.float32)
    rep = judge.report(noise, real)
    assert rep["judge_arch"] == "conv" and rep["n"] == 100 and set(rep) >= {"samples", "real"}
    assert rep["samples"]["frechet"] > rep["real"]["frechet"] >= 0
    assert rep["samples"]["precision"] < rep["real"]["precision"]

"""--set parsing: typed values, unknown keys and bad values rejected in one line."""

import pytest

from jaxgen import config, tasks
from jaxgen.errors import UserError
from jaxgen.tasks import classifier


def test_typed_overrides():
    sets = ["seed=3", "steps=1e3", "lr=3e-4", "hidden=64,32", "augment=false", "activation=tanh", "dropout=0"]
    cfg = tasks.make_config("mlp", config.parse_sets(tasks.config_class("mlp"), sets))
    assert (cfg.seed, cfg.steps, cfg.lr, cfg.hidden) == (3, 1000, 3e-4, (64, 32))
    assert cfg.augment is False and cfg.activation == "tanh" and cfg.dropout == 0.0


def test_round_trip_through_json_dict():
    cfg = tasks.make_config("mlp", {"hidden": (16,), "steps": 10, "warmup_steps": 0})
    assert config.from_dict(tasks.config_class("mlp"), config.to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "item, match",
    [
        ("lr", "key=value"),
        ("nope=1", "unknown key 'nope'"),
        ("steps=ten", "integer"),
        ("steps=1.5", "integer"),
        ("augment=maybe", "true or false"),
        ("lr=fast", "number"),
        ("hidden=64,x", "hidden"),
    ],
)
def test_bad_sets_rejected(item, match):
    with pytest.raises(UserError, match=match):
        config.parse_sets(tasks.config_class("mlp"), [item])


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"steps": -1}, "steps must be a positive"),
        ({"lr": -1.0}, "lr must be > 0"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"activation": "relu7"}, "unknown activation"),
        ({"hidden": ()}, "hidden"),
        ({"hidden": (0,)}, "hidden"),
        ({"batch_size": -2}, "batch_size"),
        ({"init": "zeros"}, "unknown init"),
        ({"warmup_steps": 5000, "steps": 2000}, "warmup_steps"),
        ({"val": -1}, "val must be >= 0"),
        ({"hflip": 2.0}, "hflip must be a probability"),
        ({"erase": 1.5}, "erase must be in"),
        ({"max_rotate": -2.0}, "max_rotate must be in"),
    ],
)
def test_bad_values_rejected(overrides, match):
    with pytest.raises(UserError, match=match) as err:
        tasks.make_config("mlp", overrides)
    assert "\n" not in str(err.value)


def test_required_keys_exist():
    keys = set(config.fields(classifier.MLPConfig))
    assert {
        "seed",
        "steps",
        "batch_size",
        "lr",
        "activation",
        "hidden",
        "ckpt_every",
        "dropout",
        "augment",
    } <= keys


def test_warmup_is_checked_against_the_steps_chosen_for_the_data():
    from jaxgen import data

    cfg = tasks.make_config("mlp", {"warmup_steps": 5000})  # steps 0: not known until the data is
    with pytest.raises(UserError, match="warmup_steps 5000 must be below the 2000 steps"):
        tasks.resolve(cfg, data.load("embedded"))

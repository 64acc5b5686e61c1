"""The analytic parameter count equals Keras' count, and reproduces the published figures."""

import pytest

from keras_tx import GPT, parameter_breakdown, parameter_count
from keras_tx.parameters import PRESETS

CONFIGS = [
    dict(vocab_size=23, max_length=24, embed_dim=32, num_heads=4, num_layers=2),
    dict(vocab_size=23, max_length=24, embed_dim=32, num_heads=4, num_layers=2, tie_weights=False),
    dict(vocab_size=50, max_length=7, embed_dim=12, num_heads=3, num_layers=3, ff_dim=20, positional="sinusoidal"),
    dict(vocab_size=11, max_length=9, embed_dim=8, num_heads=1, num_layers=1, ff_dim=5, tie_weights=False),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_count_equals_the_built_model(config):
    model = GPT(**config)
    model.build((None, None))
    assert parameter_count(**config) == model.count_params()


@pytest.mark.parametrize("config", CONFIGS)
def test_every_group_has_the_shape_of_a_model_variable(config):
    """The breakdown is the model's own weights: the same shapes, each as often as the model has it."""
    model = GPT(**config)
    model.build((None, None))
    shapes = sorted(tuple(v.shape) for v in model.weights)
    expected = []
    for group in parameter_breakdown(**config):
        if group.tied:
            continue
        # A LayerNorm's scale and shift are listed as one (2, C) group.
        copies = [group.shape[1:]] * 2 if group.name.endswith("norm") else [group.shape]
        expected += copies * group.copies
    assert sorted(expected) == shapes


def test_tied_head_is_listed_but_not_counted():
    config = CONFIGS[0]
    tied = {group.name: group for group in parameter_breakdown(**config)}
    untied = {group.name: group for group in parameter_breakdown(**config, tie_weights=False)}
    assert tied["unembedding"].tied and tied["unembedding"].total == 0
    assert untied["unembedding"].total == 32 * 23
    assert list(tied) == list(untied)


def test_gpt2_small_has_124_439_808_parameters():
    assert parameter_count(**PRESETS["gpt2"]) == 124_439_808
    assert parameter_count(**PRESETS["gpt2"], tie_weights=False) == 124_439_808 + 50257 * 768


def test_gpt2_sizes_match_the_published_checkpoints():
    counts = {name: parameter_count(**PRESETS[name]) for name in ("gpt2-medium", "gpt2-large", "gpt2-xl")}
    assert counts == {"gpt2-medium": 354_823_168, "gpt2-large": 774_030_080, "gpt2-xl": 1_557_611_200}


def test_gpt3_counted_the_lesson_way_is_175_181_291_520():
    config = PRESETS["gpt3"]
    assert config["embed_dim"] // config["num_heads"] == 128
    groups = {group.name: group.total for group in parameter_breakdown(**config, matrices_only=True)}
    assert groups["token embedding"] == groups["unembedding"] == 617_558_016
    assert groups["query kernel"] == 96 * 12288**2
    assert groups["MLP in kernel"] == groups["MLP out kernel"] == 96 * 12288 * 49152
    assert not any("bias" in name or "norm" in name or name == "positions" for name in groups)
    assert sum(groups.values()) == 175_181_291_520


def test_gpt3_full_count_adds_biases_norms_and_positions():
    width, layers, hidden = 12288, 96, 49152
    biases = layers * (4 * width + hidden + width)
    norms = layers * 2 * 2 * width + 2 * width
    positions = 2048 * width
    assert parameter_count(**PRESETS["gpt3"], tie_weights=False) == 175_181_291_520 + biases + norms + positions
    assert parameter_count(**PRESETS["gpt3"]) == 175_181_291_520 + biases + norms + positions - 617_558_016


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(embed_dim=30, num_heads=4), "divisible"),
        (dict(num_layers=0), "num_layers"),
        (dict(ff_dim=2.5), "ff_dim"),
        (dict(positional="rotary"), "positional"),
        (dict(vocab_size=True), "vocab_size"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        parameter_count(**{**CONFIGS[0], **kwargs})


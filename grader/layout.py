"""The contract the exercises prescribe (sublayer names, constants), and moving weights by it.

A student's layer and the reference layer are compared by giving both the same weights:
the grader walks the named sublayers (``blocks.0.attention.query_dense`` ...) down to the
Keras layers that hold weights, reads them from one and writes them into the other.

This module is the grader's single source of what it requires by name: `SUBLAYERS`,
`LAYER_NORM_EPSILON`, `FFN_ACTIVATION` and the other `RULES`. `lesson_contract` lists them
per exercise, and the project's tests check that every one is stated in the lesson.

Example::

    weights = random_weights(reference_block, "TransformerBlock", rng)
    assign_weights(student_block, "TransformerBlock", weights)
"""

import re

import keras
import numpy as np

from grader.checks import GradingFailure
from grader.feedback import Feedback

SUBLAYERS = {
    "TokenAndPositionEmbedding": {
        "token_embedding": keras.layers.Embedding,
        "position_embedding": keras.layers.Embedding,
    },
    "MultiHeadSelfAttention": {
        "query_dense": keras.layers.Dense,
        "key_dense": keras.layers.Dense,
        "value_dense": keras.layers.Dense,
        "output_dense": keras.layers.Dense,
    },
    "TransformerBlock": {
        "attention": "MultiHeadSelfAttention",
        "norm1": keras.layers.LayerNormalization,
        "norm2": keras.layers.LayerNormalization,
        "ffn_in": keras.layers.Dense,
        "ffn_out": keras.layers.Dense,
    },
    "GPT": {
        "embedding": "TokenAndPositionEmbedding",
        "blocks": ["TransformerBlock"],
        "final_norm": keras.layers.LayerNormalization,
        "lm_head": keras.layers.Dense,
    },
}
"""``kind -> {sublayer name: Keras layer class | kind | [kind] (a list of them)}``."""

DEFINED_IN = {
    "TokenAndPositionEmbedding": "positional_embedding",
    "MultiHeadSelfAttention": "attention",
    "TransformerBlock": "model",
    "GPT": "model",
}
"""The exercise whose lesson defines each kind of layer."""

LAYER_NORM_EPSILON = "1e-5"
"""The epsilon of every LayerNormalization, as the lessons write it (Keras' default is 1e-3)."""

FFN_ACTIVATION = "gelu"
"""The activation of ``ffn_in``: Keras' exact GELU (``keras.ops.gelu``'s default is the tanh approximation)."""

PRETOKEN_PATTERN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")
"""The tokenizer exercise's pre-tokenisation rule (given in its file): GPT-2's, in Python's ``re``."""

RULES = {
    "attention": ("returns only the output", "softmax in float32"),
    "model": (f"epsilon={LAYER_NORM_EPSILON}", f'activation="{FFN_ACTIVATION}"'),
}
"""Further phrases each lesson must contain, word for word: return values and constants."""


def lesson_contract():
    """``{exercise: [phrase]}``: what the grader requires, as its lesson must state it.

    Sublayer names appear as ````name```` (reStructuredText literals).

    >>> lesson_contract()["positional_embedding"]
    ['``token_embedding``', '``position_embedding``']
    """
    contract = {}
    for kind, sublayers in SUBLAYERS.items():
        contract.setdefault(DEFINED_IN[kind], []).extend(f"``{name}``" for name in sublayers)
    for exercise, phrases in RULES.items():
        contract.setdefault(exercise, []).extend(phrases)
    return contract


def leaf_layers(layer, kind):
    """``[(path, keras_layer)]`` for every weight-holding sublayer of a `kind` layer.

    Raises `GradingFailure` naming every sublayer that is missing or of the wrong type at once,
    or the first layer object that stands for two sublayers (``[TransformerBlock(...)] * n``).
    """
    leaves, problems, paths = [], [], {}
    _walk(layer, kind, "", leaves, problems, paths)
    if problems:
        raise GradingFailure(f"your {kind} does not have the sublayers the exercise names: {'; '.join(problems)}")
    return leaves


def _walk(layer, kind, prefix, leaves, problems, paths):
    """Add `layer`'s leaves to `leaves`, what is wrong with its sublayers to `problems`, and every
    sublayer's path to `paths` (``{sublayer: path}``)."""
    for name, expected in SUBLAYERS[kind].items():
        path = f"{prefix}{name}"
        sublayer = getattr(layer, name, None)
        if sublayer is None:
            others = _unnamed_sublayers(layer, kind)
            problems.append(f"no `{path}`" + (f" (its sublayers are named {', '.join(others)})" if others else ""))
            continue
        if isinstance(expected, list):
            if not isinstance(sublayer, (list, tuple)):
                problems.append(f"`{path}` should be a list of {expected[0]} layers")
                continue
            for index, item in enumerate(sublayer):
                _note(item, f"{path}.{index}", paths)
                _walk(item, expected[0], f"{path}.{index}.", leaves, problems, paths)
            continue
        _note(sublayer, path, paths)
        if isinstance(expected, str):
            _walk(sublayer, expected, f"{path}.", leaves, problems, paths)
        elif not isinstance(sublayer, expected):
            problems.append(f"`{path}` is a {type(sublayer).__name__}, expected keras.layers.{expected.__name__}")
        else:
            leaves.append((path, sublayer))


def _note(sublayer, path, paths):
    """Note `sublayer` at `path`; fail if it already stands for another sublayer."""
    if not isinstance(sublayer, keras.layers.Layer):
        return  # not a layer at all: `_walk` says so
    if sublayer in paths:
        where = f"`{path}` is the very same layer object as `{paths[sublayer]}`"
        cause = "one object serves as two sublayers, so they share their weights"
        if path.rpartition(".")[2].isdigit():
            raise GradingFailure(Feedback(where, f"{cause} ([block] * n repeats one block)",
                                          "make a new one for each: [TransformerBlock(...) for _ in range(num_layers)]"))
        raise GradingFailure(Feedback(where, cause, f"give `{path}` a new {type(sublayer).__name__} of its own"))
    paths[sublayer] = path


def _unnamed_sublayers(layer, kind):
    """The student's sublayer attributes of `layer` that the contract does not name."""
    def is_layer(value):
        return isinstance(value, keras.layers.Layer) or (
            isinstance(value, (list, tuple)) and value and all(isinstance(item, keras.layers.Layer) for item in value))

    return [f"`{name}`" for name, value in vars(layer).items()
            if not name.startswith("_") and name not in SUBLAYERS[kind] and is_layer(value)]


def random_weights(layer, kind, rng):
    """Fresh weights for a built `kind` layer: ``{path: [arrays]}``, drawn from `rng`.

    Matrices get ``N(0, 1/fan_in)`` entries; vectors (biases, LayerNorm scale and offset)
    get their initial value plus ``N(0, 0.1)`` noise, so no bias is exactly zero.
    """
    weights = {}
    for path, leaf in leaf_layers(layer, kind):
        weights[path] = [
            rng.normal(0, 1 / np.sqrt(w.shape[0]), w.shape).astype("float32")
            if w.ndim > 1
            else (w + rng.normal(0, 0.1, w.shape)).astype("float32")
            for w in leaf.get_weights()
        ]
    return weights


def assign_weights(layer, kind, weights):
    """Write ``{path: [arrays]}`` into the built `kind` layer, failing clearly on a mismatch."""
    leaves = leaf_layers(layer, kind)
    missing = sorted(set(weights) - {path for path, _ in leaves})
    if missing:
        raise GradingFailure(f"your {kind} lacks the sublayers {', '.join(missing)}")
    for path, leaf in leaves:
        if not leaf.built and weights.get(path):
            _build_unused(leaf, weights[path])
        shapes = [tuple(w.shape) for w in leaf.get_weights()]
        expected = [tuple(w.shape) for w in weights.get(path, [])]
        if shapes != expected:
            raise GradingFailure(_shape_feedback(path, shapes, expected))
        leaf.set_weights(weights[path])


def _shape_feedback(path, shapes, expected):
    """Why sublayer `path` holds weights of `shapes` where `expected`: a kernel of the right width built on
    inputs of another width was fed the wrong thing; anything else is the sublayer's own size or bias."""
    kernel, wanted = (shapes or [()])[0], (expected or [()])[0]
    if len(kernel) == 2 == len(wanted) and kernel[1] == wanted[1] and kernel[0] != wanted[0]:
        return Feedback(f"`{path}` was built on inputs {kernel[0]} wide, expected {wanted[0]}",
                        "its size is right, but what your code feeds it has another last axis",
                        "check the steps that compute its input (for an attention's output_dense: split_heads "
                        "and merge_heads, whose own checks come first)")
    return Feedback(f"`{path}` holds weights of shapes {shapes}, expected {expected}",
                    fix="check its size and whether it has a bias")


def _build_unused(leaf, weights):
    """Build a sublayer the student's code never called, so that it can hold its weights."""
    if isinstance(leaf, keras.layers.Embedding):
        leaf.build()
    else:  # Dense: kernel (inputs, units); LayerNormalization: gamma (width,)
        leaf.build((None, weights[0].shape[0]))


def pack_weights(weights):
    """``{path: [arrays]}`` as flat ``{"weight/<path>/<i>": array}`` entries for a case's inputs."""
    return {f"weight/{path}/{i}": w for path, arrays in weights.items() for i, w in enumerate(arrays)}


def unpack_weights(inputs):
    """The inverse of `pack_weights`, ignoring the other entries of `inputs`."""
    weights = {}
    for key in inputs:
        if key.startswith("weight/"):
            _, path, index = key.split("/")
            weights.setdefault(path, []).append((int(index), inputs[key]))
    return {path: [w for _, w in sorted(arrays, key=lambda pair: pair[0])] for path, arrays in weights.items()}

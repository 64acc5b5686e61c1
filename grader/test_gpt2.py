"""Grading of exercises/gpt2.py, the capstone (20 points): the student's GPT runs GPT-2's weights.

The checkpoints are small random GPT-2s that `transformers` saved (``grader/checkpoints/``,
made by ``python -m grader.instructor.gpt2_checkpoints``): today's ``save_pretrained`` and the
hub's original layout, in safetensors and in ``pytorch_model.bin``. The reference's logits on
them match `transformers`' within 1e-6 (the project's tests check it).
"""

import functools
import pathlib
import re

import keras
import numpy as np
import pytest

from grader.checks import GradingFailure, check_close, is_close, tensor, to_numpy
from grader.feedback import Feedback, hint_feedback
from grader.layout import leaf_layers
from grader.reference import FIXED_SEED, GPT_LENGTH, GPT_SIZES
from grader.remote import path_seen_by
from grader.test_model import gpt_differs

CHECKPOINTS = pathlib.Path(__file__).resolve().parent / "checkpoints"
LAYOUTS = ("save_pretrained", "hub_safetensors", "hub_pytorch")
SIZES = GPT_SIZES
"""The sizes of the checkpoints' config.json (the MLP is 4 * n_embd wide), those of every GPT check."""
WEIGHT_KEYS = ["wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"] + [
    f"h.{index}.{name}.{kind}" for index in range(SIZES["num_layers"])
    for name in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj") for kind in ("weight", "bias")]
PROMPT, NEW_TOKENS = 5, 4
"""The generation checks' prompt and continuation, so that their programs serve here too."""
MISTAKES = {
    "exact_gelu": "every weight is GPT-2's, but your ffn_in still uses the exact GELU: GPT-2 uses its tanh "
                  "approximation, so set each block's ffn_in.activation = keras.ops.gelu",
}


def folder(student, layout):
    return path_seen_by(student, CHECKPOINTS / layout)


def loaded(module, path):
    model = module.GPT(**SIZES)
    model(tensor(np.zeros((2, GPT_LENGTH), "int32")))  # the checks' shape: nothing new to compile on JAX
    try:
        module.load_gpt2(model, path)
    except ValueError as error:
        if "shape" not in str(error):
            raise
        shapes = re.findall(r"shape (\([0-9, ]*\))", str(error))
        found = f" ({shapes[1]} where the layer holds {shapes[0]})" if len(shapes) == 2 else ""
        raise GradingFailure(
            f"load_gpt2 could not set a weight of the wrong shape{found}: GPT-2's Conv1D weights are "
            "stored (in, out), a Dense kernel's layout, so copy them as they are; only the tied head is "
            "transposed, lm_head's kernel is wte.weight.T") from None
    return model


def loaded_weights(model):
    return {path: [to_numpy(weight, path) for weight in layer.weights] for path, layer in leaf_layers(model, "GPT")}


def draw_ids(rng, module):
    """Token ids from the run's seed; the prompt is fixed, so that no near-tie of two logits can make the
    greedy verdict depend on the seed."""
    prompt = np.random.default_rng(FIXED_SEED).integers(0, SIZES["vocab_size"], (2, PROMPT)).astype("int32")
    return {"token_ids": rng.integers(0, SIZES["vocab_size"], (2, GPT_LENGTH)).astype("int32"), "prompt": prompt}


@functools.cache
def loaded_reference(module, layout):
    """The reference GPT loaded from one layout, built once per process: both draws use it."""
    return loaded(module, str(CHECKPOINTS / layout))


def run_reference(module, inputs):
    from grader.instructor.gpt2 import fingerprints

    outputs = {}
    for layout in LAYOUTS:
        model = loaded_reference(module, layout)
        outputs[f"{layout}:logits"] = to_numpy(model(tensor(inputs["token_ids"])), "GPT")
    tokens = module.generate(model, tensor(inputs["prompt"]), NEW_TOKENS)
    outputs["tokens"] = to_numpy(tokens, "generate").astype("float32")
    for path, weights in loaded_weights(model).items():
        outputs.update({f"weight/{path}/{index}": weight for index, weight in enumerate(weights)})
    found = fingerprints(model, tensor(inputs["token_ids"]))
    return {**outputs, **{f"mistake:{name}": logits for name, logits in found.items()}}


@pytest.mark.points(4)
def test_reads_both_checkpoint_layouts(student):
    seen = {}
    for layout in LAYOUTS:
        config, arrays = student.read_gpt2_checkpoint(folder(student, layout))
        what = f"read_gpt2_checkpoint on the {layout} checkpoint"
        if not isinstance(config, dict) or config.get("n_embd") != SIZES["embed_dim"]:
            raise GradingFailure(f"{what} returned a config without n_embd={SIZES['embed_dim']}: "
                                 "return json.loads of config.json")
        prefixed = sorted(key for key in arrays if str(key).startswith("transformer."))
        if prefixed:
            raise GradingFailure(f"{what} keeps the 'transformer.' prefix ({prefixed[0]}): strip it, so that both "
                                 "layouts have the same keys")
        missing = [key for key in WEIGHT_KEYS if key not in arrays]
        if missing:
            raise GradingFailure(f"{what} has no {missing[0]!r} (of {len(missing)} missing keys)")
        seen[layout] = {key: to_numpy(arrays[key], key) for key in WEIGHT_KEYS}
    for layout in LAYOUTS[1:]:
        for key in WEIGHT_KEYS:
            if not np.array_equal(seen[layout][key], seen[LAYOUTS[0]][key]):
                raise GradingFailure(f"read_gpt2_checkpoint gives {key!r} other values from the {layout} checkpoint "
                                     f"than from {LAYOUTS[0]}: they hold the same model")


@pytest.mark.points(10)
def test_gpt2_logits_match_the_reference(student, reference, references, students):
    cases = reference("gpt2", draw_ids, run_reference)
    for layout in LAYOUTS:
        model = loaded(student, folder(student, layout))
        for inputs, expected in cases:
            logits = to_numpy(model(tensor(inputs["token_ids"])), "GPT")
            check_close(logits, expected[f"{layout}:logits"], f"your GPT's logits with the {layout} checkpoint",
                        hint=lambda: logits_cause(model, logits, expected, references, students))


def logits_cause(model, logits, expected, references, students):
    """Why the loaded GPT's `logits` are not the reference's: its weights, a GPT-2 mistake, or model.py's GPT."""
    return weights_hint(model, expected) or mistake_hint(logits, expected) or gpt_differs(references, students["model"])


def mistake_hint(logits, expected):
    return next((message for name, message in MISTAKES.items() if is_close(logits, expected[f"mistake:{name}"])), None)


def weights_hint(model, expected):
    """The first sublayer whose weights are not the checkpoint's, and how they differ."""
    mine = loaded_weights(model)
    for path, weights in mine.items():
        for index, weight in enumerate(weights):
            wanted = expected[f"weight/{path}/{index}"]
            if weight.shape == wanted.shape and np.array_equal(weight, wanted):
                continue
            kind = "kernel" if weight.ndim == 2 else "vector"
            if weight.shape == wanted.T.shape and np.array_equal(weight, wanted.T):
                if path == "lm_head":
                    return ("lm_head's kernel is wte.weight, not transposed: the tied head computes x @ wte.T, "
                            "so the kernel (C, vocab) is wte.weight.T")
                return (f"{path}'s kernel is the checkpoint's transposed: Conv1D stores (in, out), already a Dense "
                        "kernel's layout; copy it as it is")
            if path.endswith(("query_dense", "key_dense", "value_dense")):
                prefix = path.rsplit(".", 1)[0]
                for other in ("query_dense", "key_dense", "value_dense"):
                    if np.array_equal(weight, expected.get(f"weight/{prefix}.{other}/{index}")):
                        return (f"{path} holds the weights of {prefix}.{other}: c_attn's output columns are the query, "
                                "then the key, then the value, C each (np.split(weight, 3, axis=-1))")
                return (f"{path} does not hold its third of c_attn: split c_attn's weight (C, 3C) and bias (3C,) on "
                        "their last axis into query, key and value, in that order")
            if path == "lm_head":
                return "lm_head does not hold the tied head: set its kernel to wte.weight.T"
            return f"{path}'s {kind} {index} is not the checkpoint's (see the lesson's table of names)"
    return None


@pytest.mark.points(6)
def test_gpt2_greedy_continuation(student, reference, references, students):
    """On the last layout only, and a fixed prompt: the logits check covers every layout."""
    [(inputs, expected), *_] = reference("gpt2", draw_ids, run_reference)
    model = loaded(student, folder(student, LAYOUTS[-1]))
    tokens = to_numpy(student.generate(model, tensor(inputs["prompt"]), NEW_TOKENS), "generate")
    wanted = expected["tokens"]
    if tokens.shape != wanted.shape or not np.array_equal(tokens, wanted):
        feedback = continuation_cause(model, inputs, expected, references, students) or Feedback()
        raise GradingFailure(feedback.located(f"with the {LAYOUTS[-1]} checkpoint, your greedy continuation is "
                                              f"{tokens.astype(int).tolist()}, expected {wanted.astype(int).tolist()}"))


def continuation_cause(model, inputs, expected, references, students):
    """Why a greedy continuation is not the reference's: the loaded GPT's logits, as their own check
    finds, or else, with the logits right, the loop of generation.py that picks the tokens."""
    logits = to_numpy(model(tensor(inputs["token_ids"])), "GPT")
    if is_close(logits, expected[f"{LAYOUTS[-1]}:logits"]):
        return Feedback(cause="your GPT-2 computes the reference's logits, so generate of generation.py "
                              "(exercise 7) picks other tokens from them", fix="make generation.py's checks pass first")
    return hint_feedback(lambda: logits_cause(model, logits, expected, references, students)
                         or "your GPT's logits with this checkpoint are not the reference's: see the logits check")

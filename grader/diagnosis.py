"""Why a block's or a GPT's output differs from the reference: the first sublayer that differs, and why.

The reference's *trace* holds every sublayer's input and output as the lessons' formulas run
them (``"blocks.0.norm1>in"``, ``"blocks.0.norm1>out"``, ...), and the fingerprints of each
sublayer's known mistakes on that input (`grader.families.SUBLAYERS`); the instructor's grader
computes them, and the recordings keep them. On a mismatch the grader feeds each of the
student's sublayers the reference's input for it, in the order of the dataflow, stops at the
first whose output differs, and names the mistake family that output behaves like.

Example::

    first_divergence(student_model, gpt_steps(2), expected, token_ids, mask, head_size=6, width=18, num_heads=3).at("full")
    # 'blocks.0: norm1 and attention match; ffn_in differs — yours matches the tanh approximation: ...'
"""

from grader.checks import exception_message, is_close, tensor, to_numpy
from grader.families import SUBLAYERS, closest_mistake
from grader.feedback import Feedback

BLOCK_STEPS = ("norm1", "attention", "norm2", "ffn_in", "ffn_out")
"""The sublayers of a block in the order the dataflow runs them."""


def block_steps(prefix=""):
    return [f"{prefix}{name}" for name in BLOCK_STEPS]


def gpt_steps(num_layers):
    """The named sublayers of a GPT in dataflow order."""
    blocks = [path for index in range(num_layers) for path in block_steps(f"blocks.{index}.")]
    return ["embedding", *blocks, "final_norm", "lm_head"]


def first_divergence(layer, steps, expected, first_input, mask, **details):
    """Describe the first sublayer of `layer` whose output differs on the reference's inputs.

    Args:
        layer: the student's block or GPT, holding the same weights as the reference.
        steps: the sublayer paths in dataflow order (`block_steps`, `gpt_steps`).
        expected: the reference's trace.
        first_input: the input of a step the trace holds no input for (the token ids).
        mask: the attention mask the blocks get.
        details: the sizes the attention's messages name (``head_size``, ``width``, ``num_heads``).

    Returns:
        A `Feedback`, or None when every sublayer matches (then the wiring of ``call`` differs).
    """
    matched = {}
    for path in steps:
        group, _, name = path.rpartition(".")
        value = expected.get(f"{path}>in", first_input)
        sublayer = _resolve(layer, path)
        try:
            args = (tensor(value), mask) if name == "attention" else (tensor(value),)
            output = to_numpy(sublayer(*args), path)
        except Exception as error:  # a sublayer that cannot even run on the reference's input
            return Feedback(f"{path} fails on the reference's input: {type(error).__name__}: {exception_message(error)}")
        if not is_close(output, expected[f"{path}>out"]):
            cause = closest_mistake(output, expected, f"{path}>out", SUBLAYERS.get(name, {}), **details)
            before = matched.get(group, [])
            message = f"{path} differs"
            if group and before:
                message = f"{group}: {_listed(before)} {'matches' if len(before) == 1 else 'match'}; {name} differs"
            elif matched:
                message = f"every sublayer before {path} matches; {path} differs"
            return (cause or Feedback()).located(message)
        matched.setdefault(group, []).append(name)
    return None


def _listed(names):
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _resolve(layer, path):
    for part in path.split("."):
        layer = layer[int(part)] if part.isdigit() else getattr(layer, part)
    return layer

"""Build a layer by its first eager call, not by tracing its `call` symbolically first.

When a layer without a `build` method of its own is first called, and it holds layers that are
not built yet, Keras makes their weights by running `call` on symbolic inputs
(`keras.ops.compute_output_spec`), then runs `call` again on the real ones. On TensorFlow the
symbolic run traces a graph, and grading builds a fresh model for almost every check: on the solved
course that symbolic run took over a third of a TensorFlow child's time, and a tenth of a JAX
child's. The grader's inputs are real arrays, so the first call can make the weights itself, as
Keras already lets it when the symbolic run fails. The weights are made in the same order, from
the same seeds, with the same values, and Keras marks the layer built once the call returns.

What differs is Keras' record of the build: a layer built by its first call keeps no build
configuration, so a model saved from it would load without its weights, and it is not locked
against new weights or layers (a `call` that makes new layers each time is caught by the checks'
values instead). Grading saves nothing, and `first_call_builds` holds only for its block: the
grader's session, or the life of a sandbox's child.

Example::

    with first_call_builds():    # a grading session
        ...
"""

import contextlib

from keras.src import utils
from keras.src.layers import layer as keras_layer


@contextlib.contextmanager
def first_call_builds():
    """Within the block, an eager first call builds every layer that Keras would build by a symbolic run."""
    keras_build = keras_layer.Layer._maybe_build

    def maybe_build(layer, call_spec):
        if (layer.built or not call_spec.eager or not utils.is_default(layer.build)
                or not keras_layer.might_have_unbuilt_state(layer)):
            keras_build(layer, call_spec)
        # Otherwise the call that follows makes the weights.

    keras_layer.Layer._maybe_build = maybe_build
    try:
        yield
    finally:
        keras_layer.Layer._maybe_build = keras_build

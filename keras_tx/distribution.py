"""Training on many devices: a sharding layout for `keras.distribution`.

Keras 3 spreads a model over devices with `keras.distribution` (on the JAX
backend, where XLA does the work). The devices form a **mesh** with named
axes; here two of them:

* ``"batch"``, for **data parallelism**: every device along it holds the same
  weights and a slice of the batch; the gradients are averaged across it.
* ``"model"``, for **tensor (model) parallelism**: the devices along it each
  hold a slice of the large weight matrices and compute their part of every
  layer, as in Megatron-LM.

A `keras.distribution.DataParallel` needs no layout: every weight is copied.
A `keras.distribution.ModelParallel` needs a `LayoutMap`: regular expressions
over the variable paths (``gpt/block_0/ffn_in/kernel`` -- the layer names,
see `GPT`) saying which axis of each weight is split over which mesh axis.
`gpt_layout_map` is that map for `GPT` and `TransformerClassifier`:

* **column-parallel in**: the query, key, value and ``ffn_in`` kernels
  ``(C, out)`` are split along their outputs, with their biases. Each device
  computes whole heads (``num_heads`` must divide by the model axis) and a
  slice of the MLP's hidden units, without talking to the others;
* **row-parallel out**: the attention's ``output_dense`` and ``ffn_out``
  kernels ``(in, C)`` are split along their inputs, the slices each device
  already holds; one sum over the model axis (an all-reduce) completes the
  block. Their biases, added once after the sum, are copied;
* **embeddings** are split along the embedding dimension, and an untied
  ``lm_head`` ``(C, vocab)`` along its input to match. Megatron splits the
  vocabulary instead and pads it to a round size; XLA needs even splits, and
  vocabularies such as GPT-2's 50,257 tokens do not split evenly, whereas the
  width already does (the query kernel needs it);
* the **key/value caches** of generation ``(B, 2, T, heads, head_dim)`` are
  split by heads, next to the weights that make them;
* LayerNorms and the classifier's small head are copied on every device.

Only the layout depends on the mesh: the model code is the same on one device,
eight, or eight hosts.

Example (on JAX with 8 devices, e.g. the CPU split with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``):

    mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"))
    keras.distribution.set_distribution(
        keras.distribution.ModelParallel(layout_map=gpt_layout_map(mesh), batch_dim_name="batch"))
    model = GPT(...)       # weights are created sharded; fit, evaluate and generate as usual

The layout itself is plain data, the same on every backend:

>>> import keras
>>> mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"), devices=[f"cpu:{i}" for i in range(8)])
>>> layout = gpt_layout_map(mesh)
>>> layout["gpt/block_0/ffn_in/kernel"].axes, layout["gpt/block_0/ffn_out/kernel"].axes
((None, 'model'), ('model', None))
>>> print(layout["gpt/block_0/norm1/gamma"])   # no rule: copied on every device
None
"""

import keras

BATCH_AXIS = "batch"
MODEL_AXIS = "model"

# (regular expression over the variable path, the mesh axis of each tensor axis)
GPT_LAYOUT = (
    # column-parallel in: split the outputs (whole heads, MLP hidden units)
    (r".*/attention/(query|key|value)_dense/kernel", (None, MODEL_AXIS)),
    (r".*/attention/(query|key|value)_dense/bias", (MODEL_AXIS,)),
    (r".*/ffn_in/kernel", (None, MODEL_AXIS)),
    (r".*/ffn_in/bias", (MODEL_AXIS,)),
    # row-parallel out: split the inputs; the partial sums are all-reduced
    (r".*/attention/output_dense/kernel", (MODEL_AXIS, None)),
    (r".*/ffn_out/kernel", (MODEL_AXIS, None)),
    # token and position embeddings, and the untied unembedding: the width
    (r".*_embedding/embeddings", (None, MODEL_AXIS)),
    (r".*/lm_head/kernel", (MODEL_AXIS, None)),
    # generation's key/value caches (batch, key or value, position, head, head_dim): the heads
    (r".*/cache_\d+", (None, None, None, MODEL_AXIS, None)),
)


def gpt_layout_map(mesh):
    """The Megatron-style `keras.distribution.LayoutMap` of `GPT` on `mesh`.

    Args:
        mesh: a `keras.distribution.DeviceMesh` with the axes ``"batch"`` and
            ``"model"``, in this order (``"batch"`` first, as
            `keras.distribution.ModelParallel` expects by default).

    Returns:
        A `LayoutMap` for `keras.distribution.ModelParallel`; weights without
        a rule (LayerNorms, output biases, a classifier head) are copied.
    """
    if not isinstance(mesh, keras.distribution.DeviceMesh):
        raise ValueError(f"`mesh` must be a keras.distribution.DeviceMesh, got mesh={mesh!r}.")
    if tuple(mesh.axis_names) != (BATCH_AXIS, MODEL_AXIS):
        raise ValueError(
            f"`mesh` must have the axes ('{BATCH_AXIS}', '{MODEL_AXIS}'), got axis_names={tuple(mesh.axis_names)}."
        )
    layout_map = keras.distribution.LayoutMap(mesh)
    for pattern, axes in GPT_LAYOUT:
        layout_map[pattern] = axes
    return layout_map


def check_model_parallel(model_axis_size, num_heads, ff_dim):
    """Raises a `ValueError` naming the size that does not split evenly over the model axis.

    (The width, a multiple of `num_heads`, then splits evenly too.)

    >>> check_model_parallel(4, num_heads=4, ff_dim=512)
    >>> check_model_parallel(8, num_heads=4, ff_dim=512)
    Traceback (most recent call last):
    ...
    ValueError: Model parallelism over 8 devices splits whole attention heads: num_heads=4 must be a multiple of 8.
    """
    for name, size, what in (("num_heads", num_heads, "whole attention heads"), ("ff_dim", ff_dim, "the MLP's hidden units")):
        if size % model_axis_size:
            raise ValueError(
                f"Model parallelism over {model_axis_size} devices splits {what}: "
                f"{name}={size} must be a multiple of {model_axis_size}."
            )

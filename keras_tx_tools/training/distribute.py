"""`keras-tx train --distribute data|model|auto [--mesh BxM]`: one run over many devices.

On the JAX backend, Keras' distribution API spreads `model.fit` over every
device the process sees: `data` copies the model on each device and splits
the batch (`keras.distribution.DataParallel`); `model` also splits the large
weights over a ``"model"`` mesh axis (`keras.distribution.ModelParallel` with
`keras_tx.gpt_layout_map`); `auto` keeps as much data parallelism as the batch
allows and puts the remaining devices on the model axis. `--mesh 2x4` sets
the mesh: 2 data-parallel groups of 4 model-parallel devices.

On a CPU, XLA can pretend to have several devices (they share the cores):

    XLA_FLAGS=--xla_force_host_platform_device_count=8 keras-tx train reverse --backend jax --distribute model --mesh 2x4

>>> mesh_shape("2x4")
(2, 4)
>>> auto_mesh(8, batch_size=12, num_heads=4, ff_dim=512)  # 12 splits 4 ways; 2 devices per model
(4, 2)
"""

import argparse

KINDS = ("data", "model", "auto")


def add_arguments(parser):
    """Adds `--distribute` and `--mesh` to the `keras-tx train` parser."""
    group = parser.add_argument_group("many devices (JAX backend)")
    group.add_argument("--distribute", choices=KINDS,
                       help="data: copy the model, split the batch; model: also split the weights "
                            "(Megatron layout); auto: as much data parallelism as the batch allows")
    group.add_argument("--mesh", type=mesh_shape, metavar="BxM",
                       help="devices as BATCH x MODEL groups, e.g. 2x4 (default: data Nx1, model 1xN)")


def mesh_shape(text):
    """`"2x4"` -> `(2, 4)`: the argparse type of `--mesh`."""
    sizes = text.lower().split("x")
    if len(sizes) != 2 or not all(size.isdigit() and int(size) > 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"expected BATCHxMODEL with two positive integers, like 2x4; got {text!r}")
    return int(sizes[0]), int(sizes[1])


def set_distribution(kind, mesh, config):
    """Sets Keras' distribution for `--distribute kind --mesh mesh` over all devices; prints the mesh."""
    if kind is None:
        if mesh is not None:
            raise ValueError(f"--mesh needs --distribute, one of: {', '.join(KINDS)}.")
        return
    import keras

    if keras.backend.backend() != "jax":
        raise ValueError(
            f"--distribute runs on the JAX backend only (Keras' distribution API), not {keras.backend.backend()}: "
            "add --backend jax (on PyTorch, torch.distributed; on TensorFlow, a tf.distribute strategy)."
        )
    from keras_tx.distribution import BATCH_AXIS, MODEL_AXIS, check_model_parallel, gpt_layout_map

    devices = keras.distribution.list_devices()
    num_heads, ff_dim = config["num_heads"], config["ff_dim"] or 4 * config["embed_dim"]
    shape = mesh or _default_mesh(kind, len(devices), config["batch_size"], num_heads, ff_dim)
    _check_mesh(kind, shape, len(devices), config["batch_size"])
    device_mesh = keras.distribution.DeviceMesh(shape, (BATCH_AXIS, MODEL_AXIS), devices)
    if shape[1] == 1:
        distribution = keras.distribution.DataParallel(devices=devices)
    else:
        check_model_parallel(shape[1], num_heads, ff_dim)
        distribution = keras.distribution.ModelParallel(layout_map=gpt_layout_map(device_mesh),
                                                        batch_dim_name=BATCH_AXIS)
    keras.distribution.set_distribution(distribution)
    print(f"{type(distribution).__name__} over {len(devices)} {devices[0].split(':')[0]} devices: "
          f"batch {shape[0]} x model {shape[1]}")


def auto_mesh(device_count, batch_size, num_heads, ff_dim):
    """`(batch, model)`: the most data parallelism that splits the batch evenly,
    the remaining devices splitting the model."""
    for batch in range(device_count, 0, -1):
        model = device_count // batch
        if device_count % batch == 0 and batch_size % batch == 0 and num_heads % model == 0 and ff_dim % model == 0:
            return batch, model
    raise ValueError(
        f"--distribute auto found no mesh for {device_count} devices: the batch axis must divide "
        f"--batch-size {batch_size}, and the model axis --num-heads {num_heads} and --ff-dim {ff_dim}."
    )


def _default_mesh(kind, device_count, batch_size, num_heads, ff_dim):
    if kind == "data":
        return device_count, 1
    if kind == "model":
        return 1, device_count
    return auto_mesh(device_count, batch_size, num_heads, ff_dim)


def _check_mesh(kind, shape, device_count, batch_size):
    batch, model = shape
    if batch * model != device_count:
        raise ValueError(f"--mesh {batch}x{model} has {batch * model} devices, but there are {device_count}.")
    if kind == "data" and model != 1:
        raise ValueError(f"--distribute data copies the whole model on every device: "
                         f"use --mesh {device_count}x1, or --distribute model to split it.")
    if batch_size % batch:
        raise ValueError(f"--batch-size {batch_size} does not split evenly over the {batch} data-parallel groups "
                         f"of --mesh {batch}x{model}.")

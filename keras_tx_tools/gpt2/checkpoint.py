"""Open a Hugging Face GPT-2 checkpoint as a keras_tx `GPT`, and save one back.

A GPT-2 checkpoint is a folder: ``config.json`` says the shape of the model
(``n_embd`` wide, ``n_layer`` blocks of ``n_head`` heads, ``n_positions``
positions, ``vocab_size`` tokens) and ``model.safetensors`` (or PyTorch's
``pytorch_model.bin``) holds one named array per weight. keras_tx's `GPT` has
the same architecture, so opening the checkpoint is a matter of renaming:

====================================  ====================================
checkpoint (``transformer.`` prefix)  keras_tx `GPT`
====================================  ====================================
``wte.weight``  ``(vocab, C)``        ``embedding.token_embedding``
``wpe.weight``  ``(positions, C)``    ``embedding.position_embedding``
``h.{i}.ln_1``, ``h.{i}.ln_2``        ``blocks[i].norm1``, ``norm2``
``h.{i}.attn.c_attn``  ``(C, 3C)``    ``query_dense``, ``key_dense``, ``value_dense``
``h.{i}.attn.c_proj``                 ``attention.output_dense``
``h.{i}.mlp.c_fc``, ``mlp.c_proj``    ``ffn_in``, ``ffn_out``
``ln_f``                              ``final_norm``
``lm_head.weight``  ``(vocab, C)``    ``lm_head`` (absent when tied)
====================================  ====================================

Three details need care:

- GPT-2's dense layers are ``Conv1D`` modules whose weight is stored
  ``(in, out)`` -- already the layout of a Keras `Dense` kernel, so they are
  copied as they are. Only ``lm_head`` is a PyTorch ``Linear``, ``(out, in)``,
  and is transposed.
- ``c_attn`` is one fused projection: its ``3C`` outputs are the query, key
  and value side by side, split here into keras_tx's three projections.
- The output layer reuses the token embedding (``tie_word_embeddings``), as
  keras_tx's ``tie_weights=True`` does, so tied checkpoints store no head.

GPT-2 uses the tanh approximation of the GELU (``activation_function:
"gelu_new"``), keras_tx's ``activation="gelu_approximate"``; its LayerNorms
use ``epsilon=1e-5``, as keras_tx's do. Options that change the architecture
beyond that are refused with an error naming the key.

>>> import tempfile
>>> from keras import ops
>>> from keras_tx import GPT
>>> model = GPT(vocab_size=50, max_length=16, embed_dim=32, num_heads=4, num_layers=2,
...             activation="gelu_approximate")
>>> folder = tempfile.mkdtemp()
>>> save_gpt2(model, folder)
>>> sorted(path.name for path in pathlib.Path(folder).iterdir())
['config.json', 'model.safetensors']
>>> loaded = load_gpt2(folder)
>>> tokens = np.array([[1, 2, 3]])
>>> bool(ops.all(loaded(tokens) == model(tokens)))  # the same weights, the same logits
True
"""

import json
import pathlib

import numpy as np

from keras_tx_tools.gpt2.pytorch_bin import read_pytorch_bin

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_FILE = "pytorch_model.bin"

# Hugging Face's name for each GELU -> keras_tx's.
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_approximate"}

# GPT2Config's defaults: `save_pretrained` writes only the values that differ.
CONFIG_DEFAULTS = {
    "vocab_size": 50257,
    "n_positions": 1024,
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "n_inner": None,
    "activation_function": "gelu_new",
    "resid_pdrop": 0.1,
    "tie_word_embeddings": True,
}

# Options keras_tx's GPT cannot follow: their GPT2Config default, the only value accepted.
# (`reorder_and_upcast_attn` is accepted: it changes the float16 precision, not the result.)
FIXED_OPTIONS = {
    "layer_norm_epsilon": 1e-5,
    "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False,
    "add_cross_attention": False,
}

# Buffers of older checkpoints: the causal mask, which keras_tx computes instead.
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")


def load_gpt2(directory, dtype=None):
    """A keras_tx `GPT` with the weights of the GPT-2 checkpoint in `directory`.

    Args:
        directory: a folder with ``config.json`` and ``model.safetensors``
            (or ``model.safetensors.index.json`` and its shards, or
            ``pytorch_model.bin``, read without PyTorch by `pytorch_bin`).
        dtype: the model's dtype policy, e.g. ``"bfloat16"`` (default: Keras').

    Raises:
        FileNotFoundError: the config or the weights are missing.
        ValueError: an unsupported ``model_type`` or option, or a weight that
            is missing, unexpected or of the wrong shape (naming file and key).
    """
    from keras_tx import GPT

    directory = pathlib.Path(directory)
    config = read_config(directory)
    model = GPT(**gpt_arguments(config, directory / CONFIG_FILE), dtype=dtype)
    model.build((1, 1))
    tensors, source = read_tensors(directory)
    if model.tie_weights and "lm_head.weight" in tensors:
        _drop_tied_head(tensors, source)
    for key, variables, transpose in weight_names(model):
        if key not in tensors:
            raise ValueError(f"{source} has no weight {key!r}, which {CONFIG_FILE} ({_summary(config)}) needs.")
        _assign(variables, tensors.pop(key), transpose, source, key)
    unexpected = sorted(key for key in tensors if not key.endswith(MASK_BUFFERS))
    if unexpected:
        raise ValueError(f"{source} holds weights that a GPT-2 language model does not have: {unexpected[:5]}.")
    return model


def save_gpt2(model, directory, end_of_text_id=None):
    """Writes `model` (a keras_tx `GPT`) as a GPT-2 checkpoint that `transformers` opens.

    The folder gets ``config.json`` and ``model.safetensors`` with the keys of
    ``GPT2LMHeadModel``; the weights keep the dtype of the model's variables.
    `end_of_text_id` (50256 for GPT-2's tokenizer) is written as the
    ``bos_token_id`` and ``eos_token_id`` that `transformers` generates with.
    """
    from keras import ops
    from safetensors.numpy import save_file

    if model.positional != "learned":
        raise ValueError(f"GPT-2 learns its positions; this model has positional={model.positional!r}.")
    if not model.built:
        model.build((1, 1))
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, variables, transpose in weight_names(model):
        array = np.concatenate([ops.convert_to_numpy(variable) for variable in variables], axis=-1)
        name = key if key == "lm_head.weight" else f"transformer.{key}"
        tensors[name] = np.ascontiguousarray(array.T if transpose else array)
    save_file(tensors, directory / SAFETENSORS_FILE, metadata={"format": "pt"})
    (directory / CONFIG_FILE).write_text(json.dumps(gpt2_config(model, end_of_text_id), indent=2) + "\n")


def read_config(directory):
    """The checkpoint's ``config.json`` as a dict, checked to describe a model `GPT` can be."""
    path = pathlib.Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"No {CONFIG_FILE} in {directory}: a GPT-2 checkpoint folder holds {CONFIG_FILE} "
            f"and {SAFETENSORS_FILE} (or {PYTORCH_FILE})."
        )
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}.") from None
    if config.get("model_type") != "gpt2":
        raise ValueError(f"{path}: model_type={config.get('model_type')!r} is not supported; only 'gpt2' is.")
    activation = config.get("activation_function", CONFIG_DEFAULTS["activation_function"])
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{path}: activation_function={activation!r} is not supported; use one of {sorted(ACTIVATIONS)}."
        )
    for key, supported in FIXED_OPTIONS.items():
        if config.get(key, supported) != supported:
            raise ValueError(f"{path}: {key}={config[key]!r} is not supported by keras_tx's GPT (only {supported!r}).")
    return config


def gpt_arguments(config, path=CONFIG_FILE):
    """The keyword arguments of `GPT` that build the model a GPT-2 config describes."""
    value = {**CONFIG_DEFAULTS, **config}
    if value["n_embd"] % value["n_head"]:
        raise ValueError(f"{path}: n_embd={value['n_embd']} is not divisible by n_head={value['n_head']}.")
    return dict(
        vocab_size=value["vocab_size"],
        max_length=value["n_positions"],
        embed_dim=value["n_embd"],
        num_heads=value["n_head"],
        num_layers=value["n_layer"],
        ff_dim=value["n_inner"] or 4 * value["n_embd"],
        dropout=value["resid_pdrop"],
        tie_weights=value["tie_word_embeddings"],
        activation=ACTIVATIONS[value["activation_function"]],
    )


def gpt2_config(model, end_of_text_id=None):
    """The GPT-2 ``config.json`` (a dict) of a keras_tx `GPT`."""
    activation = {keras_name: name for name, keras_name in ACTIVATIONS.items()}[model.activation]
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": model.vocab_size,
        "n_positions": model.max_length,
        "n_embd": model.embed_dim,
        "n_layer": model.num_layers,
        "n_head": model.num_heads,
        "n_inner": model.ff_dim,
        "activation_function": activation,
        **{key: model.dropout for key in ("embd_pdrop", "attn_pdrop", "resid_pdrop")},
        "tie_word_embeddings": model.tie_weights,
        **FIXED_OPTIONS,
        "bos_token_id": end_of_text_id,
        "eos_token_id": end_of_text_id,
    }


def read_tensors(directory):
    """`(tensors, source)`: the checkpoint's arrays by key (without ``transformer.``) and the file read."""
    directory = pathlib.Path(directory)
    if (directory / SAFETENSORS_FILE).is_file():
        source = directory / SAFETENSORS_FILE
        tensors = _read_safetensors(source)
    elif (directory / SAFETENSORS_INDEX_FILE).is_file():
        source = directory / SAFETENSORS_INDEX_FILE
        shards = sorted(set(json.loads(source.read_text())["weight_map"].values()))
        tensors = {key: array for shard in shards for key, array in _read_safetensors(directory / shard).items()}
    elif (directory / PYTORCH_FILE).is_file():
        source = directory / PYTORCH_FILE
        tensors = read_pytorch_bin(source)
    else:
        raise FileNotFoundError(
            f"No weights in {directory}: expected {SAFETENSORS_FILE}, {SAFETENSORS_INDEX_FILE} or {PYTORCH_FILE}."
        )
    return {key.removeprefix("transformer."): array for key, array in tensors.items()}, source


def weight_names(model):
    """`(key, variables, transpose)` for every checkpoint weight of a `GPT`.

    The checkpoint array is the variables' values side by side on the last
    axis (three for the fused ``c_attn``, else one), transposed if `transpose`.
    """
    names = [("wte.weight", [model.embedding.token_embedding.embeddings], False)]
    names.append(("wpe.weight", [model.embedding.position_embedding.embeddings], False))
    for index, block in enumerate(model.blocks):
        attention = block.attention
        names += _norm(f"h.{index}.ln_1", block.norm1)
        names += _dense(f"h.{index}.attn.c_attn", attention.query_dense, attention.key_dense, attention.value_dense)
        names += _dense(f"h.{index}.attn.c_proj", attention.output_dense)
        names += _norm(f"h.{index}.ln_2", block.norm2)
        names += _dense(f"h.{index}.mlp.c_fc", block.ffn_in)
        names += _dense(f"h.{index}.mlp.c_proj", block.ffn_out)
    names += _norm("ln_f", model.final_norm)
    if model.lm_head is not None:
        names.append(("lm_head.weight", [model.lm_head.kernel], True))
    return names


def _norm(name, layer):
    return [(f"{name}.weight", [layer.gamma], False), (f"{name}.bias", [layer.beta], False)]


def _dense(name, *layers):
    return [
        (f"{name}.weight", [layer.kernel for layer in layers], False),
        (f"{name}.bias", [layer.bias for layer in layers], False),
    ]


def _assign(variables, array, transpose, source, key):
    """Copies `array` into `variables`, split on its last axis, after checking its shape."""
    array = array.T if transpose else array
    shapes = [tuple(variable.shape) for variable in variables]
    expected = (*shapes[0][:-1], sum(shape[-1] for shape in shapes))
    if array.shape != expected:
        expected = expected[::-1] if transpose else expected
        found = array.shape[::-1] if transpose else array.shape
        raise ValueError(f"{source}: {key!r} has shape {found}, but {CONFIG_FILE} implies {expected}.")
    splits = np.cumsum([shape[-1] for shape in shapes])[:-1]
    for variable, part in zip(variables, np.split(array, splits, axis=-1)):
        variable.assign(part)


def _drop_tied_head(tensors, source):
    """Removes a stored copy of the tied head, which must equal the token embedding."""
    head = tensors.pop("lm_head.weight")
    if "wte.weight" in tensors and not np.array_equal(head, tensors["wte.weight"]):
        raise ValueError(
            f"{source}: 'lm_head.weight' differs from 'wte.weight', but {CONFIG_FILE} ties them "
            "(tie_word_embeddings is true)."
        )


def _read_safetensors(path):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except SafetensorError as error:
        raise ValueError(
            f"{path} is not a readable safetensors file ({error}); a file of a few hundred bytes "
            "is a Git LFS pointer: fetch the real file (`git lfs pull` or `huggingface-cli download`)."
        ) from error


def _summary(config):
    value = {**CONFIG_DEFAULTS, **config}
    return ", ".join(f"{key}={value[key]}" for key in ("n_layer", "n_embd", "n_head", "vocab_size"))

"""Exercise 8, the capstone: your GPT runs GPT-2.

Lesson
======

1. Your model is GPT-2's
------------------------
The GPT of exercise 4 has GPT-2's architecture: learned token and position embeddings, pre-LN
blocks of multi-head self-attention and a GELU MLP four times wider than the model, a final
LayerNorm (epsilon 1e-5, as GPT-2's) and a head onto the vocabulary. So OpenAI's trained
weights fit into it: loading them is a matter of renaming, and three details.

2. A Hugging Face checkpoint
----------------------------
A checkpoint is a folder. ``config.json`` gives the sizes: ``vocab_size``, ``n_positions``
(``max_length``), ``n_embd`` (``embed_dim``), ``n_layer``, ``n_head``; the MLP is
``4 * n_embd`` wide. The weights are in ``model.safetensors`` (read it with
``safetensors.numpy.load_file(path)``, a dict of NumPy arrays) or, in older folders, in
PyTorch's ``pytorch_model.bin``: ``read_pytorch_bin(path)`` from ``keras_tx_tools.gpt2.pytorch_bin``
reads it into a dict of NumPy arrays without PyTorch (with PyTorch installed,
``torch.load(path, map_location="cpu", weights_only=True)`` gives the same as tensors:
``.numpy()`` each). ``read_gpt2_checkpoint`` returns the config and the arrays.

Two layouts are common, and your reader takes both. Today's ``save_pretrained`` writes the keys
of ``GPT2LMHeadModel``, which start with ``transformer.`` (``transformer.h.0.ln_1.weight``). The
hub's original ``gpt2`` files hold the bare ``GPT2Model``'s keys (``h.0.ln_1.weight``) and also
``h.{i}.attn.bias`` and ``h.{i}.attn.masked_bias``: buffers holding the causal mask, which your
model computes itself, so they are skipped. Strip the ``transformer.`` prefix and both look alike.

3. The names
------------
=====================================  ============================================
checkpoint key (prefix stripped)       your GPT
=====================================  ============================================
``wte.weight`` ``(vocab, C)``          ``embedding.token_embedding``
``wpe.weight`` ``(positions, C)``      ``embedding.position_embedding``
``h.{i}.ln_1``, ``h.{i}.ln_2``         ``blocks[i].norm1``, ``blocks[i].norm2``
``h.{i}.attn.c_attn`` ``(C, 3C)``      ``attention.query_dense``, ``key_dense``, ``value_dense``
``h.{i}.attn.c_proj``                  ``blocks[i].attention.output_dense``
``h.{i}.mlp.c_fc``, ``h.{i}.mlp.c_proj``  ``blocks[i].ffn_in``, ``blocks[i].ffn_out``
``ln_f``                               ``final_norm``
``wte.weight``, transposed             ``lm_head`` (the tied head)
=====================================  ============================================

A LayerNorm's ``.weight`` is Keras' ``gamma`` and its ``.bias`` is ``beta``; a dense layer's
``.weight`` is the ``kernel`` and ``.bias`` the ``bias``. ``layer.set_weights([...])`` takes
the arrays in the order of ``layer.weights``: ``[gamma, beta]`` or ``[kernel, bias]``.

**Build the model first.** A Keras layer creates its weights the first time it is called, so
a ``GPT`` just constructed has none yet, and ``set_weights`` on one of its layers fails ("the
layer was expecting 0 weights"). Call the model once on a dummy batch of ids,
``model(np.zeros((1, 2), "int32"))``: that creates the weights of every sublayer, which you
then overwrite. ``gpt2_model`` hands ``load_gpt2`` a model it has just constructed (the
grader hands it one it has already called), so ``load_gpt2`` makes this call itself, before
setting any weight; calling a built model once more changes nothing.

4. The three details
--------------------
* **Conv1D's layout.** GPT-2's dense layers are ``Conv1D`` modules whose weight is stored
  ``(in, out)``: already the layout of a Keras ``Dense`` kernel, so copy it as it is. (A PyTorch
  ``Linear`` stores ``(out, in)``; transposing a square ``c_proj`` would still fit, silently
  wrong.)
* **The fused projection.** ``c_attn`` computes the queries, keys and values in one matrix
  ``(C, 3C)``: its first ``C`` output columns are the query, the next ``C`` the key, the last
  ``C`` the value. Split the weight on its last axis, and the bias ``(3C,)`` too
  (``np.split(weight, 3, axis=-1)``).
* **The tied head.** GPT-2 has no head of its own: the logits are ``x @ wte.T``, the token
  embedding used backwards. Your ``lm_head`` is a ``Dense(vocab_size, use_bias=False)`` whose
  kernel is ``(C, vocab)``: set it to ``wte.weight.T``. A checkpoint that does store
  ``lm_head.weight`` (a ``Linear``, ``(vocab, C)``) holds the same array.

5. The GELU
-----------
Your ``ffn_in`` uses the exact GELU, ``activation="gelu"``, as exercise 4 asks. GPT-2 was
trained with the tanh approximation (``"gelu_new"`` in its config), which is what
``keras.ops.gelu(x)`` computes by default (``approximate=True``). The two differ by up to about
1e-3, enough to move logits beyond 1e-4. So ``load_gpt2`` also sets each block's
``ffn_in.activation = keras.ops.gelu``: a Keras layer calls its ``activation`` attribute, and
the weights stay as they are. The model you load GPT-2 into then computes GPT-2's function.

6. The grader
-------------
It opens three small random checkpoints made by ``transformers``: today's ``save_pretrained``,
and the hub's layout in ``model.safetensors`` and in ``pytorch_model.bin``. It builds your
``GPT`` with the config's sizes, calls ``load_gpt2(model, folder)`` and compares your logits
with the reference's within 1e-4, and your greedy continuation (exercise 7) token for token.

7. Next, with internet access
-----------------------------
Fetch GPT-2 (124M parameters, 0.5 GB) and its tokenizer files, then let your own code write::

    pip install huggingface_hub
    hf download gpt2 config.json model.safetensors vocab.json merges.txt --local-dir gpt2

(``hf`` is the command of current ``huggingface_hub`` releases; older ones call it
``huggingface-cli download``, with the same arguments.) Then in Python, from the course
folder, with your tokenizer of exercise 0 reading GPT-2's ``vocab.json`` and ``merges.txt``
(its lesson, section 6), your GPT-2 reader of this exercise, and your sampler and cached
generation of exercises 6 and 7::

    from keras import ops
    from keras_tx_tools.gpt2.bpe_files import read_gpt2_bpe
    from exercises.generation import generate
    from exercises.gpt2 import gpt2_model
    from exercises.tokenizer import BytePairTokenizer
    byte_ids, merges = read_gpt2_bpe("gpt2")
    tokenizer = BytePairTokenizer(merges, byte_ids)
    model = gpt2_model("gpt2")
    prompt = ops.convert_to_tensor([tokenizer.encode("The meaning of life is")])
    tokens = generate(model, prompt, 30, temperature=0.8, top_k=40, seed=0)
    print(tokenizer.decode(ops.convert_to_numpy(tokens)[0].tolist()))

The prompt and the new tokens must fit in GPT-2's 1,024 positions (exercise 7). Every layer
that writes that English is yours, from the first byte-pair merge to the last sampled token;
``read_gpt2_bpe`` only reads the two files.
"""

import json
import pathlib

import keras
import numpy as np

from .generation import generate  # noqa: F401  (the grader continues text through this module)
from .model import GPT


def read_gpt2_checkpoint(checkpoint_dir):
    """``(config, arrays)``: the folder's ``config.json`` as a dict, and its weights by key, prefix stripped.

    Lesson: section 2.

    Example (one of the grader's small checkpoints):
        >>> folder = pathlib.Path(__file__).resolve().parent.parent / "grader" / "checkpoints" / "save_pretrained"
        >>> config, arrays = read_gpt2_checkpoint(folder)
        >>> config["n_embd"], arrays["h.0.attn.c_attn.weight"].shape
        (12, (12, 36))
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")


def gpt2_model(checkpoint_dir):
    """Your `GPT` with the sizes of the checkpoint's ``config.json``, and its weights.

    Lesson: sections 2 and 3.

    Example:
        >>> folder = pathlib.Path(__file__).resolve().parent.parent / "grader" / "checkpoints" / "hub_safetensors"
        >>> tuple(gpt2_model(folder)(np.zeros((1, 3), "int32")).shape)
        (1, 3, 23)
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")


def load_gpt2(model, checkpoint_dir):
    """Copy the GPT-2 checkpoint in `checkpoint_dir` into `model`, your GPT of the same sizes.

    Lesson: sections 3 to 5. `model` may not be built yet: call it once on a dummy batch of
    ids, which creates its weights, before setting any of them (section 3).
    """
    raise NotImplementedError("Exercise: write this part (the docstring and the lesson at the top of the file explain it)")

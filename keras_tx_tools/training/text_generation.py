"""Text in, text out: a trained `GPT` and its tokenizer continue a prompt.

`GPT.generate` works on token ids and at most `max_length` of them. Text
longer than that is written a chunk at a time, each chunk conditioned on the
last tokens that fit in the context window (a *sliding window*): the model
never sees further back than `max_length` tokens, which is exactly what it
was trained on.

>>> from keras_tx import GPT
>>> from keras_tx_tools.data import CharTokenizer
>>> tokenizer = CharTokenizer.from_text("abcde")
>>> model = GPT(tokenizer.vocab_size, max_length=8, embed_dim=8, num_heads=2, num_layers=1)
>>> len(continue_text(model, tokenizer, "ab", num_tokens=20, seed=0))
20
"""

import numpy as np


def continue_text(
    model, tokenizer, prompt, num_tokens, temperature=1.0, top_k=None, top_p=None, seed=None
):
    """The `num_tokens` tokens that `model` writes after `prompt`, as text.

    Args:
        model: a `GPT` (anything with `generate` and `max_length`).
        tokenizer: the tokenizer the model was trained with.
        prompt: non-empty text; only its last `max_length - 1` tokens are used.
        num_tokens: how many tokens to write.
        temperature, top_k, top_p, seed: sampling settings of `GPT.generate`.

    Raises:
        ValueError: empty prompt, or (character models) characters outside
            the vocabulary.
    """
    prompt_ids = tokenizer.encode(prompt)
    if prompt_ids.size == 0:
        raise ValueError("`prompt` must contain at least one token; received an empty prompt.")
    ids = prompt_ids[-(model.max_length - 1) :].tolist()
    written = []
    while len(written) < num_tokens:
        # Write as much as fits after the whole context, but at least half a
        # window, dropping the oldest tokens once the window is full.
        room = max(model.max_length - len(ids), model.max_length // 2)
        steps = min(room, num_tokens - len(written))
        context = ids[-(model.max_length - steps) :]
        output = model.generate(
            np.array([context], dtype="int32"), steps, temperature=temperature, top_k=top_k, top_p=top_p,
            seed=None if seed is None else seed + len(written),
        )
        new_ids = output[0, len(context) :].tolist()
        ids += new_ids
        written += new_ids
    return tokenizer.decode(written)

"""Exercise 1: token and position embeddings.

Lesson
======

1. Tokens become vectors
------------------------
A language model never sees text. A tokenizer cuts the text into tokens (characters, word
pieces or words) and numbers them, so "to be" might become ``[19, 14, 1, 13, 4]``. Each id then
picks one row of a learned table, the *embedding matrix* of shape ``(vocab_size, embed_dim)``;
``keras.layers.Embedding`` is exactly that lookup. Training moves the rows around so that tokens
used in similar ways end up pointing in similar directions: the dot product of two embeddings
works as a similarity score, and attention (exercise 3) is built on that dot product.

2. Why positions are needed
---------------------------
An RNN or LSTM reads tokens one after another and carries a state from step to step, so the
order is built into the computation (and so is its slowness: step t waits for step t-1).
Attention looks at all tokens at once and mixes them with weights that depend only on the
vectors. Without extra information, "the cat sat on the mat" and "the mat sat on the cat" are
the same bag of vectors to it. The fix is to *add* a vector that says "I am at position p" to
each token embedding before the first layer. Two classic choices:

* **Learned** position embeddings: a second ``Embedding`` table with one row per position
  ``0 .. max_length - 1``, trained like the token table (GPT-2 does this). The model cannot
  handle sequences longer than ``max_length``.
* **Fixed sinusoids** ("Attention Is All You Need", section 3.5)::

      PE[p, 2i]     = sin(p / 10000 ** (2i / dim))
      PE[p, 2i + 1] = cos(p / 10000 ** (2i / dim))

  Column pair ``(2i, 2i + 1)`` is a clock that turns at its own speed: the first pair turns
  once every 2*pi positions, the last ones barely move over thousands. Together they give every
  position a unique fingerprint, and because ``sin``/``cos`` of ``p + k`` is a rotation of those
  of ``p``, the offset between two positions is easy for a linear layer to read. Nothing is
  learned, so the table also exists for positions never seen in training.

The two usual slips: swapping sine and cosine (sine goes in the *even* columns), and writing
the exponent as ``i / dim`` instead of ``2i / dim`` (the frequencies must fall by a factor
10000 across the whole width, not across half of it).

The width is normally even, so that every sine has its cosine. For an odd ``dim`` the formula
still says what each column holds: the last column, ``dim - 1``, is even, so it is the sine
``sin(p / 10000 ** ((dim - 1) / dim))``, and its cosine partner, which would be column
``dim``, is left out. (That is not the first ``dim`` columns of the ``dim + 1`` table: the
exponents divide by ``dim``.) The grader checks even widths only.

3. The layer
------------
``TokenAndPositionEmbedding`` owns two ``Embedding`` sublayers, named exactly
``token_embedding`` (``vocab_size`` rows) and ``position_embedding`` (``max_length`` rows):
the grader copies the same weights into your layer and the reference through these names.
For ids of shape ``(B, T)`` it looks up the tokens, ``(B, T, C)``,
looks up positions ``0 .. T-1``, ``(T, C)``, and adds them (broadcasting over the batch).
"""

import keras
from keras import ops


def sinusoidal_position_encoding(length, dim):
    """The fixed sine/cosine position table of "Attention Is All You Need".

    Lesson: section 2.

    Args:
        length: number of positions, ``p = 0 .. length - 1``.
        dim: width of each position vector.

    Returns:
        A ``(length, dim)`` float32 tensor with ``PE[p, 2i] = sin(p / 10000**(2i/dim))`` and
        ``PE[p, 2i+1] = cos(p / 10000**(2i/dim))``. For an odd `dim` the last column,
        ``dim - 1``, is a sine without its cosine: ``sin(p / 10000**((dim-1)/dim))``. The grader
        uses even widths only.

    Example:
        >>> table = sinusoidal_position_encoding(4, 6)
        >>> tuple(table.shape)
        (4, 6)
        >>> tuple(sinusoidal_position_encoding(4, 5).shape)  # odd: the last column is a sine
        (4, 5)
    """
    ### BEGIN SOLUTION
    positions = ops.cast(ops.arange(length), "float32")[:, None]
    even_columns = ops.cast(ops.arange(0, dim, 2), "float32")  # the "2i" of the formula
    angles = positions / ops.power(10000.0, even_columns / dim)  # (length, ceil(dim / 2))
    # Interleave: sin goes to column 2i, cos to column 2i + 1.
    pairs = ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1)
    return ops.reshape(pairs, (length, -1))[:, :dim]
    ### END SOLUTION


class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding plus a learned embedding of each position.

    Lesson: sections 1 to 3.

    Args:
        vocab_size: number of distinct token ids.
        max_length: longest sequence the layer accepts (rows of the position table).
        embed_dim: width of the vectors.

    Example:
        >>> layer = TokenAndPositionEmbedding(vocab_size=10, max_length=8, embed_dim=4)
        >>> tuple(layer(ops.zeros((2, 5), dtype="int32")).shape)
        (2, 5, 4)
    """

    def __init__(self, vocab_size, max_length, embed_dim, **kwargs):
        super().__init__(**kwargs)
        ### BEGIN SOLUTION
        self.token_embedding = keras.layers.Embedding(vocab_size, embed_dim)
        self.position_embedding = keras.layers.Embedding(max_length, embed_dim)
        ### END SOLUTION

    def call(self, token_ids):
        ### BEGIN SOLUTION
        positions = ops.arange(ops.shape(token_ids)[-1])
        return self.token_embedding(token_ids) + self.position_embedding(positions)
        ### END SOLUTION

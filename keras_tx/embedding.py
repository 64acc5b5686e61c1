"""From token ids to vectors: token embeddings plus position embeddings.

A token embedding is a learned table with one vector per vocabulary entry;
similar tokens end up with similar vectors (a large dot product). Attention
itself is blind to order -- "the cat sat on the mat" and "the mat sat on the
cat" contain the same tokens -- so each position also gets a vector, added to
the token's: either learned like the token table, or the fixed sine/cosine
table of "Attention Is All You Need" (section 3.5).
"""

import keras
from keras import ops

from keras_tx.validation import check_positive_integers

POSITIONAL_KINDS = ("learned", "sinusoidal")


def sinusoidal_position_encoding(length, dim, start=0):
    """The fixed `(length, dim)` float32 table of sines and cosines.

    ``PE[p, 2i] = sin(p / 10000 ** (2i / dim))`` and
    ``PE[p, 2i + 1] = cos(p / 10000 ** (2i / dim))`` for positions
    ``p = start .. start + length - 1``. Each pair of columns is a clock of its
    own frequency, so every position gets a distinct pattern and nearby
    positions get similar ones.

    Example:

    >>> from keras import ops
    >>> table = sinusoidal_position_encoding(length=4, dim=6)
    >>> tuple(table.shape), float(ops.convert_to_numpy(table)[0, 1])
    ((4, 6), 1.0)
    """
    if dim % 2:
        raise ValueError(f"`dim` must be even for sine/cosine pairs, got dim={dim}.")
    return _sinusoids(ops.arange(length) + start, dim)


def _sinusoids(positions, dim):
    """The sine/cosine encoding of integer `positions` of any shape: `(*positions.shape, dim)`."""
    frequencies = ops.power(10000.0, -ops.arange(0, dim, 2, dtype="float32") / dim)
    angles = ops.cast(positions, "float32")[..., None] * frequencies
    # Interleave: column 2i holds sin, column 2i + 1 holds cos.
    table = ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1)
    return ops.reshape(table, (*ops.shape(angles)[:-1], dim))


def padded_positions(padding_mask):
    """The position of each token in a padded batch: `(B, T)` int32, 0 at each row's first real token.

    A short prompt padded on the left must see its tokens at the positions it
    would have alone, so positions count the real tokens before each one.
    Padding positions get 0 (they are never attended to).

    Example:

    >>> from keras import ops
    >>> ops.convert_to_numpy(padded_positions([[False, False, True, True], [True, True, True, True]]))
    array([[0, 0, 0, 1],
           [0, 1, 2, 3]], dtype=int32)
    """
    counts = ops.cumsum(ops.cast(padding_mask, "int32"), axis=1)
    return ops.maximum(counts - 1, 0)


def validate_token_ids(token_ids, vocab_size, max_length, start_index=0, check_values=True):
    """Raise `ValueError` unless `token_ids` is a valid `(batch, length)` batch.

    Shape and dtype are checked always; the values (``0 <= id < vocab_size``)
    only when they are concrete -- inside a compiled graph they are not, and
    the check is skipped. Out-of-range ids must not pass silently: the
    TensorFlow and JAX gathers clamp them and read the wrong row.
    """
    if len(token_ids.shape) != 2:
        raise ValueError(
            "`token_ids` must have shape (batch, length), "
            f"got rank {len(token_ids.shape)} with shape {tuple(token_ids.shape)}."
        )
    if "int" not in keras.backend.standardize_dtype(token_ids.dtype):
        raise ValueError(
            f"`token_ids` must be integers, got dtype {token_ids.dtype}. "
            "Cast them with `ops.cast(token_ids, 'int32')` if they are whole numbers."
        )
    length = token_ids.shape[1]
    if length is not None and isinstance(start_index, int) and start_index + length > max_length:
        raise ValueError(
            f"Sequence length {start_index + length} is longer than "
            f"`max_length`={max_length}. Crop the input or build the model "
            "with a larger `max_length`."
        )
    values = _concrete_values(token_ids) if check_values else None
    if values is not None and values.size and (values.min() < 0 or values.max() >= vocab_size):
        raise ValueError(
            f"`token_ids` must be in [0, {vocab_size}) for `vocab_size`={vocab_size}, "
            f"got values from {values.min()} to {values.max()}."
        )


def _concrete_values(tensor):
    """The tensor's values as a NumPy array, or None while it is being traced."""
    try:
        return ops.convert_to_numpy(tensor)
    except Exception:  # symbolic or traced tensors have no values to check
        return None


@keras.saving.register_keras_serializable(package="keras_tx")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding plus position embedding: `(B, T)` ids -> `(B, T, embed_dim)`.

    Args:
        vocab_size: number of distinct token ids.
        max_length: the longest sequence the layer accepts.
        embed_dim: size of each embedding vector.
        positional: ``"learned"`` (a trainable table, as in GPT) or
            ``"sinusoidal"`` (the fixed table of the original transformer).
        embeddings_initializer: initializer of both learned tables.

    Example:

    >>> import numpy as np
    >>> layer = TokenAndPositionEmbedding(vocab_size=100, max_length=16, embed_dim=8)
    >>> tuple(layer(np.array([[1, 2, 3]])).shape)
    (1, 3, 8)
    """

    def __init__(
        self,
        vocab_size,
        max_length,
        embed_dim,
        positional="learned",
        embeddings_initializer="uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_integers(vocab_size=vocab_size, max_length=max_length, embed_dim=embed_dim)
        if positional not in POSITIONAL_KINDS:
            raise ValueError(f"`positional` must be one of {POSITIONAL_KINDS}, got positional={positional!r}.")
        if positional == "sinusoidal" and embed_dim % 2:
            raise ValueError(
                f"`embed_dim` must be even with positional='sinusoidal' (sine/cosine pairs), got embed_dim={embed_dim}."
            )
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.embed_dim = embed_dim
        self.positional = positional
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.token_embedding = keras.layers.Embedding(
            vocab_size,
            embed_dim,
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_embedding = None
        if positional == "learned":
            self.position_embedding = keras.layers.Embedding(
                max_length,
                embed_dim,
                embeddings_initializer=self.embeddings_initializer,
                dtype=self.dtype_policy,
                name="position_embedding",
            )

    def build(self, input_shape):
        self.token_embedding.build(input_shape)
        if self.position_embedding is not None:
            self.position_embedding.build((None,))

    def call(self, token_ids, start_index=0, positions=None, training=None):
        """Embed `token_ids`; the first token sits at position `start_index`.

        `positions`, a `(B, T)` int tensor, gives each token its own position
        instead (a padded batch: see `padded_positions`). The values of the
        ids are checked outside training only: a training step should not
        wait for a device-to-host copy of its batch.
        """
        validate_token_ids(token_ids, self.vocab_size, self.max_length, start_index, check_values=not training)
        if positions is None:
            positions = (ops.arange(ops.shape(token_ids)[1]) + start_index)[None]
        if self.position_embedding is not None:
            position_vectors = self.position_embedding(positions)
        else:
            position_vectors = _sinusoids(positions, self.embed_dim)
        return self.token_embedding(token_ids) + ops.cast(position_vectors, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            max_length=self.max_length,
            embed_dim=self.embed_dim,
            positional=self.positional,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config

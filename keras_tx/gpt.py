"""GPT: a decoder-only transformer language model.

Token ids go through the embedding, a stack of causal transformer blocks and a
final LayerNorm; the **unembedding** then scores every vocabulary entry at
every position. By default it reuses the token-embedding matrix, transposed
("weight tying"): a token's input vector doubles as the query that recognises
it in the output, which saves ``vocab_size x embed_dim`` parameters.

Training predicts every next token of a sequence at once -- the logits at
position ``t`` predict token ``t + 1`` -- and the causal mask makes that
honest. Generation (`keras_tx.generation`) feeds the model's own predictions
back in, one token at a time; `GPT.decode` is one such step, with a
key/value cache that keeps the keys and values of earlier tokens so that each
new token costs one step of attention instead of a pass over the whole prefix.
"""

import math

import keras
from keras import ops

from keras_tx.embedding import padded_positions
from keras_tx.generation import check_padding_mask, generate
from keras_tx.transformer import TransformerStack
from keras_tx.validation import check_positive_integers


def positions_as_rows(labels, logits, sample_weight=None):
    """`(B, T, ...)` labels, `(B, T, V)` logits and weights as `B * T` rows.

    >>> import numpy as np
    >>> labels, logits, weights = positions_as_rows(np.zeros((2, 3)), np.zeros((2, 3, 5)), np.ones(2))
    >>> tuple(labels.shape), tuple(logits.shape), tuple(weights.shape)
    ((6,), (6, 5), (6,))
    """
    batch, length = ops.shape(logits)[:2]
    labels = ops.reshape(labels, (-1, *ops.shape(labels)[2:]))
    logits = ops.reshape(logits, (-1, ops.shape(logits)[-1]))
    if sample_weight is not None:  # (B,), (B, T) or (B, T, 1): one weight per position
        sample_weight = ops.reshape(sample_weight, (batch, -1))
        sample_weight = ops.reshape(ops.broadcast_to(sample_weight, (batch, length)), (-1,))
    return labels, logits, sample_weight


@keras.saving.register_keras_serializable(package="keras_tx")
class GPT(TransformerStack):
    """A GPT-style causal language model: `(B, T)` token ids -> `(B, T, vocab_size)` logits.

    Weights start as in GPT-2: normal with standard deviation 0.02, and the two
    projections that write into the residual stream of each block scaled down
    by ``1 / sqrt(2 * num_layers)`` so that the stream does not grow with depth.
    The logits are float32 under every dtype policy.

    Exercise 4's GPT (`exercises/model.py`) has a separate `lm_head`, which
    `tie_weights=False` builds; tying is the default because GPT-2 ties.

    Args:
        vocab_size: number of distinct token ids.
        max_length: the longest sequence (prompt plus generated tokens).
        embed_dim: width of the model.
        num_heads: attention heads per block; must divide `embed_dim`.
        num_layers: number of transformer blocks.
        ff_dim: hidden width of the MLPs (default `4 * embed_dim`).
        dropout: dropout rate (embeddings, attention weights, residual branches).
        tie_weights: reuse the token embedding as the output projection.
        positional: ``"learned"`` or ``"sinusoidal"`` position embeddings.
        activation: the MLPs' GELU: ``"gelu"`` (exact, with erf) or
            ``"gelu_approximate"`` (the tanh form, which GPT-2 uses).

    Example:

    >>> import numpy as np
    >>> model = GPT(vocab_size=50, max_length=16, embed_dim=32, num_heads=4, num_layers=2)
    >>> tuple(model(np.array([[1, 2, 3]])).shape)
    (1, 3, 50)
    >>> model.generate(np.array([[1, 2, 3]]), max_new_tokens=4, temperature=0).shape
    (1, 7)

    Trained with Keras' own loss, which `compute_loss` hands one row per token:

    >>> import keras
    >>> model.compile(optimizer="adamw", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> ids = np.random.randint(0, 50, size=(4, 9))
    >>> model.fit(ids[:, :-1], ids[:, 1:], verbose=0).history["loss"][0] > 0
    True
    """

    def __init__(
        self, vocab_size, max_length, embed_dim, num_heads, num_layers,
        ff_dim=None,
        dropout=0.0,
        tie_weights=True,
        positional="learned",
        activation="gelu",
        **kwargs,
    ):
        check_positive_integers(num_layers=num_layers)
        initializer = keras.initializers.RandomNormal(stddev=0.02)
        super().__init__(
            vocab_size, max_length, embed_dim, num_heads, num_layers,
            ff_dim=ff_dim, dropout=dropout, positional=positional, activation=activation,
            causal=True,
            embeddings_initializer=initializer,
            kernel_initializer=initializer,
            output_kernel_initializer=keras.initializers.RandomNormal(stddev=0.02 / math.sqrt(2 * num_layers)),
            **kwargs,
        )
        self.tie_weights = tie_weights
        self.embedding_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.lm_head = None
        if not tie_weights:
            self.lm_head = keras.layers.Dense(
                vocab_size, use_bias=False, kernel_initializer=initializer, dtype=self.dtype_policy, name="lm_head"
            )

    def build(self, input_shape):
        super().build(input_shape)
        if self.lm_head is not None:
            self.lm_head.build((*input_shape, self.embed_dim))

    def call(self, token_ids, padding_mask=None, training=None, return_attention_scores=False):
        """Logits `(B, T, vocab_size)`; with `return_attention_scores`, also one
        `(B, num_heads, T, T)` weight tensor per block.

        `padding_mask`, `(B, T)` bool, True for real tokens, batches sequences
        of different lengths: padded on the left, each row gets the logits it
        would get alone (its tokens keep their own positions, and no real
        token attends to padding).
        """
        positions = None
        if padding_mask is not None:
            check_padding_mask(padding_mask, token_ids)
            positions = padded_positions(padding_mask)
        x = self.embedding(token_ids, positions=positions, training=training)
        x = self.embedding_dropout(x, training=training)
        x, weights = self.transform(
            x, padding_mask=padding_mask, training=training, return_attention_scores=return_attention_scores
        )
        logits = self._unembed(x)
        return (logits, weights) if return_attention_scores else logits

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss, taken over one row per predicted token.

        A language model predicts at every position: logits `(B, T, V)` against
        labels `(B, T)`. Handed over as they are, a sparse cross-entropy on the
        PyTorch backend moves the class axis to dimension 1 and runs its softmax
        over a non-last axis, PyTorch's slow path (most of a training step at
        GPT-2's vocabulary). As `(B * T, V)` rows the same numbers take the fast
        path on every backend, so whatever loss `compile` was given receives
        them that way: the standard

        ``model.compile(optimizer="adamw", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))``

        is the fast code. Every position still counts once: `sample_weight`
        may be per sequence `(B,)` or per token `(B, T)`.
        """
        if y is not None and len(y_pred.shape) == 3:
            y, y_pred, sample_weight = positions_as_rows(y, y_pred, sample_weight)
        return super().compute_loss(x, y, y_pred, sample_weight, training)

    def _unembed(self, x):
        if self.lm_head is not None:
            logits = self.lm_head(x)
        else:
            embeddings = ops.cast(self.embedding.token_embedding.embeddings, x.dtype)
            logits = ops.matmul(x, ops.transpose(embeddings))
        return ops.cast(logits, "float32")

    def generate(
        self,
        prompt_ids,
        max_new_tokens,
        temperature=1.0,
        top_k=None,
        top_p=None,
        seed=None,
        use_cache=True,
        padding_mask=None,
    ):
        """Extend each prompt by `max_new_tokens` sampled tokens.

        Args:
            prompt_ids: `(B, T)` int token ids (a NumPy array or tensor).
            max_new_tokens: number of tokens to append; `T + max_new_tokens`
                must not exceed `max_length`.
            temperature: 0 for greedy decoding, else the softmax temperature.
            top_k: sample only among the `top_k` most likely tokens.
            top_p: sample only among the most likely tokens whose
                probabilities add up to `top_p` (nucleus sampling).
            seed: an integer >= 0 makes sampling reproducible (neighbouring
                seeds draw unrelated tokens).
            use_cache: keep a key/value cache (one attention step per new
                token); False recomputes the whole prefix at every step,
                through `predict_on_batch` (compiled on JAX and TensorFlow,
                once per prefix length).
            padding_mask: `(B, T)` bool, True for real tokens, for prompts of
                different lengths padded on the left. Each row then gets the
                tokens it would get alone (greedy decoding; sampling draws
                differ with the batch).

        Returns:
            A NumPy int32 array `(B, T + max_new_tokens)`: prompts and continuations.
        """
        return generate(self, prompt_ids, max_new_tokens, temperature, top_k, top_p, seed, use_cache, padding_mask)

    def decode(self, token_ids, caches, cache_index, padding_mask=None):
        """One step of cached decoding: `(logits, caches)`.

        `token_ids` `(B, T)` sit at positions `cache_index .. cache_index + T - 1`;
        `caches` holds one `(B, 2, S, num_heads, head_dim)` tensor of keys and
        values per block, with `S <= max_length` slots; `padding_mask`, `(B, S)`,
        marks the real tokens among the slots when the prompts were padded.
        Returns the logits `(B, vocab_size)` that predict the token after
        `token_ids`, and the caches with their keys and values written in.
        `keras_tx.generation.CachedDecoder` runs this compiled.
        """
        positions = None
        if padding_mask is not None:
            positions = ops.slice(padded_positions(padding_mask), (0, cache_index), ops.shape(token_ids))
        x = self.embedding(token_ids, start_index=cache_index, positions=positions)
        new_caches = []
        for block, cache in zip(self.blocks, caches):
            x, cache = block.decode(x, cache, cache_index, padding_mask)
            new_caches.append(cache)
        return self._unembed(self.final_norm(x[:, -1:]))[:, 0], new_caches

    def get_config(self):
        config = super().get_config()
        config.update(tie_weights=self.tie_weights)
        return config

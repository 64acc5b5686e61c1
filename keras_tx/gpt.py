"""GPT: a decoder-only transformer language model, and text generation with a KV cache.

Token ids go through the embedding, a stack of causal transformer blocks and a
final LayerNorm; the **unembedding** then scores every vocabulary entry at
every position. By default it reuses the token-embedding matrix, transposed
("weight tying"): a token's input vector doubles as the query that recognises
it in the output, which saves ``vocab_size x embed_dim`` parameters.

Training predicts every next token of a sequence at once -- the logits at
position ``t`` predict token ``t + 1`` -- and the causal mask makes that
honest. Generation feeds the model's own predictions back in, one token at a
time; the key/value cache keeps the keys and values of earlier tokens so that
each new token costs one step of attention instead of a pass over the whole
prefix.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_tx.embedding import TokenAndPositionEmbedding, validate_token_ids
from keras_tx.kv_cache import CachedDecoder
from keras_tx.sampling import sample_next_token, validate_sampling
from keras_tx.transformer_block import TransformerBlock, run_blocks


@keras.saving.register_keras_serializable(package="keras_tx")
class GPT(keras.Model):
    """A GPT-style causal language model: `(B, T)` token ids -> `(B, T, vocab_size)` logits.

    Weights start as in GPT-2: normal with standard deviation 0.02, and the two
    projections that write into the residual stream of each block scaled down
    by ``1 / sqrt(2 * num_layers)`` so that the stream does not grow with depth.
    The logits are float32 under every dtype policy.

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
    """

    def __init__(
        self,
        vocab_size,
        max_length,
        embed_dim,
        num_heads,
        num_layers,
        ff_dim=None,
        dropout=0.0,
        tie_weights=True,
        positional="learned",
        activation="gelu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"`num_layers` must be a positive integer, got num_layers={num_layers!r}.")
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.ff_dim = ff_dim or 4 * embed_dim
        self.dropout = dropout
        self.tie_weights = tie_weights
        self.positional = positional
        self.activation = activation

        initializer = keras.initializers.RandomNormal(stddev=0.02)
        residual_initializer = keras.initializers.RandomNormal(stddev=0.02 / math.sqrt(2 * num_layers))
        self.embedding = TokenAndPositionEmbedding(
            vocab_size,
            max_length,
            embed_dim,
            positional=positional,
            embeddings_initializer=initializer,
            dtype=self.dtype_policy,
            name="embedding",
        )
        self.embedding_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.blocks = [
            TransformerBlock(
                embed_dim,
                num_heads,
                self.ff_dim,
                dropout=dropout,
                causal=True,
                kernel_initializer=initializer,
                output_kernel_initializer=residual_initializer,
                activation=activation,
                dtype=self.dtype_policy,
                name=f"block_{index}",
            )
            for index in range(num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="final_norm")
        self.lm_head = None
        if not tie_weights:
            self.lm_head = keras.layers.Dense(
                vocab_size,
                use_bias=False,
                kernel_initializer=initializer,
                dtype=self.dtype_policy,
                name="lm_head",
            )

    def build(self, input_shape):
        self.embedding.build(input_shape)
        hidden_shape = (*input_shape, self.embed_dim)
        for block in self.blocks:
            block.build(hidden_shape)
        self.final_norm.build(hidden_shape)
        if self.lm_head is not None:
            self.lm_head.build(hidden_shape)

    def call(self, token_ids, training=None, return_attention_scores=False):
        """Logits `(B, T, vocab_size)`; with `return_attention_scores`, also one
        `(B, num_heads, T, T)` weight tensor per block."""
        x = self.embedding_dropout(self.embedding(token_ids), training=training)
        x, scores = run_blocks(self.blocks, x, training=training, return_attention_scores=return_attention_scores)
        logits = self._unembed(self.final_norm(x))
        return (logits, scores) if return_attention_scores else logits

    def _unembed(self, x):
        if self.lm_head is not None:
            logits = self.lm_head(x)
        else:
            embeddings = ops.cast(self.embedding.token_embedding.embeddings, x.dtype)
            logits = ops.matmul(x, ops.transpose(embeddings))
        return ops.cast(logits, "float32")

    def attention_maps(self, token_ids):
        """The attention weights of every block: a list of `(B, num_heads, T, T)` arrays."""
        _, scores = self(ops.convert_to_tensor(token_ids), return_attention_scores=True)
        return [ops.convert_to_numpy(block_scores) for block_scores in scores]

    def generate(
        self,
        prompt_ids,
        max_new_tokens,
        temperature=1.0,
        top_k=None,
        top_p=None,
        seed=None,
        use_cache=True,
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
            seed: an int makes sampling reproducible.
            use_cache: keep a key/value cache (one attention step per new
                token); False recomputes the whole prefix at every step,
                through `predict_on_batch` (compiled on JAX and TensorFlow,
                once per prefix length).

        Returns:
            A NumPy int32 array `(B, T + max_new_tokens)`: prompts and continuations.
        """
        validate_sampling(temperature, top_k, top_p)
        prompt_ids = np.asarray(ops.convert_to_numpy(prompt_ids))
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"`max_new_tokens` must be an integer >= 0, got max_new_tokens={max_new_tokens!r}.")
        if prompt_ids.ndim != 2 or prompt_ids.shape[1] == 0:
            raise ValueError(f"`prompt_ids` must have shape (batch, length >= 1), got shape {prompt_ids.shape}.")
        total_length = prompt_ids.shape[1] + max_new_tokens
        if total_length > self.max_length:
            raise ValueError(
                f"The prompt ({prompt_ids.shape[1]} tokens) plus `max_new_tokens`={max_new_tokens} "
                f"exceeds `max_length`={self.max_length}."
            )
        validate_token_ids(prompt_ids, self.vocab_size, self.max_length)
        sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=keras.random.SeedGenerator(seed))
        tokens = prompt_ids.astype("int32")
        unseen = tokens  # the tokens the cache has not seen yet
        decoder = self._cached_decoder(len(tokens)) if use_cache else None
        for _ in range(max_new_tokens):
            if use_cache:
                logits = decoder.step(unseen, cache_index=tokens.shape[1] - unseen.shape[1])
            else:
                logits = self.predict_on_batch(tokens)[:, -1]
            unseen = ops.convert_to_numpy(sample_next_token(logits, **sampling))[:, None]
            tokens = np.concatenate([tokens, unseen], axis=1)
        return tokens

    def _cached_decoder(self, batch_size):
        """The compiled decoding step for this batch size, made once and reused."""
        # Kept out of Keras' layer tracking: the decoder wraps this model, it is not part of it.
        decoders = self.__dict__.setdefault("_decoders_by_batch_size", {})
        if batch_size not in decoders:
            decoders[batch_size] = CachedDecoder(self, batch_size)
        return decoders[batch_size]

    def decode(self, token_ids, caches, cache_index):
        """One step of cached decoding: `(logits, caches)`.

        `token_ids` `(B, T)` sit at positions `cache_index .. cache_index + T - 1`;
        `caches` holds one `(B, 2, max_length, num_heads, head_dim)` tensor of
        keys and values per block. Returns the logits `(B, vocab_size)` that
        predict the token after `token_ids`, and the caches with their keys and
        values written in. `CachedDecoder` runs this compiled.
        """
        x = self.embedding(token_ids, start_index=cache_index)
        new_caches = []
        for block, cache in zip(self.blocks, caches):
            x, cache = block(x, cache=cache, cache_index=cache_index)
            new_caches.append(cache)
        return self._unembed(self.final_norm(x[:, -1:]))[:, 0], new_caches

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            max_length=self.max_length,
            embed_dim=self.embed_dim,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            ff_dim=self.ff_dim,
            dropout=self.dropout,
            tie_weights=self.tie_weights,
            positional=self.positional,
            activation=self.activation,
        )
        return config

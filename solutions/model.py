"""Exercise 4: the transformer block and the whole GPT.

Lesson
======

1. The block
------------
A transformer block does two things in turn: attention lets the tokens exchange information,
then a position-wise MLP processes each token on its own (a ``Dense`` layer typically 4 times
wider than the model, a GELU, and a ``Dense`` back to the model width). Each of the two is
wrapped the same way::

    x = x + attention(norm1(x), attention_mask)
    x = x + ffn_out(ffn_in(norm2(x)))

``TransformerBlock`` owns five sublayers, named exactly as in the formula (the grader copies
the same weights into your block and the reference through these names):

* ``attention``: a ``MultiHeadSelfAttention(embed_dim, num_heads)`` (exercise 3);
* ``norm1`` and ``norm2``: ``keras.layers.LayerNormalization(epsilon=1e-5)``, GPT-2's value
  (Keras' default is 1e-3, which gives different numbers);
* ``ffn_in``: ``keras.layers.Dense(ff_dim, activation="gelu")``, the exact GELU
  ``0.5 * x * (1 + erf(x / sqrt(2)))``. GPT-2 used a tanh approximation of it, which is also
  what ``keras.ops.gelu`` computes by default; the two differ by up to about 1e-3, more than
  the grader's tolerance, so use ``activation="gelu"``;
* ``ffn_out``: ``keras.layers.Dense(embed_dim)``.

2. Residual connections
-----------------------
The ``x + ...`` is a residual (skip) connection: each sublayer only *adds* a correction to a
stream that flows straight through the whole stack. Gradients flow back along that stream
unchanged, so even the first layers of a deep model get a useful signal; without the skips a
deep transformer barely trains, and the token information has to survive every layer's
transformation intact. A block whose residual is missing no longer sees its own input.

3. Pre-LN and post-LN
---------------------
``LayerNormalization`` rescales each token vector to zero mean and unit variance (then applies
a learned scale and shift), keeping the numbers in a range where training is stable. The
original paper normalises *after* adding the residual (post-LN:
``x = norm1(x + attention(x))``). GPT-2 and most models since normalise the *input* of each
sublayer and leave the residual stream untouched (pre-LN, as above); it trains more stably, in
particular without a learning-rate warm-up. Pre-LN leaves the stream unnormalised, which is
why the model adds one last ``final_norm`` after the last block.

4. The whole model
------------------
Token ids ``(B, T)`` -> token and position embeddings ``(B, T, C)`` -> N blocks, all with the
causal mask -> ``final_norm`` -> ``lm_head``, a ``Dense(vocab_size)`` without bias that turns
every vector into one score (logit) per vocabulary entry, ``(B, T, vocab_size)``. ``GPT`` owns
exactly these sublayers: ``embedding``, a ``TokenAndPositionEmbedding`` (exercise 1);
``blocks``, a Python list of ``num_layers`` ``TransformerBlock`` layers; ``final_norm``, a
``LayerNormalization(epsilon=1e-5)``; and ``lm_head``, ``Dense(vocab_size, use_bias=False)``
(attribute names; if you give a layer a Keras ``name=``, keep dots out of it: PyTorch refuses
them, so ``name="block.0"`` fails on that backend alone). This "unembedding" is often the
transposed token embedding matrix ("weight tying"); here it is a separate layer. ``softmax(logits[:, t])`` is the model's guess for the token at ``t + 1``, so
one forward pass trains the prediction of *every* next token at once, and the causal mask keeps
that honest.

5. Generating text
------------------
To continue a text, feed it in, take the logits of the last position, sample a token from
``softmax(logits / temperature)``, append it and repeat. A temperature near 0 approaches the
greedy ``argmax``; a large one flattens the distribution toward uniform. Top-k keeps only the k
most likely tokens, top-p the smallest set whose probabilities reach p.

6. Checking the mask: the reversal task
---------------------------------------
Train on sequences whose first half is random and whose second half is the first half
reversed: ``3 1 4 1 | 1 4 1 3``. An honest model learns to predict the second half almost
perfectly, because it can look back at the first half; it cannot do better than chance on the
first half, which is random. A model that predicts the first half well is looking at tokens it
should not see: its mask is broken. The grader runs exactly this check on your GPT.

7. Counting parameters
----------------------
With width ``C``, MLP width ``F``, vocabulary ``V``, context ``L`` and ``N`` blocks, this model
has ``V*C + L*C`` embedding weights, ``4*(C*C + C)`` attention weights, ``4*C`` LayerNorm
weights and ``C*F + F + F*C + C`` MLP weights per block, ``2*C`` in the final norm and ``C*V``
in the head. For ``V=10, L=8, C=16, F=64, N=2`` that is 7,040: check it with
``model.count_params()``. GPT-3 uses ``V=50,257``, ``C=12,288``, 96 blocks of 96 heads of
width 128 and ``F=49,152``: 603,979,776 attention and 1,207,959,552 MLP weights per block,
about 174 billion over 96 blocks, plus 617,558,016 (12,288 x 50,257) in the token embedding;
about 175 billion in all.

8. Real data
------------
The same model trained on Tiny Shakespeare, one token per character, writes plausible
pseudo-Shakespeare within minutes; at word level (split with ``re.split(r"\\b", text)``) it
needs non-overlapping training windows so it cannot memorise overlaps. Drop the causal mask,
pool the outputs and add a classifier head, and the same blocks become an encoder that
classifies IMDB reviews.
"""

import keras
from keras import ops

from .attention import MultiHeadSelfAttention
from .masking import causal_mask
from .positional_embedding import TokenAndPositionEmbedding


class TransformerBlock(keras.layers.Layer):
    """A pre-LN transformer block: attention and an MLP, each inside a residual connection.

    Lesson: sections 1 to 3.

    Args:
        embed_dim: model width ``C``.
        num_heads: attention heads; must divide `embed_dim`.
        ff_dim: width of the MLP's hidden layer (typically ``4 * embed_dim``).

    Call arguments:
        x: ``(B, T, embed_dim)`` float tensor.
        attention_mask: optional boolean mask broadcastable to ``(B, H, T, T)``.

    Example:
        >>> block = TransformerBlock(embed_dim=8, num_heads=2, ff_dim=32)
        >>> tuple(block(ops.zeros((2, 5, 8)), causal_mask(5)).shape)
        (2, 5, 8)
    """

    def __init__(self, embed_dim, num_heads, ff_dim, **kwargs):
        super().__init__(**kwargs)
        ### BEGIN SOLUTION
        self.attention = MultiHeadSelfAttention(embed_dim, num_heads)
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.ffn_in = keras.layers.Dense(ff_dim, activation="gelu")
        self.ffn_out = keras.layers.Dense(embed_dim)
        ### END SOLUTION

    def call(self, x, attention_mask=None):
        ### BEGIN SOLUTION
        x = x + self.attention(self.norm1(x), attention_mask)
        return x + self.ffn_out(self.ffn_in(self.norm2(x)))
        ### END SOLUTION


class GPT(keras.Model):
    """A decoder-only transformer language model: token ids in, next-token logits out.

    Lesson: sections 4 to 7.

    Args:
        vocab_size: number of distinct token ids.
        max_length: longest sequence the model accepts.
        embed_dim: model width.
        num_heads: attention heads per block.
        num_layers: number of transformer blocks.
        ff_dim: width of each block's MLP hidden layer.

    Example:
        >>> model = GPT(vocab_size=10, max_length=8, embed_dim=16, num_heads=2,
        ...             num_layers=2, ff_dim=64)
        >>> tuple(model(ops.zeros((1, 8), dtype="int32")).shape), model.count_params()
        ((1, 8, 10), 7040)
    """

    def __init__(self, vocab_size, max_length, embed_dim, num_heads, num_layers, ff_dim, **kwargs):
        super().__init__(**kwargs)
        ### BEGIN SOLUTION
        self.embedding = TokenAndPositionEmbedding(vocab_size, max_length, embed_dim)
        self.blocks = [TransformerBlock(embed_dim, num_heads, ff_dim) for _ in range(num_layers)]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
        self.lm_head = keras.layers.Dense(vocab_size, use_bias=False)
        ### END SOLUTION

    def call(self, token_ids):
        ### BEGIN SOLUTION
        mask = causal_mask(ops.shape(token_ids)[1])
        x = self.embedding(token_ids)
        for block in self.blocks:
            x = block(x, mask)
        return self.lm_head(self.final_norm(x))
        ### END SOLUTION

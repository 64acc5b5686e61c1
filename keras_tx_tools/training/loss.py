"""The training loss: cross-entropy of integer labels against logits, one row per prediction.

A language model predicts a token at every position, so its logits are
`(B, T, V)` and its labels `(B, T)`. Keras' `SparseCategoricalCrossentropy`
takes them as they are, and on the PyTorch backend that means moving the
class axis to dimension 1 and a softmax over a non-last axis: PyTorch's slow
path (on a GPU, most of a GPT-2 training step). Flattened to `(B * T, V)`
rows, the same numbers take the fast path on every backend -- that is all
`SparseCrossEntropy` does differently. The library's `keras_tx.GPT` hands any
compiled loss its rows itself (`GPT.compute_loss`); this loss gives the same
to models that do not, such as a student's own GPT.

The logits are cast to float32 first, so that under mixed precision the
softmax and the loss stay in float32 (keras_tx models return float32 logits
anyway).

>>> import numpy as np
>>> logits = np.log(np.array([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]], "float32"))
>>> labels = np.array([[0, 1]])
>>> round(float(SparseCrossEntropy()(labels, logits)), 4)  # -(log 0.5 + log 0.8) / 2
0.4581
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_tx_tools")
class SparseCrossEntropy(keras.losses.Loss):
    """`SparseCategoricalCrossentropy(from_logits=True)`, computed on `(N, classes)` rows.

    Labels have the shape of the logits without their last axis; the loss
    per prediction keeps that shape, so reductions and `sample_weight`
    behave exactly as with Keras' loss.
    """

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        rows = ops.reshape(logits, (-1, ops.shape(logits)[-1]))
        labels = ops.reshape(y_true, (-1,))
        losses = ops.sparse_categorical_crossentropy(labels, rows, from_logits=True)
        return ops.reshape(losses, ops.shape(logits)[:-1])

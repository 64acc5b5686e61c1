"""keras-tx's tools: training runs, datasets, GPT-2 interop, the instructor's tools and `keras-tx`.

Importing them picks the Keras backend as `pytest grader` does: when ``KERAS_BACKEND`` names
none and Keras' own default (its ``keras.json``, else TensorFlow) is not installed, as in the
light student install with JAX only, the first installed backend
(`grader.backends.choose_installed_backend`). So ``keras-tx train reverse`` and
``from keras_tx_tools.data.shakespeare import tiny_shakespeare`` work there as they are.
"""

from grader.backends import choose_installed_backend

choose_installed_backend()

"""Benchmarks of keras_tx against native PyTorch and stock Keras: `python -m benchmarks --help`."""

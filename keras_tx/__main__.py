"""`python -m keras_tx ...` is `keras-tx ...`."""

import sys

from keras_tx.cli import main

sys.exit(main())

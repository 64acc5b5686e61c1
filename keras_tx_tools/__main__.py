"""`python -m keras_tx_tools ...` is `keras-tx ...`."""

import sys

from keras_tx_tools.cli import main

sys.exit(main())

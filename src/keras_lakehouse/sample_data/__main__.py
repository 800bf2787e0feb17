"""``python -m keras_lakehouse.sample_data``: write the sample raw data."""

import sys

from keras_lakehouse.sample_data import main

sys.exit(main())

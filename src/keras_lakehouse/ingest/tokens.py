"""Texts standardised as the models' vectorizer does, in Spark: shared by preprocessing (the
vocabulary, token ids) and monitoring (token counts, out-of-vocabulary rate)."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F  # noqa: N812

# keras.layers.TextVectorization's "lower_and_strip_punctuation": tf.strings.lower lowercases
# ASCII only, so Spark's (Unicode) lower() would disagree on "É"; translate() does the same as TF.
_ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_KERAS_PUNCTUATION = r"[!\"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~']"


def keras_standardize(text: Column) -> Column:
    """Spark's version of TextVectorization's ``lower_and_strip_punctuation``."""
    lowered = F.translate(text, _ASCII_UPPER, _ASCII_UPPER.lower())
    return F.trim(F.regexp_replace(lowered, _KERAS_PUNCTUATION, ""))

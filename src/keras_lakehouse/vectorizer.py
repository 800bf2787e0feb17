"""The text vectorizer shared by preprocessing (token ids in silver) and the text model."""

from __future__ import annotations

import os
from typing import Any


def build_vectorizer(vocabulary: list[str], sequence_length: int) -> Any:
    """A ``keras.layers.TextVectorization`` with a fixed vocabulary (never adapted here).

    Args:
        vocabulary: Tokens by id, starting with the padding ``""`` and OOV ``"[UNK]"`` tokens
            (as ``fit_vocabulary`` returns them).
        sequence_length: Output length: shorter texts are padded with 0, longer ones cut.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no oneDNN banner from every worker
    import keras

    if vocabulary[:2] != ["", "[UNK]"]:
        raise ValueError(
            "vocabulary must start with the padding and OOV tokens ['', '[UNK]']. "
            f"Received: {vocabulary[:2]}"
        )
    return keras.layers.TextVectorization(
        vocabulary=vocabulary[2:],
        output_mode="int",
        output_sequence_length=sequence_length,
        standardize="lower_and_strip_punctuation",
        split="whitespace",
    )

"""Random topical short texts: 8-25 words, part topical to a label, part neutral filler."""

from __future__ import annotations

import math

import numpy as np

MIN_WORDS = 8
MAX_WORDS = 25
MIN_TOPICAL_FRACTION = 0.3
MAX_TOPICAL_FRACTION = 0.55
COMMA_PROBABILITY = 0.12
QUOTE_PROBABILITY = 0.08
EXCLAIM_PROBABILITY = 0.2

# Shared words ("bowl", "cup", "chip", "processor", "stream", "score", ...) blur the classes a bit.
TOPICAL_WORDS: dict[str, tuple[str, ...]] = {
    "sports": (
        "match", "goal", "team", "coach", "league", "referee", "stadium", "striker", "season",
        "playoff", "tournament", "defender", "penalty", "championship", "athlete", "sprint",
        "marathon", "tennis", "football", "basketball", "baseball", "pitch", "inning", "tackle",
        "medal", "olympic", "fans", "halftime", "overtime", "keeper", "dribble", "racket",
        "trophy", "cup", "bowl", "score", "stream", "transfer", "captain", "whistle",
    ),
    "technology": (
        "software", "laptop", "smartphone", "processor", "chip", "battery", "update", "app",
        "cloud", "server", "network", "algorithm", "database", "startup", "gadget", "browser",
        "keyboard", "screen", "pixel", "firmware", "robot", "sensor", "wireless", "bluetooth",
        "download", "upgrade", "developer", "code", "encryption", "gigabyte", "tablet", "camera",
        "stream", "score", "record", "platform", "silicon", "bug", "cookie", "compiler",
    ),
    "cooking": (
        "recipe", "oven", "flour", "garlic", "onion", "simmer", "saute", "bake", "roast",
        "butter", "sugar", "pasta", "sauce", "spice", "pepper", "salt", "whisk", "skillet",
        "dough", "knead", "broth", "grill", "marinade", "basil", "oregano", "chef", "kitchen",
        "dessert", "lemon", "vinegar", "cinnamon", "yeast", "chip", "processor", "cookie",
        "bowl", "cup", "pinch", "tender", "crispy",
    ),
}  # fmt: skip
NEUTRAL_WORDS: tuple[str, ...] = (
    "the", "a", "an", "and", "or", "but", "so", "very", "really", "quite", "today", "yesterday",
    "tomorrow", "people", "new", "old", "good", "bad", "great", "best", "worst", "first", "last",
    "time", "day", "week", "year", "thing", "way", "lot", "about", "after", "before", "again",
    "just", "still", "also", "maybe", "never", "always", "we", "they", "i", "you", "it", "this",
    "that", "my", "our", "their", "is", "was", "were", "have", "had", "think", "said", "felt",
    "looks", "seems",
)  # fmt: skip


def unique_text(rng: np.random.Generator, label: str, seen: set[str]) -> str:
    """A random text of ``label`` that is not in ``seen`` (so content keys never collide).

    Args:
        rng: The random stream to draw from.
        label: A key of ``TOPICAL_WORDS``.
        seen: The texts produced so far in this run; the new one is added to it.

    Returns:
        The new text.
    """
    while True:
        text = _random_text(rng, label)
        if text not in seen:
            seen.add(text)
            return text


def _random_text(rng: np.random.Generator, label: str) -> str:
    """8-25 words, at least 30 % from the label's topical words, with commas and quotes."""
    n_words = int(rng.integers(MIN_WORDS, MAX_WORDS + 1))
    fraction = rng.uniform(MIN_TOPICAL_FRACTION, MAX_TOPICAL_FRACTION)
    n_topical = max(math.ceil(MIN_TOPICAL_FRACTION * n_words), round(fraction * n_words))
    topical = rng.choice(TOPICAL_WORDS[label], size=n_topical)
    neutral = rng.choice(NEUTRAL_WORDS, size=n_words - n_topical)
    words = [str(word) for word in rng.permutation(np.concatenate([topical, neutral]))]
    for index in range(n_words - 1):
        if rng.random() < QUOTE_PROBABILITY:
            words[index] = f'"{words[index]}"'
        if rng.random() < COMMA_PROBABILITY:
            words[index] += ","
    ending = "!" if rng.random() < EXCLAIM_PROBABILITY else "."
    sentence = " ".join(words) + ending
    return sentence[0].upper() + sentence[1:]

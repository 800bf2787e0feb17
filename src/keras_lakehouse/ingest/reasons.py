"""Every quarantine reason a raw file or record can carry, defined here and only here.

A rejected row of ``images_quarantine``, ``texts_quarantine`` or an inference quarantine names
one of these in its ``reason`` column (the counts group by it), or, for a row the bronze suite's
per-row rules refuse, the broken expectation and its column
(``expect_column_values_to_be_between(column=width)``, see ``quality``), which no constant here
names. Ingestion, inference and the predict CLI import the reasons from this module; a test
checks that no other module of the package assigns one of these strings to a constant.
"""

from __future__ import annotations

# Decided from the file alone, before any decoding or parsing.
EMPTY_FILE = "empty_file"  # 0 bytes (images), or no record in the file (texts)
TOO_LARGE = "too_large"  # more bytes than ``max_bytes``: quarantined from its length, unread
UNREADABLE = "unreadable"  # logged, then gone, unreadable or grown past the cap when read
UNKNOWN_LABEL = "unknown_label"  # the folder (images) or ``label`` field (texts) is not allowed
UNSUPPORTED_FORMAT = "unsupported_format"  # an image format or text file suffix not accepted

# Decided by decoding an image (``ingest.images.inspect_image``).
NOT_AN_IMAGE = "not_an_image"
TOO_MANY_PIXELS = "too_many_pixels"
TRUNCATED = "truncated"
CORRUPT = "corrupt"
UNSUPPORTED_MODE = "unsupported_mode"

# Decided by parsing a text file (``ingest.texts.parse_text_file``).
NOT_UTF8 = "not_utf8"
EMPTY_TEXT = "empty_text"
MALFORMED_ROW = "malformed_row"
TEXT_TOO_LONG = "text_too_long"
PARSE_ERROR = "parse_error"  # last resort: the parser itself failed on this file

# Decided across files: the first of several is kept, the others carry these.
DUPLICATE_CONTENT = "duplicate_content"  # images with the same bytes
DUPLICATE_ID = "duplicate_id"  # text records with the same id

# What ``inspect_image`` can return.
IMAGE_DECODE_REASONS = frozenset(
    {NOT_AN_IMAGE, UNSUPPORTED_FORMAT, TOO_MANY_PIXELS, TRUNCATED, CORRUPT, UNSUPPORTED_MODE}
)
# What ``parse_text_file`` can return.
TEXT_PARSE_REASONS = frozenset(
    {
        NOT_UTF8,
        EMPTY_TEXT,
        UNKNOWN_LABEL,
        MALFORMED_ROW,
        TEXT_TOO_LONG,
        UNSUPPORTED_FORMAT,
        EMPTY_FILE,
        PARSE_ERROR,
    }
)
# Every reason per modality (besides the suite's per-row rules).
IMAGE_REASONS = IMAGE_DECODE_REASONS | {
    EMPTY_FILE,
    TOO_LARGE,
    UNREADABLE,
    UNKNOWN_LABEL,
    DUPLICATE_CONTENT,
}
TEXT_REASONS = TEXT_PARSE_REASONS | {DUPLICATE_ID, TOO_LARGE, UNREADABLE}
ALL_REASONS = IMAGE_REASONS | TEXT_REASONS

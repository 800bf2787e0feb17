"""Image checks and normalisation with Pillow, safe to run inside Spark executors.

Nothing here trusts the file: the format comes from the bytes (not the extension), the pixel count
is checked from the header before any pixel is decoded, truncated files are never padded
(``ImageFile.LOAD_TRUNCATED_IMAGES`` stays off) and every decoder exception becomes a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from keras_lakehouse.ingest.reasons import (
    CORRUPT,
    NOT_AN_IMAGE,
    TOO_MANY_PIXELS,
    TRUNCATED,
    UNSUPPORTED_FORMAT,
    UNSUPPORTED_MODE,
)

# One implementation of decoding for ingestion, preprocessing and every registered model.
from keras_lakehouse.serving.serving_code import (  # noqa: F401 - re-exported
    RGB_BACKGROUND,
    decode_rgb,
    open_image,
    resize_rgb,
    to_rgb,
)

DETAIL_MAX_CHARS = 300


@dataclass(frozen=True)
class ImageCheck:
    """What the decode check found: a reason when the image is rejected, else its header."""

    reason: str | None = None
    detail: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None


def inspect_image(
    content: bytes, *, allowed_formats: frozenset[str] | set[str], max_pixels: int
) -> ImageCheck:
    """Check that ``content`` is a whole image of an allowed format and size.

    Args:
        content: The file's bytes.
        allowed_formats: Pillow format names, e.g. ``{"PNG", "JPEG"}``.
        max_pixels: Largest ``width * height`` accepted (checked before decoding pixels).

    Returns:
        An ``ImageCheck``; ``reason`` is ``None`` when the image is accepted, else one of
        ``reasons.IMAGE_DECODE_REASONS``. No content makes it raise.

    Raises:
        RuntimeError: When ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is on (a setting, not input).
    """
    if _loads_truncated_images():
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on: refusing to check images.")
    header = ImageCheck()
    try:
        with open_image(content) as image:
            header = ImageCheck(
                format=image.format, width=image.width, height=image.height, mode=image.mode
            )
            if image.format not in allowed_formats:
                return _reject(
                    header,
                    UNSUPPORTED_FORMAT,
                    f"format {image.format} not in {sorted(allowed_formats)}",
                )
            if image.width * image.height > max_pixels:
                return _reject(
                    header,
                    TOO_MANY_PIXELS,
                    f"{image.width}x{image.height} pixels is above the cap of {max_pixels}",
                )
            image.verify()  # structure and checksums, without decoding pixels
        with open_image(content) as image:
            image.load()  # every pixel: catches truncation that verify() cannot see
            to_rgb(image)
    except UnidentifiedImageError:
        return ImageCheck(reason=NOT_AN_IMAGE, detail="bytes are not an image format Pillow knows")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Above Pillow's limit Pillow raises; between it and twice it Pillow warns, and
        # ``open_image`` turns the warning into an error: both are bombs, never corrupt files.
        return ImageCheck(reason=TOO_MANY_PIXELS, detail=_short(error))
    except (OSError, SyntaxError) as error:
        reason = TRUNCATED if "truncated" in str(error).lower() else CORRUPT
        return _reject(header, reason, _short(error))
    except ValueError as error:
        return _reject(header, UNSUPPORTED_MODE, _short(error))
    except Exception as error:
        return _reject(header, CORRUPT, _short(error))
    return header


def pixels_to_array(image: bytes, size: int) -> np.ndarray:
    """The inverse of ``resize_rgb``'s storage: raw bytes → ``(size, size, 3)`` uint8."""
    return np.frombuffer(image, dtype=np.uint8).reshape(size, size, 3)


def _loads_truncated_images() -> bool:
    return bool(ImageFile.LOAD_TRUNCATED_IMAGES)


def _reject(header: ImageCheck, reason: str, detail: str) -> ImageCheck:
    return ImageCheck(
        reason=reason,
        detail=detail[:DETAIL_MAX_CHARS],
        format=header.format,
        width=header.width,
        height=header.height,
        mode=header.mode,
    )


def _short(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:DETAIL_MAX_CHARS]

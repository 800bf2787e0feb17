"""Image checks and normalisation with Pillow, safe to run inside Spark executors.

Nothing here trusts the file: the format comes from the bytes (not the extension), the pixel count
is checked from the header before any pixel is decoded, truncated files are never padded
(``ImageFile.LOAD_TRUNCATED_IMAGES`` stays off) and every decoder exception becomes a reason.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Quarantine reasons produced here (the ingestion node adds the ones that need no decoding).
NOT_AN_IMAGE = "not_an_image"
UNSUPPORTED_FORMAT = "unsupported_format"
TOO_MANY_PIXELS = "too_many_pixels"
TRUNCATED = "truncated"
CORRUPT = "corrupt"
UNSUPPORTED_MODE = "unsupported_mode"

DETAIL_MAX_CHARS = 300
RGB_BACKGROUND = (255, 255, 255)


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
        An ``ImageCheck``; ``reason`` is ``None`` when the image is accepted.
    """
    if _loads_truncated_images():
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on: refusing to check images.")
    header = ImageCheck()
    try:
        with _open(content) as image:
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
        with _open(content) as image:
            image.load()  # every pixel: catches truncation that verify() cannot see
            to_rgb(image)
    except UnidentifiedImageError:
        return ImageCheck(reason=NOT_AN_IMAGE, detail="bytes are not an image format Pillow knows")
    except Image.DecompressionBombError as error:
        return ImageCheck(reason=TOO_MANY_PIXELS, detail=_short(error))
    except (OSError, SyntaxError) as error:
        reason = TRUNCATED if "truncated" in str(error).lower() else CORRUPT
        return _reject(header, reason, _short(error))
    except ValueError as error:
        return _reject(header, UNSUPPORTED_MODE, _short(error))
    except Exception as error:
        return _reject(header, CORRUPT, _short(error))
    return header


def to_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` as 8-bit RGB: grayscale, palette, CMYK, 16-bit and alpha modes included.

    Transparent pixels are composited over white, so a transparent background does not turn into
    whatever colour the hidden pixels had.
    """
    if image.mode == "RGB":
        return image
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*RGB_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        # 16/32-bit grayscale: scale to 8 bits before converting.
        return image.point(lambda value: value / 256).convert("L").convert("RGB")
    return image.convert("RGB")


def decode_rgb(content: bytes, *, max_pixels: int) -> Image.Image:
    """Decode ``content`` to an upright RGB image (EXIF orientation applied).

    Raises:
        ValueError: When the image is above ``max_pixels``.
    """
    with _open(content) as image:
        if image.width * image.height > max_pixels:
            raise ValueError(
                f"Image of {image.width}x{image.height} pixels is above the cap of {max_pixels}."
            )
        upright = ImageOps.exif_transpose(image)
        return to_rgb(upright).copy()


def resize_rgb(content: bytes, size: int, max_pixels: int) -> bytes:
    """Decode, normalise to RGB and resize to ``size``×``size``; uint8 HWC as raw bytes."""
    image = decode_rgb(content, max_pixels=max_pixels).resize(
        (size, size), Image.Resampling.BILINEAR
    )
    return np.asarray(image, dtype=np.uint8).tobytes()


def pixels_to_array(image: bytes, size: int) -> np.ndarray:
    """The inverse of ``resize_rgb``'s storage: raw bytes → ``(size, size, 3)`` uint8."""
    return np.frombuffer(image, dtype=np.uint8).reshape(size, size, 3)


def _open(content: bytes) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(content))


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

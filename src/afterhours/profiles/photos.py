"""Uploaded photos: decoded, bounded, and re-encoded so no metadata (EXIF, GPS) survives."""

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from afterhours.errors import validation_error

ACCEPTED_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
MAX_PIXELS = 40_000_000  # decompression bombs past this are refused, not decoded
MAX_SIDE = 2048
OUTPUT_CONTENT_TYPE = "image/jpeg"


def reencode(data: bytes, content_type: str) -> bytes:
    """Return a clean JPEG of the upload; raises VALIDATION_ERROR for anything else."""
    expected = ACCEPTED_TYPES.get(content_type.split(";")[0].strip().lower())
    if expected is None:
        raise validation_error("Content-Type", "Photo must be image/jpeg, image/png or image/webp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[expected]) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise validation_error("body", "Image dimensions are too large")
                image.load()
                clean = ImageOps.exif_transpose(image).convert("RGB")
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise validation_error("body", "Body is not a valid image of the declared type") from exc
    clean.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    # A fresh image carries no info dict, so nothing (EXIF, GPS, ICC, XMP) is written back.
    clean.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()

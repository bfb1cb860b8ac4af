"""Uploaded photos: decoded, bounded, and re-encoded so no metadata (EXIF, GPS) survives."""

import io
import logging
import warnings

from PIL import Image, ImageOps

from afterhours.errors import AppError, validation_error

log = logging.getLogger("afterhours.photos")

ACCEPTED_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
MAX_PIXELS = 40_000_000  # decompression bombs past this are refused, not decoded
MAX_SIDE = 2048
OUTPUT_CONTENT_TYPE = "image/jpeg"

# Pillow warns (once, process-wide) between its own limit and twice that; we refuse anything over
# MAX_PIXELS before decoding, so the warning would only be noise. A module-level filter rather than
# catch_warnings(), which is not thread-safe and this runs in worker threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def reencode(data: bytes, content_type: str) -> bytes:
    """Return a clean JPEG of the upload; raises VALIDATION_ERROR for anything else."""
    expected = ACCEPTED_TYPES.get(content_type.split(";")[0].strip().lower())
    if expected is None:
        raise validation_error("Content-Type", "Photo must be image/jpeg, image/png or image/webp")
    try:
        clean = _decode(data, expected)
    except AppError:
        raise
    except Image.DecompressionBombError as exc:
        raise validation_error("body", "Image dimensions are too large") from exc
    except Exception as exc:
        # Hostile or damaged files make Pillow's decoders raise many types (OSError, SyntaxError,
        # ValueError, struct.error, IndexError, DecompressionBombError...): all mean "not an image
        # we accept", never a server error.
        log.info("photo_rejected error=%s", type(exc).__name__)
        raise validation_error("body", "Body is not a valid image of the declared type") from exc
    clean.thumbnail((MAX_SIDE, MAX_SIDE))
    # convert() copies the source's info dict, and the JPEG encoder writes some of it back (a
    # "comment" survives); an empty dict leaves nothing (EXIF, GPS, ICC, XMP, comments) to write.
    clean.info = {}
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def _decode(data: bytes, expected: str) -> Image.Image:
    with Image.open(io.BytesIO(data), formats=[expected]) as image:
        # The header gives the dimensions; refuse before a single pixel is decoded.
        if image.width * image.height > MAX_PIXELS:
            raise validation_error("body", "Image dimensions are too large")
        image.load()
        # Apply the EXIF orientation to the pixels, since the EXIF itself is dropped.
        return ImageOps.exif_transpose(image).convert("RGB")

"""Uploaded photos: decoded, bounded, and re-encoded so no metadata (EXIF, GPS) survives.

Decoding costs memory by pixels, not by bytes (115 KB of zeros can be 40 megapixels), so the
header's dimensions are checked before any pixel is decoded (MAX_PIXELS), and at most DECODE_SLOTS
photos are decoded at once in a process: its photo memory is bounded by DECODE_SLOTS x ~200 MB.
"""

import asyncio
import io
import logging
import uuid
import warnings

from PIL import Image, ImageOps

from afterhours.errors import AppError, validation_error
from afterhours.limits import SlidingWindow, rate_limited

log = logging.getLogger("afterhours.photos")

ACCEPTED_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
# The pixels each format may declare, so that decoding one photo costs at most ~200 MB whatever
# it is (peaks measured with Pillow 13): a JPEG decodes at reduced scale (draft), but a
# progressive one keeps full-size coefficients, ~150 MB at 40 MP; a PNG costs up to 8 bytes a
# pixel (RGBA and its RGB copy), ~190 MB at 25 MP; a WebP's decoder keeps a canvas and a frame
# beside the image, ~380 MB at 25 MP, so it gets half. 25 MP is a 24 MP camera's 6000 x 4000.
MAX_PIXELS = {"JPEG": 40_000_000, "PNG": 25_000_000, "WEBP": 12_500_000}
MAX_SIDE = 2048
OUTPUT_CONTENT_TYPE = "image/jpeg"
# Two decodes at a time per process: uploads are rare next to messages, and a third waiting
# half a second costs less than the memory it would take.
DECODE_SLOTS = 2
# 10 uploads per 10 minutes per user: more than anyone choosing a picture, few for a script.
UPLOADS_PER_WINDOW = 10
UPLOAD_WINDOW_SECONDS = 600.0

uploads = SlidingWindow(limit=UPLOADS_PER_WINDOW, window=UPLOAD_WINDOW_SECONDS)
_decoding = asyncio.Semaphore(DECODE_SLOTS)

# Pillow's own check, at open(), as a second line behind ours: it raises DecompressionBombError
# past twice this and warns past it. The warning (once, process-wide) is noise, since we refuse
# anything over MAX_PIXELS before decoding; a module-level filter rather than catch_warnings(),
# which is not thread-safe and this runs in worker threads.
Image.MAX_IMAGE_PIXELS = max(MAX_PIXELS.values())
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def count_upload(user_id: uuid.UUID) -> None:
    """Count an upload against the user's limit, accepted or not (refused ones cost a decode
    too); RATE_LIMITED past it."""
    retry_after = uploads.take(user_id)
    if retry_after is not None:
        log.info("photo_rate_limited user_id=%s", user_id)
        raise rate_limited("photo uploads", retry_after)


async def clean(data: bytes, content_type: str) -> bytes:
    """reencode() off the event loop, in one of the process's DECODE_SLOTS."""
    async with _decoding:
        return await asyncio.to_thread(reencode, data, content_type)


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
        raise too_large() from exc
    except Exception as exc:
        # Hostile or damaged files make Pillow's decoders raise many types (OSError, SyntaxError,
        # ValueError, struct.error, IndexError...): all mean "not an image we accept", never a
        # server error.
        log.info("photo_rejected error=%s", type(exc).__name__)
        raise validation_error("body", "Body is not a valid image of the declared type") from exc
    # convert() copies the source's info dict, and the JPEG encoder writes some of it back (a
    # "comment" survives); an empty dict leaves nothing (EXIF, GPS, ICC, XMP, comments) to write.
    clean.info = {}
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def too_large() -> AppError:
    return validation_error("body", "Image dimensions are too large")


def open_bounded(data: bytes, expected: str) -> Image.Image:
    """The image with only its header read: refused past its format's MAX_PIXELS, and a JPEG
    set to decode at 1/2, 1/4 or 1/8 scale when that still covers the size it is scaled to."""
    image = Image.open(io.BytesIO(data), formats=[expected])
    if image.width * image.height > MAX_PIXELS[expected]:
        image.close()
        raise too_large()
    image.draft(None, _fitted(image.size))
    return image


def _fitted(size: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled down (never up) to fit MAX_SIDE x MAX_SIDE."""
    width, height = size
    scale = min(1.0, MAX_SIDE / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _decode(data: bytes, expected: str) -> Image.Image:
    with open_bounded(data, expected) as image:
        image.load()
        if image.mode in ("RGB", "L"):
            # Scaled first, in place: the full-size pixels are dropped before any copy is made.
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            small = image.convert("RGB")
        else:
            # Palette and bilevel images would be scaled by nearest neighbour, and alpha ones
            # through a premultiplied copy: converted first, the original dropped at once.
            rgb = image.convert("RGB")
            image.close()
            rgb.thumbnail((MAX_SIDE, MAX_SIDE))
            small = rgb
    # Apply the EXIF orientation to the pixels, since the EXIF itself is dropped. The box is
    # square, so turning after scaling gives the same size.
    return ImageOps.exif_transpose(small)

"""Photo test data: images in each format, EXIF with a GPS position, the clean-JPEG check."""

import io
from typing import Any

from PIL import Image

PHOTO = "/api/after-hours/profile/photo"
ADULT = {"name": "Pat", "birthDate": "1990-06-15", "gender": "man"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
GPS_IFD = 0x8825


def image_bytes(
    fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: Any
) -> bytes:
    image = Image.new(mode, size, "red" if mode != "RGBA" else (255, 0, 0, 128))
    image.putpixel((0, 0), (0, 0, 255) if mode == "RGB" else image.getpixel((0, 0)))
    buf = io.BytesIO()
    image.save(buf, fmt, **save)
    return buf.getvalue()


def blank_png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    """All-zero pixels: an RGB 6300 x 6300 compresses to ~115 KB and decodes to ~160 MB."""
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def exif_with_gps(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model 12"  # Model
    if orientation:
        exif[0x0112] = orientation
    exif[GPS_IFD] = {
        1: "N",
        2: (52.0, 22.0, 12.5),
        3: "E",
        4: (4.0, 53.0, 30.25),
    }
    return exif


def assert_clean_jpeg(data: bytes) -> Image.Image:
    assert data[:3] == b"\xff\xd8\xff"
    # No APP1 (EXIF, XMP), APP2 (ICC), APP13 (IPTC) or COM segments at all.
    for marker in (b"\xff\xe1", b"\xff\xe2", b"\xff\xed", b"\xff\xfe"):
        assert marker not in data[: data.find(b"\xff\xda")], marker
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert not image.getexif()
    assert set(image.info) <= {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"}
    image.load()
    return image

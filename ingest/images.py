"""Cover images judged from their headers, never decoded here.

A cover travels into ID3 APIC frames, the M4B and a podcast feed. A PNG that declares 100,000 ×
100,000 pixels is a few kilobytes on disk and tens of gigabytes in any decoder that later opens it
(a player, ffmpeg, a store's checker). The header states the size, so a cover is accepted only
when its format is one players show (JPEG, PNG) and its pixel count is within a limit stores
themselves stay far below (Apple asks for 1400–3000 px square).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_COVER_PIXELS = 36_000_000  # 6000 × 6000
MAX_COVER_BYTES = 20 << 20


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    width: int
    height: int


def image_info(data: bytes) -> ImageInfo | None:
    """Format and size from the header of a PNG or JPEG; None when it is neither or is damaged."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return ImageInfo("image/png", width, height)
    if data[:2] == b"\xff\xd8":
        return _jpeg_info(data)
    return None


def _jpeg_info(data: bytes) -> ImageInfo | None:
    """Walk the JPEG markers to the first start-of-frame (SOF0..SOF15 except DHT/JPG/DAC)."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        if length < 2:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return ImageInfo("image/jpeg", width, height)
        at += 2 + length
    return None


def usable_cover(data: bytes | None, where: str = "cover") -> tuple[bytes | None, str, str | None]:
    """(cover bytes or None, its MIME type, a notice when it was refused)."""
    if not data:
        return None, "", None
    if len(data) > MAX_COVER_BYTES:
        return None, "", f"{where} is {len(data) >> 20} MiB (limit {MAX_COVER_BYTES >> 20} MiB); no cover used"
    info = image_info(data)
    if info is None:
        return None, "", f"{where} is not a readable JPEG or PNG image; no cover used"
    if info.width == 0 or info.height == 0 or info.width * info.height > MAX_COVER_PIXELS:
        return None, "", (f"{where} declares {info.width} × {info.height} pixels (limit "
                          f"{MAX_COVER_PIXELS // 1_000_000} million); no cover used")
    return data, info.mime, None

"""The LAME "Info" frame: gapless playback and exact timing for CBR MP3.

An MP3 encoder primes its filter bank, so LAME's output starts with 576 samples of encoder delay
(plus the decoder's own 529) and ends with padding up to a whole 1152-sample frame. Without the
numbers, every player starts ~25 ms late and transcripts drift by as much. lameenc returns raw
frames without the Info frame the LAME command line would write, so we build it here, following
the public "LAME tag" (Mp3 Info Tag rev 1) layout:

    frame header (4) | side info (17 mono / 32 stereo, zero) | "Info" | flags (4) | frames (4)
    | bytes (4) | TOC (100) | quality (4) | encoder "LAMExxxxx" (9) | revision+method (1)
    | lowpass (1) | peak (4) | radio gain (2) | audiophile gain (2) | flags+ATH (1) | bitrate (1)
    | delay:12 padding:12 (3) | misc (1) | mp3 gain (1) | preset+surround (2) | music length (4)
    | music CRC (2) | tag CRC (2, CRC-16 of everything before it in the frame)

Decoders (mpg123 in libsndfile, ffmpeg, Apple, foobar2000) skip this frame, then drop `delay` +
529 samples at the start and `padding` at the end.
"""
from __future__ import annotations

import struct

from mastering.errors import MasteringError

ENCODER_DELAY = 576  # LAME's fixed encoder delay (samples), see the module docstring
SAMPLES_PER_FRAME = 1152  # MPEG-1 Layer III

_MPEG1_L3_BITRATES = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG1_RATES = (44100, 48000, 32000)


def _crc16(data: bytes) -> int:
    """CRC-16/ARC (polynomial 0x8005, reflected, initial 0), as the LAME tag uses."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _parse_header(h: bytes) -> tuple[int, int, int, bool]:
    """(bitrate kbps, sample rate, frame length bytes, mono) of an MPEG-1 Layer III header."""
    if len(h) < 4 or h[0] != 0xFF or (h[1] & 0xFE) != 0xFA:
        raise MasteringError("encoder output is not MPEG-1 Layer III")
    br_idx, sr_idx, pad = h[2] >> 4, (h[2] >> 2) & 3, (h[2] >> 1) & 1
    if not 0 < br_idx < 15 or sr_idx == 3:
        raise MasteringError("encoder output has an invalid MP3 frame header")
    bitrate, rate = _MPEG1_L3_BITRATES[br_idx], _MPEG1_RATES[sr_idx]
    return bitrate, rate, 144000 * bitrate // rate + pad, (h[3] >> 6) == 3


def count_frames(body: bytes) -> int:
    """Number of MP3 frames in `body` (walks the headers). Raises MasteringError on bad data."""
    pos, frames = 0, 0
    while pos + 4 <= len(body):
        _, _, length, _ = _parse_header(body[pos:pos + 4])
        pos += length
        frames += 1
    if pos != len(body):
        raise MasteringError("encoder output ends with a partial MP3 frame")
    return frames


def info_frame(body: bytes, num_samples: int, sample_rate: int, channels: int,
               bitrate_kbps: int, frames: int | None = None, body_size: int | None = None
               ) -> bytes:
    """The Info frame to put before `body` (LAME CBR frames holding `num_samples` per channel).

    For a body too large to hold, pass its first frame as `body` with `frames` and `body_size`.
    Raises MasteringError when the body is not MPEG-1 Layer III at the given rate and bitrate.
    """
    bitrate, rate, _, mono = _parse_header(body[:4])
    if rate != sample_rate or bitrate != bitrate_kbps or mono != (channels == 1):
        raise MasteringError("encoder output does not match the requested format")
    frames = count_frames(body) if frames is None else frames
    body_size = len(body) if body_size is None else body_size
    padding = frames * SAMPLES_PER_FRAME - ENCODER_DELAY - num_samples
    if not 0 <= padding < 4096 or ENCODER_DELAY >= 4096:
        raise MasteringError(f"unexpected MP3 padding {padding} for {num_samples} samples")
    length = 144000 * bitrate // rate  # no padding slot in the Info frame
    header = bytes((0xFF, 0xFB, body[2] & 0xFC, body[3]))  # no CRC, no padding, no private bit
    side_info = 17 if mono else 32
    total_bytes = length + body_size
    toc = bytes(min(255, i * 256 // 100) for i in range(100))  # CBR: linear seek table
    tag = b"Info" + struct.pack(">III", 0x0F, frames, total_bytes) + toc + struct.pack(">I", 0)
    rate_bits = {32000: 0, 44100: 1, 48000: 2}[rate] << 6
    lame = (b"LAME3.100"
            + bytes((0x01,))  # tag revision 0, VBR method 1 = constant bitrate
            + bytes((0,))  # lowpass unknown
            + struct.pack(">f", 0.0) + b"\0\0" + b"\0\0"  # peak, radio and audiophile gain unset
            + bytes((0,))  # encoding flags, ATH type
            + bytes((min(bitrate, 255),))
            + struct.pack(">I", (ENCODER_DELAY << 12) | padding)[1:]
            + bytes((rate_bits,))  # misc: source sample rate
            + b"\0" + b"\0\0"  # mp3 gain, preset/surround
            + struct.pack(">I", total_bytes) + b"\0\0")  # music length, music CRC (not computed)
    frame = bytearray(length)
    content = header + bytes(side_info) + tag + lame
    frame[:len(content)] = content
    frame[len(content):len(content) + 2] = struct.pack(">H", _crc16(bytes(frame[:len(content)])))
    return bytes(frame)

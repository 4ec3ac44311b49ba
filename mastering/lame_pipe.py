"""LAME in a process of its own: 16-bit PCM on stdin, MP3 frames on stdout.

lameenc holds Python's GIL while it encodes, so two chapters encoded on two threads take turns on
one core — and MP3 encoding is half of mastering. Run here, in a child process, it encodes in
parallel with the parent's mastering and with other chapters. Imports nothing but lameenc.

    python -m mastering.lame_pipe BITRATE_KBPS SAMPLE_RATE CHANNELS QUALITY < pcm > mp3
"""
from __future__ import annotations

import sys

import lameenc

_CHUNK = 1 << 20


def main(bitrate: int, rate: int, channels: int, quality: int) -> int:
    enc = lameenc.Encoder()
    enc.set_bit_rate(bitrate)
    enc.set_in_sample_rate(rate)
    enc.set_out_sample_rate(rate)
    enc.set_channels(channels)
    enc.set_quality(quality)
    src, dst = sys.stdin.buffer, sys.stdout.buffer
    frame = 2 * channels  # bytes per frame of 16-bit PCM
    carry = b""
    while True:
        data = src.read(_CHUNK)
        if not data:
            break
        data = carry + data
        whole = len(data) // frame * frame
        data, carry = data[:whole], data[whole:]
        dst.write(bytes(enc.encode(data)))
    dst.write(bytes(enc.flush()))
    dst.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:5])))

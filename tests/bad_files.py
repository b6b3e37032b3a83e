"""Broken files the tests make (imported by several test modules)."""

import struct
import zlib


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims `width x height` pixels: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def damaged_exif_photo(format_name: str, size: tuple[int, int] = (96, 64)) -> bytes:
    """A gray photo whose EXIF block is damaged in a way plain Pillow opens without a word.

    The camera-make tag (ASCII) is retyped DOUBLE in the block, as a bad editor or a bit
    flip leaves it: Pillow reads a float there and fails when it writes the block back.
    """
    from io import BytesIO

    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "Camera"  # Make, a string
    exif[0x0110] = "Model X"
    block = bytearray(exif.tobytes())
    entry = block.index(struct.pack(">HH", 0x010F, 2))  # Pillow writes big-endian
    # type 2 (ASCII) -> 12 (DOUBLE), count 7 -> 1: the string's 8 bytes read as a float
    block[entry + 2 : entry + 8] = struct.pack(">HI", 12, 1)
    buffer = BytesIO()
    Image.new("L", size, 120).convert("RGB").save(buffer, format_name, exif=bytes(block))
    return buffer.getvalue()

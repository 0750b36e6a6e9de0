from __future__ import annotations

import base64
import struct

import pytest

from proxy.tokens.images import image_url_tokens
from proxy.tokens.imagesize import data_url_size, image_size


def png(width: int, height: int) -> bytes:
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    )


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00"


def webp_vp8x(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    body += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def webp_vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + bits.to_bytes(4, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def webp_vp8(width: int, height: int) -> bytes:
    body = b"VP8 " + struct.pack("<I", 10) + b"\x00\x00\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def jpeg(width: int, height: int, app_bytes: int = 14) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", app_bytes + 2) + b"\x00" * app_bytes
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x00" * 9
    return b"\xff\xd8" + app0 + b"\xff\xc4\x00\x04\x00\x00" + sof0 + b"\xff\xda"


def data_url(mime: str, data: bytes) -> str:
    payload = base64.b64encode(data + bytes(64)).decode()
    return f"data:{mime};base64,{payload}"


@pytest.mark.parametrize("encode", [png, gif, webp_vp8x, webp_vp8l, webp_vp8, jpeg])
def test_reads_size_from_header(encode: object) -> None:
    assert callable(encode)
    assert image_size(encode(1234, 567)) == (1234, 567)


def test_jpeg_size_after_a_large_exif_segment() -> None:
    assert image_size(jpeg(800, 600, app_bytes=60_000)) == (800, 600)


def test_data_url_size_decodes_only_a_prefix_of_large_images() -> None:
    url = data_url("image/png", png(4096, 2048) + b"\x00" * 5_000_000)

    assert data_url_size(url) == (4096, 2048)


def test_known_size_data_url_uses_the_tile_formula() -> None:
    assert image_url_tokens(data_url("image/png", png(2048, 4096)), "high") == 1105
    assert image_url_tokens(data_url("image/gif", gif(64, 64)), "auto") == 85 + 170


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.png",
        "data:image/png,rawbytes",
        "data:image/png;base64,!!!!not-base64",
        "data:image/bmp;base64," + base64.b64encode(b"BM" + b"\x00" * 40).decode(),
        "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode(),
    ],
)
def test_unreadable_sizes_are_none(url: str) -> None:
    assert data_url_size(url) is None

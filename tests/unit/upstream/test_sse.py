"""SSE framing survives any chunking of the byte stream."""

from __future__ import annotations

from proxy.upstream.sse import DONE, SSEParser, encode

STREAM = (b'data: {"a": 1}\n\n'
          b"event: response.output_text.delta\ndata: {\"delta\": \"hi\"}\n\n"
          b": keep-alive comment\n\n"
          b"data: line one\ndata: line two\n\n"
          b"data: [DONE]\n\n")


def parse_in_pieces(stream: bytes, size: int) -> list[tuple[bytes | None, bytes | None, bytes]]:
    parser = SSEParser()
    events = []
    for i in range(0, len(stream), size):
        events.extend(parser.feed(stream[i:i + size]))
    assert parser.pending() == b""
    return [(e.name, e.data, e.raw) for e in events]


def test_every_chunk_size_gives_the_same_events() -> None:
    whole = parse_in_pieces(STREAM, len(STREAM))
    assert [(name, data) for name, data, _ in whole] == [
        (None, b'{"a": 1}'), (b"response.output_text.delta", b'{"delta": "hi"}'), (None, None),
        (None, b"line one\nline two"), (None, DONE)]
    assert b"".join(raw for _, _, raw in whole) == STREAM
    for size in range(1, 20):
        assert parse_in_pieces(STREAM, size) == whole


def test_crlf_line_endings_split_between_chunks() -> None:
    parser = SSEParser()
    events = parser.feed(b"data: x\r\n\r") + parser.feed(b"\ndata: y\r\n\r\n")
    assert [e.data for e in events] == [b"x", b"y"]


def test_encode_is_parsed_back() -> None:
    assert SSEParser().feed(encode(b'{"error": {}}', b"error"))[0].data == b'{"error": {}}'

"""SSE framing survives any chunking of the byte stream, and any pace at which its events are taken."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.upstream.sse import DONE, SSEParser, encode, parse_event

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
    events = [*parser.feed(b"data: x\r\n\r"), *parser.feed(b"\ndata: y\r\n\r\n")]
    assert [e.data for e in events] == [b"x", b"y"]


def test_encode_is_parsed_back() -> None:
    assert next(SSEParser().feed(encode(b'{"error": {}}', b"error"))).data == b'{"error": {}}'


def test_events_not_taken_yet_come_first_from_the_next_feed() -> None:
    # A relay that stops mid-read (its client left) hands the parser on to the drain: nothing is lost,
    # nothing is handed out twice.
    parser = SSEParser()
    events = parser.feed(STREAM[:60])
    first = next(events)
    assert first.data == b'{"a": 1}'
    rest = [e.data for e in parser.feed(STREAM[60:])]
    assert rest == [b'{"delta": "hi"}', None, b"line one\nline two", DONE]
    assert list(events) == []  # the abandoned iterator hands out nothing more
    assert parser.pending() == b""


def test_a_feed_not_iterated_keeps_its_bytes() -> None:
    parser = SSEParser()
    parser.feed(b'data: {"a": 1}\n\nda')
    assert [e.data for e in parser.feed(b"ta: 2\n\n")] == [b'{"a": 1}', b"2"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30), st.lists(st.integers(0, 3), min_size=1, max_size=30))
def test_any_chunking_and_any_pace_of_taking_gives_each_event_once_in_order(
        sizes: list[int], takes: list[int]) -> None:
    parser, events, at = SSEParser(), [], 0
    for i, size in enumerate(sizes):
        handed = parser.feed(STREAM[at:at + size])
        at += size
        events.extend(itertools.islice(handed, takes[i % len(takes)]))  # some taken now, the rest later
    events.extend(parser.feed(STREAM[at:]))
    assert b"".join(e.raw for e in events) == STREAM
    assert parser.pending() == b""


@given(st.binary(max_size=40).filter(lambda v: b"\n" not in v and b"\r" not in v),
       st.sampled_from([b"", b"event: delta\n", b": comment\n"]))
def test_a_one_line_event_reads_as_the_line_by_line_reading_does(value: bytes, before: bytes) -> None:
    # With a line in front, the event is read line by line: the one-line reading must agree with it.
    one_line = parse_event(b"data: " + value + b"\n\n")
    by_lines = parse_event(before + b"data: " + value + b"\n\n")
    assert one_line.data == by_lines.data == value
    assert one_line.name is None and by_lines.name == (b"delta" if before.startswith(b"event") else None)

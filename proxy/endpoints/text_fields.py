"""Every string a model or provider sees in a body, as slots the scan reads and redaction writes back;
structural values and binary data URLs skipped, caller-chosen keys shown as `#n` in paths."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from .base import TextSlot

# String values that steer the API rather than say anything.
STRUCTURAL: Final = frozenset({
    "model", "role", "type", "object", "id", "call_id", "tool_call_id", "item_id", "previous_response_id",
    "response_id", "status", "detail", "encoding_format", "service_tier", "reasoning_effort", "verbosity", "voice",
    "truncation", "modalities", "tool_choice", "file_id", "mime_type", "media_type", "finish_reason", "format",
    "system_fingerprint", "conversation", "container_id", "approval_request_id",
})
# In answers also what the model never writes as prose: names it picks from the caller's tools, opaque blobs.
ANSWER_STRUCTURAL: Final = STRUCTURAL | frozenset({"name", "server_label", "encrypted_content", "result",
                                                  "partial_image_b64", "signature"})
_AUDIO_FORMATS: Final = frozenset({"wav", "mp3", "flac", "opus", "pcm16", "aac", "g711_ulaw", "g711_alaw"})
_TEXT_DATA_URL: Final = re.compile(
    r"data:(?:text/|application/(?:json|xml|x-yaml|yaml|csv|javascript|x-www-form-urlencoded)|[^,;]*;charset=|,)",
    re.IGNORECASE,
)
_NAMED_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z_\-]{0,63}[0-9]{0,2}")


def string_slots(path: str, container: dict[str, Any] | list[Any], key: str | int,
                 structural: frozenset[str] = STRUCTURAL) -> Iterator[TextSlot]:
    """The strings in container[key] and below, in document order (walked without recursion, so a
    deeply nested body cannot exhaust the stack)."""
    stack: list[tuple[str, dict[str, Any] | list[Any], str | int]] = [(path, container, key)]
    while stack:
        where, holder, slot = stack.pop()
        value = holder[slot]  # type: ignore[index]
        if isinstance(value, str):
            if value and (not isinstance(slot, str) or slot not in structural) and not _binary_data_url(value):
                yield where, value, holder, slot
        elif isinstance(value, dict):
            audio = isinstance(value.get("format"), str) and value["format"] in _AUDIO_FORMATS
            children = [(_child(where, k, i), value, k) for i, k in enumerate(value) if not (audio and k == "data")]
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{where}[{i}]", value, i) for i in range(len(value))]))


def body_slots(body: dict[str, Any], structural: frozenset[str] = STRUCTURAL) -> Iterator[TextSlot]:
    """Every string of a request body, paths starting at its top-level keys (`messages[0].content`)."""
    for i, key in enumerate(body):
        yield from string_slots(_child("", key, i), body, key, structural)


def _child(path: str, key: str, index: int) -> str:
    name = key if _NAMED_KEY.fullmatch(key) else f"#{index}"
    return f"{path}.{name}" if path else name


def _binary_data_url(value: str) -> bool:
    return value.startswith("data:") and _TEXT_DATA_URL.match(value) is None

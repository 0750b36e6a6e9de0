"""Property: for any text holding a value of a blocked or redacted type, in any supported form, field and
position, neither the forwarded body nor the client-facing answer (whole or streamed) holds that value.

Through the real app on loopback with the test upstream; the research team's policy here redacts every
PII type and blocks cards and secrets in requests (they are then redacted in answers).
"""

from __future__ import annotations

import base64
import string
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import luhn

from tests.conftest import ProxyFactory, ProxyHandle, UpstreamHandle
from tests.support.config import KEYS
from tests.support.pii_forms import Case, carries, policy_dir

BLOCKED = {"card", "github_token", "aws_access_key"}
FILLER = st.lists(st.sampled_from(["hello", "please", "note:", "thanks", "see", "the", "file", "(ok)", "-", "\n"]),
                  max_size=6).map(" ".join)
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@dataclass(frozen=True)
class Value:
    type: str
    canonical: str
    groups: tuple[str, ...]  # how a person would group it; forms join these with separators


@st.composite
def values(draw: st.DrawFn) -> Value:
    kind = draw(st.sampled_from(["email", "phone", "card", "github_token", "aws_access_key", "iban"]))
    if kind == "email":
        local = draw(st.from_regex(r"[a-z]{2,8}(\.[a-z]{2,8})?", fullmatch=True))
        domain = draw(st.sampled_from(["example.org", "mail.example.co.uk", "corp-mail.io", "uni.example.edu"]))
        return Value(kind, f"{local}@{domain}", (f"{local}@{domain}",))
    if kind == "card":
        prefix = draw(st.sampled_from(["4", "51", "55", "6011"]))
        body = prefix + "".join(draw(st.lists(st.sampled_from(string.digits), min_size=15 - len(prefix),
                                              max_size=15 - len(prefix))))
        number = body + luhn.calc_check_digit(body)
        return Value(kind, number, tuple(number[i : i + 4] for i in range(0, 16, 4)))
    if kind == "phone":
        region = draw(st.sampled_from(["GB", "US", "DE", "FR", "AU", "IN"]))
        number = _valid_phone(region, draw(st.integers(0, 9999)))
        groups = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL).replace("-", " ")
        return Value(kind, groups.replace("+", "").replace(" ", ""), tuple(groups.split(" ")))
    if kind == "iban":
        bban = "".join(draw(st.lists(st.sampled_from(string.digits), min_size=18, max_size=18)))
        check = 98 - int(bban + "131400") % 97  # DE is 13 14; mod-97 check digits
        value = f"DE{check:02d}{bban}"
        return Value(kind, value, tuple(value[i : i + 4] for i in range(0, len(value), 4)))
    alphabet = string.ascii_letters + string.digits if kind == "github_token" else string.ascii_uppercase + "234567"
    length = 36 if kind == "github_token" else 16
    tail = draw(st.text(alphabet=alphabet, min_size=length, max_size=length).filter(
        lambda t: len(set(t)) > 6 and any(c.isdigit() for c in t) and (kind != "github_token" or (
            any(c.isupper() for c in t) and any(c.islower() for c in t)))))
    value = ("ghp_" if kind == "github_token" else "AKIA") + tail
    return Value(kind, value, (value,))


def _valid_phone(region: str, tail: int) -> phonenumbers.PhoneNumber:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    national = str(example.national_number)
    for step in range(100):
        candidate = phonenumbers.parse(f"+{example.country_code}{national[:-4]}{(tail + step) % 10000:04d}")
        if phonenumbers.is_valid_number(candidate):
            return candidate
    return example


@st.composite
def written(draw: st.DrawFn, value: Value) -> str:
    """`value` in one of the forms the detectors support for its type."""
    digits = value.type in ("card", "phone", "iban")
    forms = ["plain", "zero_width", "soft_hyphen", "fullwidth"] + (
        ["separators", "unicode_spaces", "other_digits"] if digits else ["base64"]) + (
        ["percent", "entity", "json_escape"] if value.type == "email" else []) + (
        ["wrapped"] if value.type == "github_token" else [])
    form = draw(st.sampled_from(forms))
    text = (("+" if value.type == "phone" else "") + " ".join(value.groups)) if digits else value.groups[0]
    if form == "separators":
        sep = draw(st.sampled_from(["-", ".", "  ", "\n", " - "] if value.type != "phone" else ["-", ".", "  "]))
        text = ("+" if value.type == "phone" else "") + sep.join(value.groups)
    elif form == "unicode_spaces":
        text = text.replace(" ", draw(st.sampled_from(["\u00a0", "\u2009", "\u202f", "\u3000"])))
    elif form == "other_digits":
        zero = draw(st.sampled_from([0x0660, 0x0966, 0x1D7CE]))
        text = "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)
    elif form == "fullwidth":
        text = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    elif form in ("zero_width", "soft_hyphen"):
        marks = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"] if form == "zero_width" else ["\u00ad"]
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(1, len(text) - 1))
            text = text[:at] + draw(st.sampled_from(marks)) + text[at:]
    elif form == "wrapped":
        at = draw(st.integers(8, len(text) - 4))
        text = text[:at] + draw(st.sampled_from([" ", "\n", "  ", "\n  "])) + text[at:]
    elif form == "base64":
        text = base64.b64encode(text.encode()).decode()
    elif form == "percent":
        text = urllib.parse.quote(text, safe="")
    elif form == "entity":
        text = text.replace("@", draw(st.sampled_from(["&#64;", "&#x40;", "&commat;"])))
    elif form == "json_escape":
        text = text.replace("@", "\\u0040")
    return text


@dataclass(frozen=True)
class Example:
    value: Value
    text: str
    written: str
    field: str

    @property
    def case(self) -> Case:
        return Case("generated", self.text, self.value.type, self.written, self.value.canonical)


@st.composite
def examples(draw: st.DrawFn) -> Example:
    value = draw(values())
    shown = draw(written(value))
    text = f"{draw(FILLER)} {shown} {draw(FILLER)}".strip(" ")
    field = draw(st.sampled_from(["content", "parts", "name", "user", "metadata", "tool", "system"]))
    return Example(value, text, shown, field)


def request_body(example: Example, stream: bool) -> dict[str, Any]:
    text = example.text
    body: dict[str, Any] = {"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    if example.field == "content":
        body["messages"][0]["content"] = text
    elif example.field == "parts":
        cut = len(text) // 2
        body["messages"][0]["content"] = [{"type": "text", "text": text[:cut]}, {"type": "text", "text": text[cut:]}]
    elif example.field == "name":
        body["messages"][0]["name"] = text
    elif example.field == "user":
        body["user"] = text
    elif example.field == "metadata":
        body["metadata"] = {"note": text}
    elif example.field == "tool":
        body["tools"] = [{"type": "function", "function": {"name": "f", "description": text,
                                                            "parameters": {"type": "object", "properties": {}}}}]
    else:
        body["messages"].insert(0, {"role": "system", "content": text})
    return body


def read_answer(response: httpx.Response, stream: bool) -> str:
    if not stream:
        return str(response.json()["choices"][0]["message"]["content"])
    out = []
    for line in response.text.splitlines():
        if line.startswith("data: {"):
            for choice in orjson.loads(line[6:]).get("choices") or ():
                out.append(choice["delta"].get("content") or "")
    return "".join(out)


@pytest.fixture
def research(make_proxy: ProxyFactory, tmp_path: Path) -> Iterator[ProxyHandle]:
    yield make_proxy(policy__dir=str(policy_dir(tmp_path)))


def post(proxy: ProxyHandle, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{proxy.base_url}/chat/completions", json=body, timeout=10,
                      headers={"Authorization": f"Bearer {KEYS['research']}"})


@SETTINGS
@given(example=examples(), stream=st.booleans())
def test_a_value_in_a_request_never_reaches_the_upstream(research: ProxyHandle, upstream: UpstreamHandle,
                                                         example: Example, stream: bool) -> None:
    upstream.model.reset()
    response = post(research, request_body(example, stream))
    if example.value.type in BLOCKED:
        assert response.status_code == 403, response.text
        assert upstream.model.received == []
        assert not carries(response.text, example.case)
        return
    assert response.status_code == 200, response.text
    forwarded = orjson.dumps(upstream.model.last().body).decode()
    assert not carries(forwarded, example.case), forwarded


@SETTINGS
@given(example=examples(), stream=st.booleans())
def test_a_value_the_model_writes_never_reaches_the_client(research: ProxyHandle, upstream: UpstreamHandle,
                                                           example: Example, stream: bool) -> None:
    upstream.model.reset()
    upstream.model.reply_override = example.text
    response = post(research, {"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "go"}]})
    assert response.status_code == 200, response.text
    answer = read_answer(response, stream)
    assert not carries(answer, example.case), answer
    assert not carries(response.text, example.case)

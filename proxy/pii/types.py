"""The values the PII scanner produces and consumes: matches, findings, custom types, categories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Category = Literal["pii", "secret"]

# Policy data keys: a policy's `redact` list and the input's `pii.types` use exactly these names.
CATEGORIES: Final[dict[str, Category]] = {
    "email": "pii",
    "phone": "pii",
    "card": "pii",
    "ssn": "pii",
    "iban": "pii",
    "ip": "pii",
    "aws_access_key": "secret",
    "aws_secret_key": "secret",
    "github_token": "secret",
    "slack_token": "secret",
    "openai_key": "secret",
    "anthropic_key": "secret",
    "google_api_key": "secret",
    "stripe_key": "secret",
    "jwt": "secret",
    "private_key": "secret",
    "url_credentials": "secret",
    "password": "secret",
    "auth_header": "secret",
}


@dataclass(frozen=True, slots=True)
class Match:
    """One detected value: `text[start:end]` is the value, and is never stored here."""

    type: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Finding:
    """How many values of one type were found at one JSON path (what the policy sees)."""

    type: str
    count: int
    path: str


@dataclass(frozen=True, slots=True)
class CustomType:
    """A security team's own identifier: a regex, optionally confirmed by a named validator.

    `validator` is "luhn", "iban" or any python-stdnum module name such as "de.idnr" or "nl.bsn".
    """

    name: str
    pattern: str
    validator: str | None = None
    category: Category = "pii"

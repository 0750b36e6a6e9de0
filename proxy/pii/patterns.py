"""Compiled detection patterns, each built around a cheap anchor so one scan of the text stays linear.

Every pattern starts with a literal or a small character class (which `re` searches for in C) and
checks its left boundary with a lookbehind placed after that anchor; every repeat is bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Longest value a bounded pattern can produce (a quoted password); the stream window must cover it.
MAX_BOUNDED_MATCH: Final = 256

_ANCHORED_SECRET_VALUE = r"[A-Za-z0-9_\-]"

# The digit pass: one search for [0-9] drives IBANs (letters looked up behind), cards, SSNs, IPv4 and
# national phone numbers. Group names say which check confirms the candidate.
DIGITS: Final = re.compile(
    r"""
    [0-9](?<![0-9][0-9])(?=[0-9\ ().\-/])  # cheap exits first: most digits start no candidate
    (?:
        (?<![0-9A-Za-z_.+\-][0-9])(?<![0-9][\ \-][0-9])
        (?:
            (?P<card>[0-9]{12,18}(?![0-9])
                |[0-9]{3}(?P<s1>[\ \-])[0-9]{4}(?P=s1)[0-9]{4}(?P=s1)[0-9]{1,4}(?:(?P=s1)[0-9]{1,3})?
                    (?![0-9])(?!(?P=s1)[0-9]{4})
                |[0-9]{3}(?P<s2>[\ \-])[0-9]{6}(?P=s2)[0-9]{4,5}(?![0-9]))
        |   (?P<ssn>[0-9]{2}-[0-9]{2}-[0-9]{4})(?![0-9\-])
        |   (?P<ipv4>[0-9]{0,2}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})(?![0-9]|\.[0-9])
        |   (?![0-9]{3}-[0-9]{2}-[0-9]{2}(?![0-9]))  # an ISO date, not a phone
            (?P<phone>[0-9\ ().\-/]{5,18}[0-9])(?![0-9])
        )
    |
        (?<=(?<![A-Za-z0-9])[A-Za-z]{2}[0-9])
        (?P<iban>[0-9](?:(?:\ [A-Za-z0-9]{4}){2,8}(?:\ [A-Za-z0-9]{1,3})?|[A-Za-z0-9]{11,30})(?![A-Za-z0-9]))
    )
    """,
    re.VERBOSE,
)

INTERNATIONAL_PHONE: Final = re.compile(r"\+(?<![A-Za-z0-9+]\+)[0-9][0-9 ().\-/]{5,20}[0-9](?![0-9])")

EMAIL_DOMAIN: Final = re.compile(
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9\-]|\.[A-Za-z0-9])"
)
# Applied to the reversed text before the "@", so the local part is found without scanning backwards.
EMAIL_LOCAL_REVERSED: Final = re.compile(r"[A-Za-z0-9._%+\-]{1,65}")
# File names such as icon@2x.png look like addresses; none of these is a real top-level domain.
NOT_TLDS: Final = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "pdf"})

IPV6_HINT: Final = re.compile(r":(?=[0-9A-Fa-f]{0,4}:)")
IPV6_TOKEN: Final = re.compile(r"[0-9A-Fa-f:]{2,39}(?:\.[0-9]{1,3}){0,3}")

US_PHONE_SHAPE: Final = re.compile(r"\(?[2-9][0-9]{2}\)?[ .\-]?[0-9]{3}[.\-][0-9]{4}")
PHONE_CONTEXT: Final = re.compile(
    r"(?<![a-z])(?:phone|tel|call|mobile|cell|fax|whatsapp|sms|text me|contact|reach me|dial|ring|"
    r"telefon|telephone|numero|número|tél|handy|hotline|landline)"
)
NOT_PHONE_CONTEXT: Final = re.compile(
    r"(?<![a-z])(?:order|invoice|sku|part|ref|tracking|account|acct|serial|isbn|id|item|model|batch|lot)\b|#"
)
VERSION_CONTEXT: Final = re.compile(r"(?:version|release|build|firmware|ver\.?)\s*$")


@dataclass(frozen=True, slots=True)
class Anchored:
    """A pattern run only when its gate fired; `value` names the group holding the value.

    Secrets are gated by a group name of SECRET_GATE, keywords by substrings of the lowercased text.
    """

    type: str
    gate: tuple[str, ...]
    regex: re.Pattern[str]
    value: str | int = 0


def _secret(type_: str, gate: str, pattern: str) -> Anchored:
    return Anchored(type_, (gate,), re.compile(pattern))


# One scan for all secret prefixes: it stops only on "_", "-", ":", "A" or "J" (each branch starts
# with its literal, so `re` skips other characters in C) and looks around for the rest of the prefix.
SECRET_GATE: Final = re.compile(
    r"""
        _(?:(?<=gh[pousr]_)(?P<github>)|(?<=github_pat_)(?P<github_pat>)|(?<=[sr]k_live_|[sr]k_test_)(?P<stripe>))
    |   -(?:(?<=xox[abprse]-)(?P<slack>)|(?<=xapp-)(?P<slack_app>)|(?<=sk-)(?P<sk>)|(?=----BEGIN\ )(?P<pem>))
    |   :(?=//)(?<=[A-Za-z0-9]:)(?P<url>)
    |   A(?:(?=KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA|BIA|CCA)(?P<aws>)|(?=Iza)(?P<google>))
    |   J(?<=eyJ)(?P<jwt>)
    """,
    re.VERBOSE,
)
_END = r"(?![A-Za-z0-9_\-])"

SECRETS: Final[tuple[Anchored, ...]] = (
    _secret(
        "aws_access_key",
        "aws",
        r"A(?<![A-Za-z0-9]A)(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA|BIA|CCA)[A-Z2-7]{16}(?![A-Za-z0-9])",
    ),
    _secret("github_token", "github", rf"gh(?<!\w..)[pousr]_[A-Za-z0-9]{{36}}{_END}"),
    _secret("github_token", "github_pat", rf"github_pat_(?<!\w.{{11}})[A-Za-z0-9]{{22}}_[A-Za-z0-9]{{59}}{_END}"),
    _secret("slack_token", "slack", rf"xox(?<!\w...)[abprse]-[0-9A-Za-z\-]{{10,250}}{_END}"),
    _secret("slack_token", "slack_app", rf"xapp-(?<!\w.....)[0-9]-[0-9A-Za-z\-]{{10,250}}{_END}"),
    _secret(
        "slack_token",
        "url",
        r"hooks\.slack\.com/services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{24}(?![A-Za-z0-9])",
    ),
    _secret(
        "anthropic_key",
        "sk",
        rf"sk-ant-(?<!\w.......)(?:api|admin|sid)[0-9]{{2}}-{_ANCHORED_SECRET_VALUE}{{32,200}}{_END}",
    ),
    _secret(
        "openai_key",
        "sk",
        rf"sk-(?<![\w\-]...)(?!ant-)(?:(?:proj|svcacct|admin|None)-{_ANCHORED_SECRET_VALUE}{{32,250}}|[A-Za-z0-9]{{48}}){_END}",
    ),
    _secret("google_api_key", "google", rf"AIza(?<![\w\-]....){_ANCHORED_SECRET_VALUE}{{35}}{_END}"),
    _secret(
        "stripe_key",
        "stripe",
        r"[sr]k_(?<!\w...)(?:live|test)_[0-9A-Za-z]{24,247}(?![0-9A-Za-z])",
    ),
    _secret(
        "jwt",
        "jwt",
        rf"eyJ(?<![\w\-]...)[A-Za-z0-9_\-]{{5,2000}}\.[A-Za-z0-9_\-]{{2,8000}}\.[A-Za-z0-9_\-]{{0,2000}}{_END}",
    ),
    _secret(
        "private_key",
        "pem",
        r"-----BEGIN (?P<label>[A-Z0-9]+(?: [A-Z0-9]+){0,3} )?PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]{0,16384}?-----END (?P=label)?PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,\-\\]{0,16384})",
    ),
    Anchored(
        "url_credentials",
        ("url",),
        re.compile(r"://(?<=[A-Za-z0-9]://)(?P<v>[^\s:/?#@\[\]\"'<>]{1,128}:[^\s/?#@\"'<>]{1,256})@(?=[A-Za-z0-9\[])"),
        "v",
    ),
)

_ASSIGN = r"[\"']?[ \t]*(?:=>|:=|[:=])[ \t]*"
_VALUE = r"(?:\"(?P<dq>[^\"\n]{1,256})\"|'(?P<sq>[^'\n]{1,256})'|(?P<bare>[^\s\"'`,;&)}\]<>]{1,256}))"

# Searched in lowercased text: keyword, assignment, then a value (the finding is the value only).
# Gates are few short substrings because each `in` over the whole text costs about 0.5 µs per KB.
_PASSWORDS = tuple(
    Anchored("password", gate, re.compile(keyword + r"(?:[_\-]?(?:key|value|token))?(?![a-z0-9])" + _ASSIGN + _VALUE))
    for gate, keyword in (
        (("pass",), "pass(?:word|wd|phrase)"),
        (("pwd",), "pwd"),
        (("secret",), "secret"),
        (("api",), "api[_\\-]?key"),
        (("token",), "a(?:ccess|uth)[_\\-]?token"),
    )
)
KEYWORDS: Final[tuple[Anchored, ...]] = (
    *_PASSWORDS,
    Anchored(
        "aws_secret_key",
        ("secret",),
        re.compile(r"secret(?P<kw>_?(?:access_?)?key)" + _ASSIGN + r"[\"']?(?P<v>[a-z0-9/+]{40})(?![a-z0-9/+=])"),
        "v",
    ),
    Anchored(
        "ssn",
        ("ssn", "social"),
        re.compile(
            r"(?:ssn|social security)(?<![a-z]ssn)(?<![a-z]social security)"
            r"[a-z. ]{0,8}[\s:#=\-]{0,4}(?:is )?(?P<v>[0-9]{3}[ \-]?[0-9]{2}[ \-]?[0-9]{4})(?![0-9])"
        ),
        "v",
    ),
)

# Values of password-style assignments that are types, placeholders or references, not secrets.
NOT_PASSWORDS: Final = frozenset(
    {
        "str",
        "string",
        "bytes",
        "int",
        "bool",
        "none",
        "null",
        "nil",
        "true",
        "false",
        "undefined",
        "secretstr",
        "optional",
        "required",
        "text",
        "password",
        "secret",
        "string;",
        "str)",
        "str,",
        "hidden",
    }
)
PLACEHOLDER_VALUE: Final = re.compile(r"[\[<{$%*=(/~]|x{3,}$|\.{3}")

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

# Unicode-aware (`\w`): addresses with accented or non-Latin letters count too (RFC 6531).
EMAIL_DOMAIN: Final = re.compile(
    r"@(?:[^\W_](?:[\w\-]{0,61}[^\W_])?\.){1,8}[^\W\d_]{2,24}(?![\w\-]|\.[^\W_])"
)
# Applied to the reversed text before the "@", so the local part is found without scanning backwards.
EMAIL_LOCAL_REVERSED: Final = re.compile(r"[\w.%+\-]{1,65}")
# File names such as icon@2x.png look like addresses; none of these is a real top-level domain.
NOT_TLDS: Final = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "pdf"})
# "git@github.com:org/repo.git" and "ssh git@host" name an SSH login, not a mailbox.
NOT_EMAIL_LOCALS: Final = frozenset({"git"})
SSH_COMMAND: Final = re.compile(
    r"(?<![\w\-])(?:ssh|scp|sftp|rsync|mosh|ssh-copy-id)(?: +-{1,2}[\w=.\-]+(?: +\d+)?)* +\Z"
)

# What every IPv6 address holds: "::", or six colons with at most four hex digits between them (eight
# groups, or six and an IPv4 address). A text without it is not searched for one.
IPV6_GATE: Final = re.compile(r":(?::|(?:[0-9A-Fa-f]{0,4}:){5})")
IPV6_HINT: Final = re.compile(r":(?=[0-9A-Fa-f]{0,4}:)")
IPV6_TOKEN: Final = re.compile(r"[0-9A-Fa-f:]{2,39}(?:\.[0-9]{1,3}){0,3}(?:%[A-Za-z0-9]{1,15})?")
# Words that say a short form such as "fe80::1" is an address (searched just before it, lowercased).
IPV6_CONTEXT: Final = re.compile(
    r"(?<![a-z])(?:ip|ipv6|ip6|address|addr|host|server|client|from|to|via|connect(?:ed|ing)?|listen(?:ing)?|bind|"
    r"gateway|gw|dns|nameserver|ping|route|inet6|src|dst|peer|remote|local|loopback|node)(?![a-z])"
)

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


# Where a secret may start, by the character each prefix is found from ("_", "-", ":", "A" or "J"), and
# the rest of its prefixes looked for around it. In a long text, one pattern per character: `re` skips
# to each as to a literal (the one pattern's first class it tests character by character, ~10x slower).
_GATE_PATTERNS: Final = (
    r"_(?:(?<=gh[pousr]_)(?P<github>)|(?<=github_pat_)(?P<github_pat>)|(?<=[sr]k_live_|[sr]k_test_)(?P<stripe>))",
    r"-(?:(?<=xox[abprse]-)(?P<slack>)|(?<=xapp-)(?P<slack_app>)|(?<=sk-)(?P<sk>)|(?=----BEGIN\ )(?P<pem>))",
    r":(?=//)(?<=[A-Za-z0-9]:)(?P<url>)",
    r"A(?:(?=KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA|BIA|CCA)(?P<aws>)|(?=Iza)(?P<google>))",
    r"J(?<=eyJ)(?P<jwt>)",
)
SECRET_GATE: Final = re.compile("|".join(_GATE_PATTERNS), re.VERBOSE)
SECRET_GATES: Final = tuple((pattern[0], re.compile(pattern, re.VERBOSE)) for pattern in _GATE_PATTERNS)
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

# Quotes may be escaped (`{\\"password\\": \\"x\\"}` inside a JSON string): the escape layer leaves them be.
_ASSIGN = r"\\?[\"']?[ \t]*(?:=>|:=|[:=])[ \t]*"
# "my password is Summer2024!": prose instead of an assignment (the value must then look like one).
_PROSE = r"(?P<prose>[ \t]+(?:is|was|will be|=)[ \t]*:?[ \t]+)"
_VALUE = (r"(?:\\?\"(?P<dq>[^\"\n\\]{1,256})\\?\"|\\?'(?P<sq>[^'\n\\]{1,256})\\?'"
          r"|(?P<bare>[^\s\"'`,;&)}\]<>\\]{1,256}))")

# Searched in lowercased text: keyword, assignment, then a value (the finding is the value only).
# Gates are few short substrings because each `in` over the whole text costs about 0.5 µs per KB.
_PASSWORDS = tuple(
    Anchored("password", gate, re.compile(
        keyword + r"(?:[_\-]?(?:key|value|token))?(?![a-z0-9])(?:" + _ASSIGN + "|" + _PROSE + ")" + _VALUE))
    for gate, keyword in (
        (("pass",), "pass(?:word|wd|phrase)"),
        (("pwd",), "pwd"),
        (("secret",), "secret"),
        (("api",), "api[_\\-]?key"),
        (("token",), "(?:a(?:ccess|uth)|private)[_\\-]?token"),
    )
)
# An HTTP credential written out: `Authorization: Bearer <token>`, `-H "authorization: basic ..."`, a
# JSON header map, or a bare `Bearer <token>`. The value is the credential, the scheme stays readable.
_TOKEN68 = r"[a-z0-9._~+/\-]{8,2048}=*"
AUTH_HEADER: Final = Anchored(
    "auth_header",
    ("auth",),
    re.compile(
        r"(?<![a-z0-9_\-])(?:proxy-)?authori[sz]ation[\"']?[ \t]*[:=][ \t]*[\"']?"
        r"(?:(?P<scheme>basic|bearer|token|digest|negotiate|ntlm|apikey|api-key|sso-key|key|jwt)[ \t]+)?"
        rf"(?P<v>{_TOKEN68})(?![a-z0-9._~+/=\-])"
    ),
    "v",
)
BEARER: Final = Anchored(
    "auth_header",
    ("bearer",),
    re.compile(rf"(?<![a-z0-9_\-])bearer[ \t]+(?P<v>{_TOKEN68})(?![a-z0-9._~+/=\-])"),
    "v",
)
# `curl -u user:password`: the same pair a URL's credentials hold.
CURL_USER: Final = Anchored(
    "url_credentials",
    ("curl",),
    re.compile(r"(?<![a-z])curl\b[^\n|;&]{0,200}?[ \t](?:-u|--user)(?:[ \t]+|=)[\"']?"
               r"(?P<v>[^\s:\"']{1,128}:[^\s\"']{1,256}?)[\"']?(?=\s|\Z)"),
    "v",
)
KEYWORDS: Final[tuple[Anchored, ...]] = (
    *_PASSWORDS,
    AUTH_HEADER,
    BEARER,
    CURL_USER,
    Anchored(
        "aws_secret_key",
        ("secret",),
        re.compile(r"secret(?P<kw>[ _\-]?(?:access[ _\-]?)?key)" + _ASSIGN
                   + r"[\"']?(?P<v>[a-z0-9/+]{40})(?![a-z0-9/+=])"),
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

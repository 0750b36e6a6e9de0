"""`llm-policy-proxy keys create|list|revoke`: issue, show and revoke keys in the keys file.

A new key is printed once, on stdout alone; only its SHA-256 is stored. A running proxy picks the
change up within `auth.keys_reload_interval_s` (or at once on SIGHUP).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import secrets
import sys
from pathlib import Path
from typing import Any

import orjson

from proxy.config import ConfigError, load_config

from .config import ApiKey
from .digest import hash_key
from .keyfile import KeyFileError, locked, read_keys, write_keys
from .keyring import describe, issued

KEY_PREFIX = "llmpp-"
_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def add_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="issue, list and revoke API keys in the keys file")
    sub = keys.add_subparsers(dest="keys_command", required=True)
    create = sub.add_parser("create", help="issue a key: printed once, only its hash is stored")
    list_ = sub.add_parser("list", help="every key with its owner, expiry and status")
    revoke = sub.add_parser("revoke", help="disable a key (kept in the file, refused from the next reload)")
    for parser in (create, list_, revoke):
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--config", type=Path, help="the proxy's config (its auth.keys_file)")
        where.add_argument("--file", type=Path, help="the keys file itself")
    create.add_argument("--app", required=True)
    create.add_argument("--team", required=True)
    create.add_argument("--user")
    create.add_argument("--id", dest="key_id", help="default: k- and 8 random hex digits")
    create.add_argument("--expires", help="a duration (30m, 12h, 90d, 4w) or an ISO 8601 time")
    create.add_argument("--owner", help="who to ask about this key")
    create.add_argument("--description")
    create.add_argument("--admin", action="store_true", help="may call the /admin routes")
    list_.add_argument("--json", action="store_true")
    revoke.add_argument("key_id")


def run(args: argparse.Namespace) -> int:
    try:
        path, static = keys_location(args)
        if args.keys_command == "create":
            return create(path, static, args)
        if args.keys_command == "revoke":
            return revoke(path, args.key_id)
        return show(path, static, as_json=args.json)
    except (ConfigError, KeyFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def keys_location(args: argparse.Namespace) -> tuple[Path, tuple[ApiKey, ...]]:
    if args.file is not None:
        return args.file, ()
    config = load_config(args.config)
    if config.auth.keys_file is None:
        raise ConfigError(f"{args.config}: auth.keys_file is not set; add it to manage keys with this command")
    return config.path(config.auth.keys_file), config.auth.keys


def expiry(text: str | None, now: dt.datetime) -> dt.datetime | None:
    if text is None:
        return None
    match = _DURATION.match(text)
    if match:
        return now + dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def create(path: Path, static: tuple[ApiKey, ...], args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with locked(path):
        existing = read_keys(path)
        taken = {key.id for key in (*static, *existing)}
        key_id = args.key_id or f"k-{secrets.token_hex(4)}"
        if key_id in taken:
            raise ValueError(f"key id {key_id} is already used")
        key = ApiKey(id=key_id, sha256=hash_key(secret), app=args.app, team=args.team, user=args.user,
                     admin=args.admin, expires_at=expiry(args.expires, now), owner=args.owner,
                     description=args.description, created_at=now)
        write_keys(path, (*existing, key))
    print(secret)
    expires = key.expires_at.isoformat() if key.expires_at else "never"
    print(f"created key {key.id} for app {key.app}, team {key.team} (expires: {expires}) in {path}; "
          "the key is shown only this once", file=sys.stderr)
    return 0


def revoke(path: Path, key_id: str) -> int:
    with locked(path):
        keys = read_keys(path)
        if not any(key.id == key_id for key in keys):
            raise ValueError(f"no key {key_id} in {path} (keys in the config file are revoked by editing it)")
        write_keys(path, tuple(key.model_copy(update={"disabled": True}) if key.id == key_id else key
                               for key in keys))
    print(f"revoked key {key_id}; a running proxy refuses it from its next reload", file=sys.stderr)
    return 0


def show(path: Path, static: tuple[ApiKey, ...], *, as_json: bool) -> int:
    now = dt.datetime.now(dt.UTC).timestamp()
    keys = [issued(key, "config") for key in static] + [issued(key, "file") for key in read_keys(path)]
    rows = [describe(key, now) for key in keys]
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    columns = ("id", "app", "team", "user", "status", "expires_at", "owner", "origin", "description")
    table = [columns] + [tuple("" if row.get(c) is None else str(row[c]) for c in columns) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0

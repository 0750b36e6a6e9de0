"""The keys file: API keys with a lifecycle, stored as SHA-256 hashes in YAML (or JSON by its suffix).

Writes are atomic (a new file renamed over the old, so the proxy never reads half a file) and
serialised by an advisory lock beside it, so two `keys create` runs cannot lose each other's key.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from proxy.config import _describe

from .config import ApiKey

Signature = tuple[int, int, int]


class KeyFileError(Exception):
    """The keys file cannot be read or is invalid; the message names the file and the bad key."""


class KeysDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: tuple[ApiKey, ...] = ()


def signature(path: Path) -> Signature | None:
    """What changes when the file does: an atomic replace changes the inode, an edit in place the mtime."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def read_keys(path: Path) -> tuple[ApiKey, ...]:
    """The file's keys; a missing file holds none (nobody is let in by it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: {exc}") from exc
    try:
        document = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise KeyFileError(f"{path}: not valid YAML or JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise KeyFileError(f"{path}: expected a mapping with a `keys` list")
    try:
        keys = KeysDocument.model_validate(document).keys
    except ValidationError as exc:
        raise KeyFileError(f"{path}: {_describe(exc)}") from None
    check_unique(keys, str(path))
    return keys


def check_unique(keys: Sequence[ApiKey], where: str) -> None:
    for attribute in ("id", "sha256"):
        seen: set[str] = set()
        for key in keys:
            value = getattr(key, attribute)
            if value in seen:
                shown = value if attribute == "id" else f"of key {key.id}"
                raise KeyFileError(f"{where}: duplicate {attribute} {shown}")
            seen.add(value)


def render(path: Path, keys: Sequence[ApiKey]) -> bytes:
    document: dict[str, Any] = {"keys": [key.model_dump(mode="json", exclude_defaults=True) for key in keys]}
    if path.suffix.lower() == ".json":
        return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode()


def write_keys(path: Path, keys: Sequence[ApiKey]) -> None:
    check_unique(keys, str(path))
    data = render(path, keys)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the file's advisory write lock (on `<file>.lock`) for a read-modify-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

"""Reads a policy folder into memory: Rego modules, merged data documents and a revision.

Layout: `*.rego` anywhere (except `schema/`), data files (`.json`, `.yaml`, `.yml`) under `data/`,
each an object whose top-level keys land at the root of `data`; an optional `.manifest` (OPA bundle
manifest) supplies the revision, otherwise it is a hash of every file's content.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from proxy.policy.errors import PolicyCompileError

DATA_SUFFIXES = (".json", ".yaml", ".yml")
TEST_SUFFIX = "_test.rego"


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    root: Path
    modules: tuple[tuple[str, str], ...]
    data: Mapping[str, Any]
    revision: str
    # The `*_test.rego` modules (never served: their inputs join the sample a version is checked on).
    tests: tuple[tuple[str, str], ...] = ()
    # sha256 of every file's content: what a version is, even when a manifest names its revision.
    digest: str = ""


def default_policy_dir() -> Path:
    """The shipped policies: `policies/` at the repository root (also copied so into the image)."""
    return Path(__file__).resolve().parents[2] / "policies"


def policy_files(root: Path) -> list[Path]:
    """Every file that is part of a policy version, in a stable order (also what the reloader watches)."""
    if not root.is_dir():
        raise PolicyCompileError(f"{root}: policy directory not found")
    rego = [p for p in root.rglob("*.rego") if _visible(p, root) and "schema" not in p.relative_to(root).parts[:-1]]
    data_dir = root / "data"
    data = [p for p in data_dir.rglob("*") if p.suffix in DATA_SUFFIXES and _visible(p, root)] \
        if data_dir.is_dir() else []
    manifest = [root / ".manifest"] if (root / ".manifest").is_file() else []
    return sorted(rego + data + manifest)


def _visible(path: Path, root: Path) -> bool:
    # A mounted ConfigMap keeps every file twice: the visible links and a hidden ..<timestamp> folder.
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def load_bundle(root: Path, *, include_tests: bool = False) -> PolicyBundle:
    files = policy_files(root)
    contents = {path: _read(path) for path in files}
    rego = [(str(path), text) for path, text in contents.items() if path.suffix == ".rego"]
    tests = tuple((path, text) for path, text in rego if path.endswith(TEST_SUFFIX))
    modules = tuple(rego) if include_tests else tuple(m for m in rego if m not in tests)
    data: dict[str, Any] = {}
    owners: dict[tuple[str, ...], Path] = {}
    for path, text in contents.items():
        if path.suffix in DATA_SUFFIXES:
            _merge(data, _parse_data(path, text), (), path, owners)
    digest = _digest(root, contents)
    return PolicyBundle(root, modules, data, _revision(root, contents, digest), tests, digest)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyCompileError(f"{path}: cannot read: {exc}") from exc


def _parse_data(path: Path, text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise PolicyCompileError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise PolicyCompileError(f"{where}: invalid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise PolicyCompileError(f"{path}: a data file must hold an object keyed by namespace")
    return doc


def _merge(
    into: dict[str, Any],
    doc: dict[str, Any],
    prefix: tuple[str, ...],
    path: Path,
    owners: dict[tuple[str, ...], Path],
) -> None:
    # Objects merge across files like OPA's loader does; any other value defined twice is a conflict.
    for key, value in doc.items():
        here = (*prefix, key)
        if key not in into:
            into[key] = value
            owners[here] = path
        elif isinstance(into[key], dict) and isinstance(value, dict):
            _merge(into[key], value, here, path, owners)
        else:
            other = owners.get(here, path)
            raise PolicyCompileError(f"{path}: data.{'.'.join(here)} is also defined in {other}")


def _revision(root: Path, contents: dict[Path, str], digest: str) -> str:
    manifest = contents.get(root / ".manifest")
    if manifest is not None:
        try:
            revision = json.loads(manifest).get("revision")
        except (json.JSONDecodeError, AttributeError) as exc:
            raise PolicyCompileError(f"{root / '.manifest'}: invalid manifest") from exc
        if isinstance(revision, str) and revision:
            return revision
    return "sha256:" + digest[:12]


def _digest(root: Path, contents: dict[Path, str]) -> str:
    digest = hashlib.sha256()
    for path, text in contents.items():
        digest.update(str(path.relative_to(root)).encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def declares(modules: Sequence[tuple[str, str]], package: str) -> bool:
    """Whether any module (name, source) is in `package`: a cheap textual test, made before the version
    is compiled; the compiled version's AST then says whether a rule in it is defined."""
    return any(_package_line(package).search(source) for _, source in modules)


@functools.cache
def _package_line(package: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*package\s+{re.escape(package)}\s*(#.*)?$", re.MULTILINE)

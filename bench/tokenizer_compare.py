"""Memory and speed of the tokenizers we could count with: tiktoken (what the proxy uses, loaded from
the verified vocab files) and bpe-openai's own Rust tokenizer (whose wheel ships those files).

    .venv/bin/python bench/tokenizer_compare.py

Each variant runs in a fresh interpreter: RSS added by the import and by building one encoding (VmRSS
before and after, heap trimmed as the proxy does; the tiktoken import includes the proxy modules that
load the vocab), the peak above the import while the encoding is built (VmHWM), and µs per KB
counting the tokens_bench corpus (best of 20).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
sys.path[:0] = [{repo!r}, {bench!r}]
from tokens_bench import corpus
def rss(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
text = corpus()
kb = len(text.encode()) / 1024
start = rss()
if {variant!r} == "bpe-openai":
    from bpe_openai import _bindings
    imported = rss()
    count = _bindings.tokenizer_for_encoding({encoding!r}).count
else:
    import tiktoken
    from proxy.tokens.vocab import build_encoding, spec_for
    from proxy.components import release_freed_memory
    imported = rss()
    encoding = build_encoding(spec_for({encoding!r}))
    release_freed_memory()
    count = lambda s: len(encoding.encode_ordinary(s))
loaded = rss()
peak = rss("VmHWM")
tokens = count(text)
best = float("inf")
for _ in range(20):
    started = time.perf_counter()
    count(text)
    best = min(best, time.perf_counter() - started)
print(json.dumps({{"import_mb": round(imported - start, 1), "load_mb": round(loaded - imported, 1),
                  "peak_mb": round(peak - imported, 1),
                  "us_per_kb": round(best / kb * 1e6, 1), "tokens": tokens}}))
"""


def measure(variant: str, encoding: str) -> dict[str, float]:
    code = CHILD.format(repo=str(REPO), bench=str(REPO / "bench"), variant=variant, encoding=encoding)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    print("| tokenizer | encoding | RSS of the import MB | RSS of the encoding MB | peak while building MB "
          "| µs/KB | tokens |")
    print("|---|---|---|---|---|---|---|")
    for variant in ("tiktoken", "bpe-openai"):
        for encoding in ("o200k_base", "cl100k_base"):
            r = measure(variant, encoding)
            print(f"| {variant} | {encoding} | {r['import_mb']} | {r['load_mb']} | {r['peak_mb']} | {r['us_per_kb']} "
                  f"| {r['tokens']} |", flush=True)


if __name__ == "__main__":
    main()

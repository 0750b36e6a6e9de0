"""Scanner cost in µs per KB (CPU time, best of 7) at 1, 8, 64 and 100 KB of mixed prose, code and JSON,
with and without PII, and the median of those eight figures for each kind of text (the target is a
median: issue 18).

Two kinds of text: ASCII (the figure the benchmark always gave), and the same with a quarter of its
snippets non-ASCII prose (curly quotes, dashes, accents, NBSP), escaped JSON, a percent-encoded query
and HTML entities, so normalisation and the decoded layer have work. PII values are drawn fresh for each
occurrence (validators remember candidates: repeated values would flatter the figure); --repeat-values
uses the same five strings every time, as the benchmark did before. --rounds N measures the table N
times and reports each figure's median (a shared machine); the load average is printed before and after.

python bench/pii_bench.py [--rounds N] [--repeat-values]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time

from stdnum import luhn

from proxy.pii import Scanner

SIZES = (1_000, 8_000, 64_000, 100_000)
WORDS = [
    "the",
    "quarterly",
    "report",
    "shows",
    "revenue",
    "grew",
    "while",
    "support",
    "tickets",
    "fell",
    "please",
    "summarize",
    "the",
    "customer",
    "feedback",
    "and",
    "draft",
    "a",
    "reply",
    "for",
    "the",
    "product",
    "team",
    "about",
    "release",
    "2.14",
    "and",
    "the",
    "new",
    "dashboard",
]
SNIPPETS = (
    'def handler(event):\n    return {"status": 200, "items": [1, 2, 3]}\n',
    '{"id": 48213, "created": "2024-05-01T10:22:31Z", "tags": ["a", "b"], "ok": true}\n',
    "Meeting moved to 14:30 in room 4B; see ticket OPS-3312 and commit 9f2c1e7.\n",
)
UNICODE_SNIPPETS = (
    "Zoë said “ship it” — the café\u00a0team agreed; budget €1\u00a0200 net.\n",
    '{"name": "search", "arguments": "{\\"q\\": \\"weekly report\\", \\"limit\\": 20}"}\n',
    "GET /search?q=quarterly%20report&page=2 HTTP/1.1\n",
    "<p>Tom &amp; Jerry &#8212; notes on the “Q3” plan</p>\n",
)
PII = (
    "Contact maria.garcia@example.com or +44 20 7946 0958. ",
    "Card 4111 1111 1111 1111 exp 12/27. ",
    "Wire to DE89 3704 0044 0532 0130 00 today. ",
    "Login from 203.0.113.7 with password=Tr0ub4dor3x. ",
    "Use ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A" + " for CI. ",
)


def fresh_pii(rng: random.Random) -> str:
    """One of the PII pieces with new digits: a valid card, phone, IBAN and address each time."""
    kind = rng.randrange(5)
    if kind == 0:
        return f"Contact user{rng.randrange(10**6)}@example.com or +44 20 7946 {rng.randrange(1000):03d}1. "
    if kind == 1:
        body = "4" + "".join(rng.choice("0123456789") for _ in range(14))
        number = body + luhn.calc_check_digit(body)
        return f"Card {' '.join(number[i:i + 4] for i in range(0, 16, 4))} exp 12/27. "
    if kind == 2:
        bban = "".join(rng.choice("0123456789") for _ in range(18))
        return f"Wire to DE{98 - int(bban + '131400') % 97:02d} {bban[:4]} {bban[4:8]} {bban[8:12]} {bban[12:16]} " \
               f"{bban[16:]} today. "
    if kind == 3:
        ip = f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        return f"Login from {ip} with password=Tr0ub{rng.randrange(99)}x. "
    return "Use ghp_" + "".join(rng.choice("aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A") for _ in range(36)) + " for CI. "


def mixed_text(size: int, with_pii: bool, rng: random.Random, unicode: bool = False) -> str:
    pick = (lambda: rng.choice(PII)) if "--repeat-values" in sys.argv[1:] else (lambda: fresh_pii(rng))
    parts: list[str] = [pick()] if with_pii else []
    length = len(parts[0]) if parts else 0
    while length < size:
        roll = rng.random()
        if with_pii and roll < 0.006:
            piece = pick()  # about one value per KB, already a PII-heavy prompt
        elif roll < 0.06:
            piece = rng.choice(UNICODE_SNIPPETS if unicode and rng.random() < 0.25 else SNIPPETS)
        else:
            piece = rng.choice(WORDS) + (" " if rng.random() < 0.9 else ". ")
        parts.append(piece)
        length += len(piece)
    return "".join(parts)[:size]


def per_kb(scanner: Scanner, text: str) -> tuple[float, int]:
    runs = max(5, 400_000 // len(text))
    best = float("inf")
    found = scanner.find(text)
    for _ in range(7):
        start = time.process_time()
        for _ in range(runs):
            found = scanner.find(text)
        best = min(best, (time.process_time() - start) / runs)
    return best * 1e6 / (len(text) / 1000), len(found)


def iban_ab(rounds: int = 5) -> None:
    """The same scans with `validators.is_iban` swapped for stdnum's own check, rounds interleaved."""
    from stdnum import iban

    from proxy.pii import validators

    scanner, rng = Scanner(), random.Random(1)
    texts = {}
    for size in SIZES:
        mixed_text(size, False, rng)  # the same texts as main() draws
        texts[size] = mixed_text(size, True, rng)
    variants = {"stdnum.iban.is_valid": lambda value: bool(iban.is_valid(value)),
                "validators.is_iban": validators.is_iban}
    best: dict[str, dict[int, float]] = {name: {} for name in variants}
    for _ in range(rounds):
        for name, check in variants.items():
            validators.is_iban = check  # detectors look it up at each call
            for size, text in texts.items():
                runs = max(5, 200_000 // size)
                start = time.process_time()
                for _ in range(runs):
                    scanner.find(text)
                cost = (time.process_time() - start) / runs * 1e6 / (size / 1000)
                best[name][size] = min(cost, best[name].get(size, float("inf")))
    validators.is_iban = variants["validators.is_iban"]
    for name, costs in best.items():
        print(f"{name:22s} " + "  ".join(f"{size // 1000}KB {cost:.1f}" for size, cost in costs.items()) + "  µs/KB")


def table(scanner: Scanner) -> dict[tuple[int, bool, bool], tuple[float, int]]:
    """(size, unicode, with PII) -> (µs/KB, matches), the texts drawn in the same order every time."""
    rng = random.Random(1)
    costs = {}
    for size in SIZES:
        for unicode in (False, True):
            costs[(size, unicode, False)] = per_kb(scanner, mixed_text(size, False, rng, unicode))
            costs[(size, unicode, True)] = per_kb(scanner, mixed_text(size, True, rng, unicode))
    return costs


def main() -> None:
    if "--iban-ab" in sys.argv[1:]:
        iban_ab()
        return
    args = sys.argv[1:]
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 1
    print(f"load average {os.getloadavg()[0]:.2f}, {rounds} round(s)")
    scanner = Scanner()
    runs = [table(scanner) for _ in range(rounds)]
    cost = {key: statistics.median(run[key][0] for run in runs) for key in runs[0]}
    print(f"{'':8} {'ASCII text':^25} {'with Unicode and encodings':^28}")
    columns = f"{'no PII':>8} {'with PII':>8} {'matches':>7}"
    print(f"{'size':>8} {columns} {columns}   (µs/KB)")
    for size in SIZES:
        row = [f"{size // 1000:>6}KB"]
        for unicode in (False, True):
            row.append(f"{cost[(size, unicode, False)]:8.1f} {cost[(size, unicode, True)]:8.1f} "
                       f"{runs[0][(size, unicode, True)][1]:7d}")
        print(" ".join(row))
    medians = [statistics.median(v for (_, unicode, _), v in cost.items() if unicode is kind) for kind in (False, True)]
    print(f"{'median':>8} {medians[0]:17.1f} {'':7} {medians[1]:17.1f}")
    # What a streamed answer pays per delta: the held tail plus 64 characters of context, mostly prose.
    sentence = "The quarterly report covers revenue, churn and hiring plans across all regions. The quarterly"
    per_call = statistics.median(per_kb(scanner, sentence)[0] for _ in range(rounds)) * len(sentence) / 1000
    print(f"a {len(sentence)}-character sentence (one streamed delta's scan): {per_call:.1f} µs per scan")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

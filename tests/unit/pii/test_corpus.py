"""Precision and recall per type over the labelled corpus (tests/fixtures/pii/corpus.jsonl)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from proxy.pii import CATEGORIES, Scanner

CORPUS = Path(__file__).parents[2] / "fixtures" / "pii" / "corpus.jsonl"
CHECKSUMMED = ("email", "phone", "card", "ssn", "iban", "ip")

Span = tuple[str, int, int]


@pytest.fixture(scope="module")
def scores() -> tuple[Counter[str], Counter[str], Counter[str], list[str]]:
    scanner = Scanner()
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    errors: list[str] = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        text = row["text"]
        expected: set[Span] = {(s["type"], s["start"], s["end"]) for s in row["spans"]}
        found: set[Span] = {(m.type, m.start, m.end) for m in scanner.find(text)}
        for type_, start, end in found - expected:
            fp[type_] += 1
            errors.append(f"FP {type_} {text[start:end]!r} in {text[:80]!r}")
        for type_, start, end in expected - found:
            fn[type_] += 1
            errors.append(f"FN {type_} {text[start:end]!r} in {text[:80]!r}")
        for type_, _, _ in found & expected:
            tp[type_] += 1
    return tp, fp, fn, errors


def table(tp: Counter[str], fp: Counter[str], fn: Counter[str]) -> str:
    lines = [f"{'type':16} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}"]
    for type_ in CATEGORIES:
        found, expected = tp[type_] + fp[type_], tp[type_] + fn[type_]
        precision = tp[type_] / found if found else 1.0
        recall = tp[type_] / expected if expected else 1.0
        lines.append(f"{type_:16} {tp[type_]:4} {fp[type_]:4} {fn[type_]:4} {precision:9.3f} {recall:7.3f}")
    total_tp, total_fp = sum(tp.values()), sum(fp.values())
    lines.append(f"{'all':16} {total_tp:4} {total_fp:4} {sum(fn.values()):4} {total_tp / (total_tp + total_fp):9.3f}")
    return "\n".join(lines)


def test_corpus_is_large_enough() -> None:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    positives = [r for r in rows if r["spans"]]
    assert len(positives) >= 300
    assert len(rows) - len(positives) >= 300
    assert {s["type"] for r in positives for s in r["spans"]} == set(CATEGORIES)


def test_precision_and_recall_meet_targets(scores: tuple[Counter[str], Counter[str], Counter[str], list[str]]) -> None:
    tp, fp, fn, errors = scores
    report = table(tp, fp, fn) + "\n" + "\n".join(errors[:40])
    print("\n" + report)
    total_tp, total_fp = sum(tp.values()), sum(fp.values())
    assert total_tp / (total_tp + total_fp) >= 0.99, report
    for type_, category in CATEGORIES.items():
        expected = tp[type_] + fn[type_]
        floor = 0.99 if type_ in CHECKSUMMED else 0.95
        assert category == "pii" or type_ not in CHECKSUMMED
        assert tp[type_] / expected >= floor, f"{type_} recall below {floor}\n{report}"

"""Precision and recall per type over the labelled corpus (tests/fixtures/pii/corpus.jsonl), and recall
per evasion class. Print the tables with `pytest tests/unit/pii/test_corpus.py -s`.

A finding counts for a labelled value when it has the value's type and covers the whole value, reaching
at most SLACK characters past either end; every other finding is a false positive.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from proxy.pii import CATEGORIES, Scanner

CORPUS = Path(__file__).parents[2] / "fixtures" / "pii" / "corpus.jsonl"
SLACK = 8
TARGET = 0.95  # issue 18: per type, on realistic mixed text


@dataclass
class Scores:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    evasion_hits: Counter[str] = field(default_factory=Counter)
    evasion_total: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def precision(self, type_: str) -> float:
        found = self.tp[type_] + self.fp[type_]
        return self.tp[type_] / found if found else 1.0

    def recall(self, type_: str) -> float:
        expected = self.tp[type_] + self.fn[type_]
        return self.tp[type_] / expected if expected else 1.0


def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def scores() -> Scores:
    scanner, result = Scanner(), Scores()
    for row in rows():
        text = row["text"]
        found = scanner.find(text)
        used: set[int] = set()
        for span in row["spans"]:
            hit = next((i for i, m in enumerate(found) if i not in used and m.type == span["type"]
                        and span["start"] - SLACK <= m.start <= span["start"]
                        and span["end"] <= m.end <= span["end"] + SLACK), None)
            if row["kind"].startswith("evasion:"):
                result.evasion_total[row["kind"]] += 1
                result.evasion_hits[row["kind"]] += hit is not None
            if hit is None:
                result.fn[span["type"]] += 1
                result.errors.append(f"FN {span['type']} {span['value']!r} in {text[:90]!r}")
            else:
                used.add(hit)
                result.tp[span["type"]] += 1
        for i, m in enumerate(found):
            if i not in used:
                result.fp[m.type] += 1
                result.errors.append(f"FP {m.type} {text[m.start:m.end]!r} in {text[:90]!r}")
    return result


def report(s: Scores) -> str:
    lines = [f"{'type':16} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}"]
    for type_ in CATEGORIES:
        lines.append(f"{type_:16} {s.tp[type_]:4} {s.fp[type_]:4} {s.fn[type_]:4} {s.precision(type_):9.3f} "
                     f"{s.recall(type_):7.3f}")
    lines.append("")
    lines += [f"{kind:32} {s.evasion_hits[kind]:3}/{total}" for kind, total in sorted(s.evasion_total.items())]
    return "\n".join([*lines, "", *s.errors[:60]])


def test_corpus_is_broad_enough() -> None:
    corpus = rows()
    values = [span for row in corpus for span in row["spans"]]
    evasions = [row for row in corpus if row["kind"].startswith("evasion:")]
    negatives = [row for row in corpus if not row["spans"]]
    assert len(values) >= 300 and len(evasions) >= 60 and len(negatives) >= 100
    assert {span["type"] for span in values} == set(CATEGORIES)
    assert len({row["kind"] for row in evasions}) >= 20
    for row in corpus:
        for span in row["spans"]:
            assert row["text"][span["start"] : span["end"]] == span["value"]


def test_precision_and_recall_per_type_meet_the_target(scores: Scores) -> None:
    text = report(scores)
    print("\n" + text)
    for type_ in CATEGORIES:
        assert scores.precision(type_) >= TARGET, f"{type_} precision\n{text}"
        assert scores.recall(type_) >= TARGET, f"{type_} recall\n{text}"


def test_every_evasion_class_is_caught(scores: Scores) -> None:
    text = report(scores)
    for kind, total in scores.evasion_total.items():
        assert scores.evasion_hits[kind] >= total - 1, f"{kind}\n{text}"

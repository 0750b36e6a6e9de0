"""Broken policy versions, made by editing a copy of the shipped policies: one per way a version can fail
validation. Each edit returns a function that undoes it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

Undo = Callable[[], None]

# Nested loops of 10^9 steps in little memory: a rule body that never finishes.
SPIN = """
	every i in numbers.range(1, 1000) {
		every j in numbers.range(1, 1000) {
			every k in numbers.range(1, 1000) {
				i + j + k > 0
			}
		}
	}
"""


def _new_file(path: Path, text: str) -> Undo:
    path.write_text(text)
    return lambda: path.unlink()


def _edited(path: Path, old: str, new: str) -> Undo:
    original = path.read_text()
    assert old in original, f"{path} no longer contains {old!r}"
    path.write_text(original.replace(old, new))
    return lambda: path.write_text(original)


def syntax_error(root: Path) -> Undo:
    return _new_file(root / "zz_broken.rego", "package llm.broken\n\nthis is not rego {\n")


def invalid_json(root: Path) -> Undo:
    return _new_file(root / "data" / "zz_broken.json", '{"broken": {"key": 1,}}\n')


def decision_breaks_schema(root: Path) -> Undo:
    return _edited(root / "main.rego", '"allow": count(reasons) == 0', '"allow": "yes"')


def restore_line(root: Path) -> int:
    """Where the shipped llm.pii.restore is defined (what a conflicting definition is reported against)."""
    lines = (root / "pii.rego").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith("restore :="))


def decision_line(root: Path) -> int:
    """Where the shipped llm.main.decision is defined (what a contract break is reported against)."""
    lines = (root / "main.rego").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith("decision :="))


def conflicting_rules(root: Path) -> Undo:
    # The shipped llm.pii.restore plus a second definition with another value: both apply to email.
    return _new_file(root / "zz_conflict.rego", 'package llm.pii\n\nrestore := false if "email" in input.pii.types\n')


def never_finishes(root: Path) -> Undo:
    return _new_file(root / "zz_spin.rego", 'package llm.limits\n\ndeny contains {"code": "spun", "message": "x"} if {'
                     + SPIN + "\tfalse\n}\n")


def slow_for_one_user(root: Path, user: str) -> Undo:
    """Decides at once for everyone except `user` (no built-in sample has that user), for whom it spins."""
    rule = 'package llm.limits\n\ndeny contains {"code": "spun", "message": "x"} if {\n'
    return _new_file(root / "zz_slow_user.rego", rule + f"\tinput.request.user == {json.dumps(user)}" + SPIN
                     + "\tfalse\n}\n")


BROKEN: dict[str, Callable[[Path], Undo]] = {
    "syntax": syntax_error,
    "data": invalid_json,
    "contract": decision_breaks_schema,
    "conflict": conflicting_rules,
    "timeout": never_finishes,
}
# The reason each broken version must be rejected with (a label of llm_proxy_policy_versions_rejected_total).
REASONS = {"syntax": "compile", "data": "unreadable", "contract": "contract", "conflict": "conflict",
           "timeout": "timeout"}

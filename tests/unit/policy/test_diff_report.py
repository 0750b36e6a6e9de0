"""`policy diff-report`: differences grouped by reason and by who they would affect."""

from __future__ import annotations

import io
from pathlib import Path

import orjson

from proxy.policy.cli import cmd_diff_report
from proxy.policy.decision import Decision, Reason
from proxy.policy.diff_report import summarise
from proxy.policy.shadow import JsonlSink, diff_decisions

ALLOW = Decision(allow=True)
DENY_SIZE = Decision(allow=False, reasons=(Reason("prompt_too_large", "too big"),))
DENY_MODEL = Decision(allow=False, reasons=(Reason("model_not_allowed", "no"),))
CAPPED = Decision(allow=True, max_tokens=100)


def who(team: str, app: str, model: str = "gpt-4o") -> dict[str, object]:
    return {"team": team, "app": app, "model": model, "endpoint": "chat.completions"}


def write(path: Path) -> None:
    sink = JsonlSink(path)
    for live, candidate, affected in [
        (ALLOW, DENY_SIZE, who("payments", "billing-api")),
        (ALLOW, DENY_SIZE, who("payments", "billing-api")),
        (ALLOW, DENY_SIZE, who("research", "notebook")),
        (ALLOW, DENY_MODEL, who("research", "notebook", "o1")),
        (ALLOW, CAPPED, who("support", "support-bot")),
    ]:
        difference = diff_decisions(live, candidate, "r1", "r2", who=affected)
        assert difference is not None
        sink(difference.as_event())
    sink.close()


def test_differences_are_grouped_by_reason_and_by_team_app(tmp_path: Path) -> None:
    path = tmp_path / "shadow.jsonl"
    write(path)
    report = summarise(path)
    assert report.reasons == {"allow -> deny; +prompt_too_large": 3, "allow -> deny; +model_not_allowed": 1,
                              "changes max_tokens": 1}
    assert report.who == {"payments/billing-api": 2, "research/notebook": 2, "support/support-bot": 1}
    assert report.who_by_reason["allow -> deny; +prompt_too_large"] == {"payments/billing-api": 2,
                                                                        "research/notebook": 1}
    assert report.reasons_by_who["research/notebook"] == {"allow -> deny; +prompt_too_large": 1,
                                                          "allow -> deny; +model_not_allowed": 1}
    assert report.models["o1 chat.completions"] == 1


def test_report_text_says_what_changes_for_whom_and_how_often(tmp_path: Path) -> None:
    path = tmp_path / "shadow.jsonl"
    write(path)
    with path.open("ab") as f:
        f.write(b"not json\n" + orjson.dumps({"event": "other"}) + b"\n")
    out = io.StringIO()
    assert cmd_diff_report(path, out=out) == 0
    text = out.getvalue()
    assert text.startswith("shadow differences: 5 (2 unreadable lines skipped)")
    assert "        3  allow -> deny; +prompt_too_large  (payments/billing-api 2, research/notebook 1)" in text
    assert "        2  payments/billing-api  (allow -> deny; +prompt_too_large 2)" in text
    assert "        4  allow -> deny" in text  # allow changes
    assert "        3  prompt_too_large" in text  # codes only the candidate gives
    assert "        1  max_tokens" in text
    assert "        5  r1 -> r2" in text


def test_events_from_before_who_was_recorded_are_counted_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    difference = diff_decisions(ALLOW, DENY_SIZE, "r1", "r2")
    assert difference is not None
    path.write_bytes(orjson.dumps(difference.as_event()) + b"\n")
    assert summarise(path).who == {"?/?": 1}

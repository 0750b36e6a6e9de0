"""Validating a version before it serves: every way a version can be broken is rejected with the rule,
file:line and sample; compiled mode serves only where it means what the interpreter means."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from proxy.policy.bundle import default_policy_dir, load_bundle
from proxy.policy.samples import Sample, decision_input
from proxy.policy.validate import Limits, Verdict, VersionRejected, check_folder, validate
from tests.support.policy_versions import BROKEN, REASONS, conflicting_rules, decision_line, restore_line

# Generous for versions that should pass (a busy machine must not fail them); short for one that never ends.
FAST = Limits(timeout_ms=5000, slack_s=2.0)
SPINS = Limits(timeout_ms=250, slack_s=1.0)
# An else chain whose first body looks up something undefined: OPA and the interpreter fall through to
# `true`, the RVM answers undefined, so `not gate` holds on the RVM only and it denies what the other allows.
GATE = ('package llm.limits\n\ngate := x if {\n\tx := data.nowhere[input.version]\n} else := true\n\n'
        'deny contains {"code": "gate_closed", "message": "gate"} if not gate\n')


async def check(root: Path, *, compiled: bool = True, limits: Limits = FAST) -> Verdict:
    return await check_folder(root, compiled=compiled, limits=limits)


async def test_shipped_policies_pass_and_are_served_compiled() -> None:
    verdict = await check(default_policy_dir())
    assert verdict.mode == "compiled"
    assert verdict.fallback is None and verdict.warnings == ()
    assert verdict.samples["builtin"] > 300
    assert verdict.samples["tests"] > 50  # the inputs of the folder's own *_test.rego
    assert verdict.samples["recent"] == 0


@pytest.mark.parametrize("kind", list(BROKEN))
async def test_broken_version_is_rejected_with_its_reason_and_location(policy_copy: Path, kind: str) -> None:
    BROKEN[kind](policy_copy)
    with pytest.raises(VersionRejected) as caught:
        await check(policy_copy, limits=SPINS if kind == "timeout" else FAST)
    rejected = caught.value
    assert rejected.reason == REASONS[kind]
    first_line = str(rejected).splitlines()[0]
    expected = {
        "syntax": f"{policy_copy / 'zz_broken.rego'}:3:1: error:",
        "data": f"{policy_copy / 'data' / 'zz_broken.json'}:1:22: invalid JSON",
        "contract": "allow: 'yes' is not of type 'boolean' [data.llm.main.decision at "
                    f"{policy_copy / 'main.rego'}:{decision_line(policy_copy)}; sample builtin:",
        "conflict": f"{policy_copy / 'zz_conflict.rego'}:3:1: error: rule conflicts with rule at "
                    f"{policy_copy / 'pii.rego'}:{restore_line(policy_copy)}:1",
        "timeout": "did not finish within 250 ms (policy.timeout_ms) [data.llm.main.decision at",
    }[kind]
    assert expected in first_line
    if kind in ("contract", "conflict", "timeout"):
        assert rejected.sample is not None and rejected.sample.name in first_line
        assert "\n  input: {" in str(rejected)  # the sample itself, for reproducing with `policy eval`
    if kind == "conflict":
        assert "email" in rejected.sample.input["pii"]["types"]  # type: ignore[union-attr]


async def test_version_without_an_entry_point_is_rejected(policy_copy: Path) -> None:
    (policy_copy / "egress.rego").unlink()
    (policy_copy / "egress_test.rego").unlink()
    with pytest.raises(VersionRejected) as caught:
        await check(policy_copy)
    assert caught.value.reason == "entrypoint"
    assert "data.llm.egress.decision is not defined" in str(caught.value)


async def test_a_version_broken_only_for_recent_traffic_is_rejected_on_reload(policy_copy: Path) -> None:
    # Breaks the contract for one team that no built-in sample and no test uses.
    (policy_copy / "zz_rare.rego").write_text(
        'package llm.limits\n\nmax_tokens := "lots" if input.identity.team == "rare-team"\n')
    recent_doc = decision_input()
    recent_doc["identity"]["team"] = "rare-team"
    bundle = load_bundle(policy_copy)
    verdict = await validate(bundle, compiled=False, limits=FAST)
    assert verdict.mode == "interpreter"
    recent = {"data.llm.main.decision": [Sample("recent:main.decision#0 (rare-team/billing-api)", recent_doc)]}
    with pytest.raises(VersionRejected) as caught:
        await validate(bundle, compiled=False, limits=FAST, recent=recent)
    assert caught.value.reason in ("contract", "conflict")
    assert "sample recent:main.decision#0 (rare-team/billing-api)" in str(caught.value)


@pytest.mark.parametrize(("edit", "reason"), [
    # Two definitions with different values that no sample makes apply at once: only the static check sees it.
    (lambda root: (root / "zz_maybe.rego").write_text(
        'package llm.limits\n\nnote := "a" if input.identity.team == "x"\n'
        'note := "b" if input.identity.app == "y"\n'), "conflict"),
    (lambda root: (root / "zz_gate.rego").write_text(GATE), "parity"),
    # Partial object rules with constant keys: the RVM compiler refuses them.
    (lambda root: (root / "zz_notes.rego").write_text(
        'package llm.limits\n\nnotes["a"] := 1\n\ndeny contains {"code": "n", "message": "n"} if notes.a == 2\n'),
     "unsupported"),
], ids=["conflict", "parity", "unsupported"])
async def test_compiled_mode_is_refused_and_the_interpreter_serves(policy_copy: Path, edit: Callable[[Path], object],
                                                                  reason: str) -> None:
    edit(policy_copy)
    verdict = await check(policy_copy)
    assert verdict.compiled_requested
    assert verdict.mode == "interpreter"
    assert verdict.fallback_reason == reason
    assert verdict.fallback is not None
    if reason == "conflict":
        assert "data.llm.limits.note is defined 2 times" in verdict.fallback
        assert verdict.warnings
    if reason == "parity":
        assert "data.llm.main.decision on sample builtin:" in verdict.fallback


async def test_rejected_in_interpreter_mode_too(policy_copy: Path) -> None:
    conflicting_rules(policy_copy)
    with pytest.raises(VersionRejected) as caught:
        await check(policy_copy, compiled=False)
    assert caught.value.reason == "conflict"


async def test_a_sample_slower_than_the_timeout_rejects_the_version(policy_copy: Path) -> None:
    # Finishes (~10^6 steps), but not within 1 ms.
    (policy_copy / "zz_slowish.rego").write_text(
        'package llm.limits\n\ndeny contains {"code": "x", "message": "x"} if {\n'
        '\tevery i in numbers.range(1, 100) { every j in numbers.range(1, 100) { i + j > 0 } }\n\tfalse\n}\n')
    with pytest.raises(VersionRejected) as caught:
        await check(policy_copy, compiled=False, limits=Limits(timeout_ms=1, slack_s=5.0))
    assert caught.value.reason == "timeout"
    assert "more than policy.timeout_ms (1 ms)" in str(caught.value)


async def test_start_up_reuses_the_verdict_of_an_identical_version(policy_copy: Path) -> None:
    bundle = load_bundle(policy_copy)
    first = await validate(bundle, compiled=False, limits=FAST, reuse=True)
    # The same content read again: same digest, the same verdict without validating again.
    again = await validate(load_bundle(policy_copy), compiled=False, limits=FAST, reuse=True)
    assert again is first
    # Other settings, or recent inputs to check, are validated afresh.
    assert await validate(bundle, compiled=False, limits=Limits(timeout_ms=5001), reuse=True) is not first
    assert await validate(bundle, compiled=False, limits=FAST) is not first


async def test_tests_that_break_the_contract_table_row_are_not_samples_of_it(policy_copy: Path) -> None:
    # A test handing the decision an input no proxy would send is not a sample of the decision.
    (policy_copy / "zz_odd_test.rego").write_text(
        'package llm.odd_test\n\ntest_odd if { data.llm.main.decision with input as {"request": 7} }\n')
    verdict = await check(policy_copy, compiled=False)
    baseline = await check(default_policy_dir(), compiled=False)
    assert verdict.samples["tests"] == baseline.samples["tests"]


async def test_the_mcp_entry_point_is_optional_but_held_to_its_contract_once_declared(policy_copy: Path) -> None:
    (policy_copy / "mcp.rego").unlink()
    (policy_copy / "mcp_test.rego").unlink()
    verdict = await check(policy_copy)  # a deployment without the MCP gateway need not write its policy
    assert verdict.mode == "compiled"
    (policy_copy / "mcp.rego").write_text('package llm.mcp\n\ndecision := {"allow": "yes", "reasons": []}\n')
    with pytest.raises(VersionRejected) as caught:
        await check(policy_copy)
    assert caught.value.reason == "contract"
    assert "data.llm.mcp.decision" in str(caught.value) and "builtin:mcp/" in str(caught.value)

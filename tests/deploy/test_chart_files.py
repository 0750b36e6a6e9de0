"""The chart's copies of policies, dashboards and alert rules equal the repository's originals
(Helm can read files only inside a chart; helm/sync-policies.sh refreshes the copies)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "llm-policy-proxy"
SYNC = "run helm/sync-policies.sh"
COPIES = {
    "policies": (ROOT / "policies", CHART / "policies", ("*.rego", "*.json", "*.yaml", "*.yml", ".manifest")),
    "dashboards": (ROOT / "deploy/grafana/dashboards", CHART / "files/grafana/dashboards", ("*.json",)),
    "alert rules": (ROOT / "deploy/prometheus/rules", CHART / "files/prometheus/rules", ("*.yaml", "*.yml")),
}


def tree(root: Path, patterns: tuple[str, ...]) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for pattern in patterns for p in root.rglob(pattern) if p.is_file()}


@pytest.mark.parametrize("what", sorted(COPIES))
def test_chart_copy_equals_the_original(what: str) -> None:
    original, copy, patterns = COPIES[what]
    if not original.is_dir():
        pytest.skip(f"{original.relative_to(ROOT)} does not exist yet")
    expected, actual = tree(original, patterns), tree(copy, patterns)
    assert expected, f"{original.relative_to(ROOT)} is empty"
    stale = sorted(name for name in expected.keys() | actual.keys() if expected.get(name) != actual.get(name))
    assert not stale, f"{what}: chart copy differs in {stale}; {SYNC}"


def runtime_policy_files() -> list[str]:
    shipped = CHART / "policies"
    rego = [p.name for p in shipped.glob("*.rego") if not p.name.endswith("_test.rego")]
    data = [f"data/{p.name}" for p in (shipped / "data").iterdir() if p.is_file()]
    return sorted(rego + data)


def test_generated_template_lists_the_data_files_and_digest() -> None:
    generated = (CHART / "templates/_policy_files.tpl").read_text()
    listed = [line[2:] for line in generated.splitlines() if line.startswith("- ")]
    assert listed == [name.removeprefix("data/") for name in runtime_policy_files() if name.startswith("data/")], SYNC
    lines = "".join(f"{hashlib.sha256((CHART / 'policies' / name).read_bytes()).hexdigest()}  {name}\n"
                    for name in runtime_policy_files())
    assert hashlib.sha256(lines.encode()).hexdigest() in generated, SYNC


def test_policies_are_flat_as_the_configmap_mounts_them() -> None:
    nested = [p for p in (ROOT / "policies").rglob("*.rego") if p.parent != ROOT / "policies"]
    assert not nested, f"the chart mounts Rego modules from the top of policies/ only: {nested}"


def test_sync_script_check_mode_agrees() -> None:
    result = subprocess.run([str(ROOT / "helm/sync-policies.sh"), "--check"], capture_output=True, text=True,
                            timeout=30, env={**os.environ, "LC_ALL": "C"})
    assert result.returncode == 0, result.stderr


def test_policy_loader_reads_a_configmap_volume_once(tmp_path: Path) -> None:
    from proxy.policy.bundle import policy_files

    # What the kubelet's atomic writer makes of the chart's projected policies volume.
    snapshot = tmp_path / "..2026_01_01_00_00_00.000000001"
    (snapshot / "data").mkdir(parents=True)
    for name in runtime_policy_files():
        (snapshot / name).write_bytes((CHART / "policies" / name).read_bytes())
    (tmp_path / "..data").symlink_to(snapshot.name)
    for entry in snapshot.iterdir():
        (tmp_path / entry.name).symlink_to(f"..data/{entry.name}")
    loaded = sorted(str(p.relative_to(tmp_path)) for p in policy_files(tmp_path))
    assert loaded == runtime_policy_files()

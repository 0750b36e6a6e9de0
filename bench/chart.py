"""The latency chart: per scenario, direct vs each proxy setup; bar = p50, tick = p90, whisker top = p99.

Usage: python bench/chart.py [bench/results/latest.json] [docs/perf/latency.png]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # the Agg backend is chosen before pyplot loads
from matplotlib.ticker import FuncFormatter, LogFormatter

PANELS = (("plain", "total_ms", "non-streaming: total"), ("stream", "ttft_ms", "streaming: time to first token"),
          ("stream", "total_ms", "streaming: total"), ("paced", "ttft_ms", "paced streaming: time to first token"),
          ("paced", "total_ms", "paced streaming: total"))


def target(run: dict[str, Any]) -> str:
    return "direct" if run["target"] == "direct" else f"{run['store']} w{run['workers']}"


def draw(document: dict[str, Any], path: Path) -> None:
    runs = document["runs"]
    targets = sorted({target(r) for r in runs}, key=lambda t: (t != "direct", t))
    panels = [p for p in PANELS if any(r["mode"] == p[0] and r.get(p[1]) for r in runs)]
    if not panels:
        return
    groups = max(len({(r["size"], r["concurrency"]) for r in runs if r["mode"] == mode}) for mode, _, _ in panels)
    figure, axes = plt.subplots(len(panels), 1, figsize=(max(8.0, 1.3 * groups * len(targets) / 3), 3.6 * len(panels)),
                                squeeze=False)
    width = 0.8 / len(targets)
    colours = plt.colormaps["tab10"]
    for axis, (mode, key, title) in zip(axes[:, 0], panels, strict=True):
        cases = sorted({(r["size"], r["concurrency"]) for r in runs if r["mode"] == mode})
        for t_index, name in enumerate(targets):
            rows = {(r["size"], r["concurrency"]): r[key] for r in runs
                    if r["mode"] == mode and target(r) == name and r.get(key)}
            xs = [i + (t_index - (len(targets) - 1) / 2) * width for i, case in enumerate(cases) if case in rows]
            values = [rows[case] for case in cases if case in rows]
            if not values:
                continue
            p50 = [v["p50"] for v in values]
            colour = colours(t_index)
            axis.bar(xs, p50, width * 0.9, color=colour, label=name)
            axis.vlines(xs, p50, [v["p99"] for v in values], color="black", linewidth=0.8)
            axis.scatter(xs, [v["p90"] for v in values], marker="_", color="black", s=30, zorder=3)
        axis.set_xticks(range(len(cases)), [f"{size // 1024} KB\nc{conc}" for size, conc in cases])
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
        axis.set_ylabel("ms (log)")
        axis.set_title(f"{title} (bar p50, tick p90, line to p99)", fontsize=10)
        axis.grid(axis="y", which="major", alpha=0.3)
        axis.legend(fontsize=8, ncol=len(targets), loc="upper left")
    meta = document["meta"]
    figure.suptitle(f"llm-policy-proxy: direct vs proxied, commit {meta['commit']}, {meta['started']}, "
                    f"load avg {meta['load_average_start'][0]}", fontsize=10)
    figure.tight_layout(rect=(0, 0, 1, 0.985))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results" / "latest.json"
    target_path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parents[1] / "docs/perf/latency.png"
    draw(json.loads(source.read_text()), target_path)

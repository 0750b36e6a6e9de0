"""How far the offline Claude token estimate is from the usage the API reported, on recorded calls.

    python bench/claude_tokens.py extract owner/name=/path/to/checkout ... --out var/claude_usage.jsonl
    python bench/claude_tokens.py measure var/claude_usage.jsonl [--worst 10]

`extract` reads the VCR cassettes (YAML) committed in public repositories' test suites: every recorded
200 answer from api.anthropic.com's /v1/messages (JSON or SSE) or /v1/messages/count_tokens, with its
request body, reported usage and generated text, and the provenance `owner/name@commit:path#n` of each.
The fixture stays out of this repository (it is third-party data). `measure` prints the error of
`TokenEstimator.prompt("messages", ...)` against input_tokens + cache reads + cache writes, per tokenizer
generation and kind of request, and of the output estimate against output_tokens.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.tokens import TokenEstimator, Vocab

Json = dict[str, Any]
# Models that use the tokenizer Claude Opus 4.7 introduced (and every model after it).
NEW_TOKENIZER = ("opus-4-7", "opus-4-8", "opus-5", "sonnet-5", "haiku-5", "fable", "mythos")


def encoding_of(model: str) -> str:
    return "claude-4.7" if any(marker in model for marker in NEW_TOKENIZER) else "claude-3"


def extract(sources: list[str], out: Path) -> None:
    rows = []
    for source in sources:
        name, _, checkout = source.partition("=")
        commit = _git(checkout, "rev-parse", "HEAD").strip()
        for path in _git(checkout, "ls-tree", "-r", "--name-only", "HEAD").splitlines():
            if "cassettes/" not in path or not path.endswith((".yaml", ".yml")):
                continue
            shown = subprocess.run(["git", "-C", checkout, "show", f"HEAD:{path}"], capture_output=True, text=True)
            text = shown.stdout
            if shown.returncode != 0 or "api.anthropic.com" not in text:  # a snapshot lacks its largest files
                continue
            for number, interaction in enumerate((yaml.safe_load(text) or {}).get("interactions") or ()):
                row = _pair(interaction)
                if row is not None:
                    rows.append({"source": f"{name}@{commit}:{path}#{number}", **row})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"{len(rows)} recorded calls -> {out}")


def _git(checkout: str, *args: str) -> str:
    return subprocess.run(["git", "-C", checkout, *args], capture_output=True, text=True, check=True).stdout


def _pair(interaction: Json) -> Json | None:
    request, response = interaction.get("request") or {}, interaction.get("response") or {}
    uri = str(request.get("uri", ""))
    if "api.anthropic.com/v1/messages" not in uri or (response.get("status") or {}).get("code") != 200:
        return None
    body = request.get("parsed_body") or _json_or_none(request.get("body") or "")
    answer = response.get("parsed_body") or _json_or_none((response.get("body") or {}).get("string", ""))
    if not isinstance(body, dict):
        return None
    if "count_tokens" in uri:
        return {"kind": "count_tokens", "model": body.get("model", ""), "request": body,
                "usage": {"input_tokens": (answer or {}).get("input_tokens")}, "output_text": ""}
    if isinstance(answer, dict):
        texts = [b.get("text") or b.get("thinking") or json.dumps(b.get("input")) for b in answer.get("content") or ()
                 if b.get("type") in ("text", "thinking", "tool_use")]
        return {"kind": "messages", "model": answer.get("model") or body.get("model", ""), "request": body,
                "usage": answer.get("usage") or {}, "output_text": "".join(texts),
                "output_blocks": [b.get("type") for b in answer.get("content") or ()]}
    stream = (response.get("body") or {}).get("string", "")
    if not isinstance(stream, str) or "event: message_start" not in stream:
        return None
    usage: Json = {}
    model, texts, blocks = body.get("model", ""), [], []
    for line in stream.splitlines():
        event = _json_or_none(line[5:]) if line.startswith("data:") else None
        if not isinstance(event, dict):
            continue
        if event.get("type") == "message_start":
            model = event["message"].get("model") or model
            usage.update({k: v for k, v in (event["message"].get("usage") or {}).items() if v is not None})
        elif event.get("type") == "message_delta":
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        elif event.get("type") == "content_block_start":
            blocks.append((event.get("content_block") or {}).get("type"))
        elif event.get("type") == "content_block_delta":
            delta = event.get("delta") or {}
            texts.append(delta.get("text") or delta.get("thinking") or delta.get("partial_json") or "")
    return {"kind": "messages", "model": model, "request": body, "usage": usage, "output_text": "".join(texts),
            "output_blocks": blocks}


def _json_or_none(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) and text.strip() else None
    except json.JSONDecodeError:
        return None


SERVER_SIDE = ('"server_tool_use"', '_tool_result"', '"container_upload"', '"compaction"', '"mcp_tool_use"')


def category(body: Json) -> str:
    """Server tools (web search, code execution, MCP...) add prompts the API does not document: excluded."""
    if body.get("mcp_servers") or body.get("container") or body.get("context_management") \
            or any(t.get("type") not in (None, "custom") for t in body.get("tools") or ()) \
            or any(marker in json.dumps(body.get("messages")) for marker in SERVER_SIDE):
        return "server tools (excluded)"
    blocks = [b for m in body.get("messages") or () if isinstance(m.get("content"), list) for b in m["content"]]
    if any(b.get("type") in ("image", "document") for b in blocks):
        return "images, documents"
    if body.get("tools"):
        return "tools"
    if (body.get("output_config") or {}).get("format"):
        return "structured output"
    if body.get("thinking") or any(b.get("type") in ("thinking", "redacted_thinking") for b in blocks):
        return "thinking"
    return "text"


def measure(fixture: Path, worst: int) -> None:
    vocab = Vocab(None)
    vocab.load_all({"cl100k_base"})
    estimator = TokenEstimator(vocab)
    errors: dict[tuple[str, str], list[float]] = defaultdict(list)
    outputs: dict[tuple[str, str], list[float]] = defaultdict(list)
    details = []
    for line in fixture.read_text().splitlines():
        row = json.loads(line)
        usage = row["usage"]
        actual = sum(int(usage.get(k) or 0) for k in
                     ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        if actual <= 0:
            continue
        encoding = encoding_of(str(row["model"]))
        kind = category(row["request"])
        if kind.endswith("(excluded)"):
            errors[(encoding, kind)].append(0.0)
            continue
        estimate = estimator.prompt("messages", encoding, row["request"])
        error = (estimate - actual) / actual
        errors[(encoding, kind)].append(error)
        details.append((abs(error), error, estimate, actual, row["model"], row["source"]))
        # Output: only answers without thinking (Claude 4 returns thinking summarised, but bills all of it).
        if row["kind"] == "messages" and int(usage.get("output_tokens") or 0) > 20 and row["output_text"] \
                and set(row.get("output_blocks") or ()) <= {"text", "tool_use"}:
            output = estimator.output(encoding, [row["output_text"]])
            kind = "output, with tool calls" if "tool_use" in row["output_blocks"] else "output, text only"
            outputs[(encoding, kind)].append((output - usage["output_tokens"]) / usage["output_tokens"])
    print("| tokenizer | requests | n | median error | median abs | p90 abs | max abs | within 10% | within 25% |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (encoding, kind), values in sorted(errors.items()):
        if kind.endswith("(excluded)"):
            print(f"| {encoding} | {kind} | {len(values)} | | | | | | |")
            continue
        print(_row(encoding, kind, values))
    for encoding in sorted({e for e, _ in errors}):
        everything = [v for (e, k), vs in errors.items() if e == encoding and not k.endswith("(excluded)") for v in vs]
        print(_row(encoding, "**all**", everything))
    for (encoding, kind), values in sorted(outputs.items()):
        print(_row(encoding, f"{kind} (> 20 tokens)", values))
    for _, error, estimate, actual, model, source in sorted(details, reverse=True)[:worst]:
        print(f"worst: {error:+.2f} estimate {estimate} actual {actual} {model} {source}")


def _row(encoding: str, kind: str, values: list[float]) -> str:
    if not values:
        return f"| {encoding} | {kind} | 0 | | | | | | |"
    absolute = sorted(abs(v) for v in values)
    p90 = absolute[min(len(absolute) - 1, int(0.9 * len(absolute)))]
    within = [sum(a <= bound for a in absolute) / len(absolute) for bound in (0.10, 0.25)]
    return (f"| {encoding} | {kind} | {len(values)} | {statistics.median(values):+.1%}"
            f" | {statistics.median(absolute):.1%} | {p90:.1%} | {absolute[-1]:.1%}"
            f" | {within[0]:.0%} | {within[1]:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    pull = commands.add_parser("extract")
    pull.add_argument("sources", nargs="+", help="owner/name=path of a git checkout")
    pull.add_argument("--out", type=Path, required=True)
    check = commands.add_parser("measure")
    check.add_argument("fixture", type=Path)
    check.add_argument("--worst", type=int, default=0)
    args = parser.parse_args()
    if args.command == "extract":
        extract(args.sources, args.out)
    else:
        measure(args.fixture, args.worst)


if __name__ == "__main__":
    main()

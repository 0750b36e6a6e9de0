"""The estimate and scan stages: prompt tokens, worst-case cost and PII findings, computed once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .budget.pricing import worst_case_micros
from .catalogue import CatalogueEntry
from .endpoints.base import ModelCall
from .pii import Finding, Match, Scanner, scan_texts, summarize
from .tokens import TokenEstimator


@dataclass(frozen=True, slots=True)
class Analysis:
    prompt_tokens: int
    max_output_tokens: int
    max_cost_micros: int
    matches: dict[str, list[Match]]  # JSON path -> matches, only paths with findings
    findings: tuple[Finding, ...]

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for finding in self.findings:
            totals[finding.type] = totals.get(finding.type, 0) + finding.count
        return totals


def analyse(call: ModelCall, entry: CatalogueEntry, estimator: TokenEstimator, scanner: Scanner) -> Analysis:
    prompt_tokens = estimator.prompt(call.endpoint.name, entry.encoding, call.body)
    max_output = call.worst_case_output(entry.max_output_tokens)
    matches = scan_texts(scanner, call.endpoint.texts(call.body))
    return Analysis(prompt_tokens, max_output, worst_case_micros(prompt_tokens, max_output, entry.micro_prices),
                    matches, tuple(summarize(matches.items())))


async def analyse_off_loop(call: ModelCall, entry: CatalogueEntry, estimator: TokenEstimator, scanner: Scanner,
                           body_bytes: int, offload_bytes: int) -> Analysis:
    """Small bodies inline (a thread hop costs more than the work); big ones in a worker thread so one
    64 KB prompt does not stall every other request on this worker (tiktoken releases the GIL)."""
    if body_bytes <= offload_bytes:
        return analyse(call, entry, estimator, scanner)
    return await asyncio.to_thread(analyse, call, entry, estimator, scanner)

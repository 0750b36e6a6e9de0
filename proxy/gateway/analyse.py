"""The estimate and scan stages: prompt tokens, worst-case cost and PII findings, computed once.

Prompt tokens are an upper bound (each text's UTF-8 length) unless the caller asks for the exact count:
tokenizing is the costliest part of the estimate, and only a policy that reads input.estimate, a limit
that holds the count, or a prompt near the context window needs it (`counted` then replaces the bound).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from proxy.budget.pricing import worst_case_micros
from proxy.catalogue import CatalogueEntry
from proxy.endpoints.base import ModelCall
from proxy.pii import Finding, Match, Scanner, scan_texts, summarize
from proxy.tokens import TokenEstimator


@dataclass(frozen=True, slots=True)
class Analysis:
    prompt_tokens: int
    max_output_tokens: int
    max_cost_micros: int
    matches: dict[str, list[Match]]  # JSON path -> matches, only paths with findings
    findings: tuple[Finding, ...]
    prompt_exact: bool = True  # False: prompt_tokens (and the cost) are an upper bound

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for finding in self.findings:
            totals[finding.type] = totals.get(finding.type, 0) + finding.count
        return totals


def analyse(call: ModelCall, entry: CatalogueEntry, estimator: TokenEstimator, scanner: Scanner, *,
            exact: bool = True) -> Analysis:
    prompt_tokens = estimator.prompt(call.endpoint.name, entry.encoding, call.body, bound=not exact)
    max_output = call.worst_case_output(entry.max_output_tokens)
    matches = scan_texts(scanner, call.endpoint.texts(call.body))
    return Analysis(prompt_tokens, max_output, worst_case_micros(prompt_tokens, max_output, entry.micro_prices),
                    matches, tuple(summarize(matches.items())), exact)


def counted(analysis: Analysis, call: ModelCall, entry: CatalogueEntry, estimator: TokenEstimator) -> Analysis:
    """The analysis with the prompt tokenized, when it held a bound."""
    if analysis.prompt_exact:
        return analysis
    prompt_tokens = estimator.prompt(call.endpoint.name, entry.encoding, call.body)
    cost = worst_case_micros(prompt_tokens, analysis.max_output_tokens, entry.micro_prices)
    return dataclasses.replace(analysis, prompt_tokens=prompt_tokens, max_cost_micros=cost, prompt_exact=True)


async def analyse_off_loop(call: ModelCall, entry: CatalogueEntry, estimator: TokenEstimator, scanner: Scanner,
                           body_bytes: int, offload_bytes: int, *, exact: bool = True) -> Analysis:
    """Small bodies inline (a thread hop costs more than the work); big ones in a worker thread so one
    64 KB prompt does not stall every other request on this worker (tiktoken releases the GIL)."""
    if exact:
        await estimator.ready(entry.encoding)  # never build the tables on the loop
    if body_bytes <= offload_bytes:
        return analyse(call, entry, estimator, scanner, exact=exact)
    return await asyncio.to_thread(lambda: analyse(call, entry, estimator, scanner, exact=exact))


async def counted_off_loop(analysis: Analysis, call: ModelCall, entry: CatalogueEntry, estimator: TokenEstimator,
                           body_bytes: int, offload_bytes: int) -> Analysis:
    if analysis.prompt_exact:
        return analysis
    await estimator.ready(entry.encoding)  # never build the tables on the loop
    if body_bytes <= offload_bytes:
        return counted(analysis, call, entry, estimator)
    return await asyncio.to_thread(counted, analysis, call, entry, estimator)

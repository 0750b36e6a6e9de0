"""Image input tokens by OpenAI's published tile formula (platform.openai.com/docs/guides/vision).

low detail: a flat 85. high/auto: fit in 2048x2048, shrink so the short side is at most 768,
then 170 per 512px tile plus 85. Unknown size: the cost of a 1024x1024 high-detail image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from proxy.tokens.imagesize import data_url_size

MAX_SIDE = 2048
SHORT_SIDE = 768
TILE = 512


@dataclass(frozen=True)
class TileCosts:
    """Per-model constants; the defaults are GPT-4o's. Models that bill images differently pass theirs."""

    base: int = 85
    per_tile: int = 170
    # Used when the size is unknown (remote URL, file id, undecodable data URL): 4 tiles + base,
    # the documented cost of a 1024x1024 high-detail image.
    unknown_tiles: int = 4


GPT_4O_TILES = TileCosts()


def image_tokens(width: int | None, height: int | None, detail: str | None, costs: TileCosts = GPT_4O_TILES) -> int:
    if detail == "low":
        return costs.base
    if width is None or height is None or width <= 0 or height <= 0:
        return costs.base + costs.per_tile * costs.unknown_tiles
    # "auto" lets the model choose; for a budget estimate we assume the dearer high detail.
    return costs.base + costs.per_tile * tile_count(width, height)


def tile_count(width: int, height: int) -> int:
    w, h = float(width), float(height)
    if max(w, h) > MAX_SIDE:
        scale = MAX_SIDE / max(w, h)
        w, h = w * scale, h * scale
    # OpenAI's examples only ever shrink; small images are not scaled up to 768.
    if min(w, h) > SHORT_SIDE:
        scale = SHORT_SIDE / min(w, h)
        w, h = w * scale, h * scale
    return math.ceil(w / TILE) * math.ceil(h / TILE)


def image_url_tokens(url: object, detail: object, costs: TileCosts = GPT_4O_TILES) -> int:
    """Tokens for an image given by URL; sizes are read only from data URLs (never fetched)."""
    if detail == "low":
        return costs.base
    size = data_url_size(url) if isinstance(url, str) else None
    width, height = size if size is not None else (None, None)
    return image_tokens(width, height, detail if isinstance(detail, str) else None, costs)

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.tokens import TileCosts, image_tokens
from proxy.tokens.images import image_url_tokens

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "tokens" / "vision_tiles.json"
DOCUMENTED = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", DOCUMENTED, ids=lambda c: f"{c['width']}x{c['height']}-{c['detail']}")
def test_documented_examples(case: dict[str, Any]) -> None:
    assert image_tokens(case["width"], case["height"], case["detail"]) == case["tokens"]


def test_auto_detail_is_charged_as_high() -> None:
    assert image_tokens(2048, 4096, "auto") == image_tokens(2048, 4096, "high") == 1105
    assert image_tokens(2048, 4096, None) == 1105


def test_small_images_are_not_scaled_up() -> None:
    assert image_tokens(512, 512, "high") == 85 + 170
    assert image_tokens(100, 40, "high") == 85 + 170


def test_unknown_size_costs_a_1024_square_at_high_detail() -> None:
    assert image_tokens(None, None, "high") == 765
    assert image_url_tokens("https://example.com/x.png", "auto") == 765
    assert image_url_tokens("https://example.com/x.png", "low") == 85


def test_other_models_can_pass_their_tile_costs() -> None:
    costs = TileCosts(base=10, per_tile=20)

    assert image_tokens(1024, 1024, "high", costs) == 10 + 4 * 20
    assert image_tokens(1024, 1024, "low", costs) == 10

"""The total: a weighted sum of the three rewards, every component logged, bad items the worst with a reason."""

import numpy as np
import pytest

from models.rewards import RewardItem, build_reward
from tests.models.rewards.cases import ARCTIC, SR, clip


@pytest.fixture(scope="module")
def items():
    x = clip("aew_a0001")
    return [
        RewardItem(x, SR, ARCTIC["aew_a0001"], reference=clip("aew_a0002")),
        RewardItem(np.full(SR, np.inf, np.float32), SR, ARCTIC["aew_a0001"], reference=clip("aew_a0002")),
        RewardItem(x, SR, None, reference=None),
    ]


def test_the_total_is_the_weighted_sum_of_the_components(local_cfg, local_models, items):
    cfg = local_cfg.model_copy(
        update={"weights": local_cfg.weights.model_copy(update={"stt": 2.0, "quality": 0.5, "similarity": 1.0})}
    )
    good, inf, missing = build_reward("total", cfg, local_models).score(items)
    parts = {
        kind: build_reward(kind, cfg, local_models).score(items[:1])[0] for kind in ("stt", "quality", "similarity")
    }
    assert good.error is None
    assert good.score == pytest.approx(
        2.0 * good.components["stt"] + 0.5 * good.components["quality"] + good.components["similarity"], abs=1e-12
    )
    # components as the single rewards give them (pocketsphinx confidences drift slightly with what it decoded before)
    assert good.components["quality"] == parts["quality"].score and good.components["similarity"] == pytest.approx(
        parts["similarity"].score, abs=1e-6
    )
    assert good.components["stt.wer"] == parts["stt"].components["stt.wer"]
    assert {"stt.method", "quality.model", "similarity.model"} <= good.metadata.keys()
    assert (inf.score, inf.error, inf.components) == (0.0, "audio: non-finite samples (NaN or inf)", {})
    # what each component lacks, in one reason; what could be computed is still logged
    assert (
        missing.score == 0.0
        and missing.error
        == "stt: text: missing (the target transcript); similarity: reference: missing (the reference voice)"
    )
    assert "quality" in missing.components


def test_a_zero_weight_drops_the_reward_and_what_it_needs(local_cfg, local_models, items):
    cfg = local_cfg.model_copy(update={"weights": local_cfg.weights.model_copy(update={"stt": 0.0, "similarity": 0.0})})
    (r,) = build_reward("total", cfg, local_models).score(items[2:])
    assert (
        r.error is None
        and r.score == r.components["quality"]
        and not any(k.startswith(("stt", "similarity")) for k in r.components)
    )


def test_weights_cannot_all_be_zero(local_cfg):
    from pydantic import ValidationError

    from schemas.rewards import RewardsConfig

    with pytest.raises(ValidationError, match="at least one of stt, quality, similarity"):
        RewardsConfig.model_validate(local_cfg.model_dump() | {"weights": {"stt": 0, "quality": 0, "similarity": 0}})

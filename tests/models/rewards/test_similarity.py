"""R_SIM from the curation speaker embedder (resemblyzer) on real voices."""

import numpy as np

from models.rewards import RewardItem, build_reward
from tests.models.rewards.cases import SR, clip


def test_the_same_speaker_scores_above_a_different_speaker(local_cfg, local_models):
    reward = build_reward("similarity", local_cfg, local_models)
    generated = clip("aew_a0001")
    same, other = reward.score(
        [RewardItem(generated, SR, reference=clip("aew_a0002")), RewardItem(generated, SR, reference=clip("axb_a0004"))]
    )
    assert same.score > other.score + 0.1
    assert same.score == same.components["similarity.cosine"]  # resemblyzer cosines lie in [0, 1]: mapped as they are
    emb = local_models.get("speaker").embed([generated, clip("aew_a0002")], SR)
    assert np.isclose(same.components["similarity.cosine"], float(emb[0] @ emb[1]), atol=1e-6)


def test_a_reference_at_another_rate_is_resampled(local_cfg, local_models):
    from models.signal import resample

    reward = build_reward("similarity", local_cfg, local_models)
    ref = clip("aew_a0002")
    at16, at44 = reward.score(
        [
            RewardItem(clip("aew_a0001"), SR, reference=ref),
            RewardItem(clip("aew_a0001"), SR, reference=resample(ref, SR, 44100), reference_rate=44100),
        ]
    )
    assert abs(at16.score - at44.score) < 0.02


def test_missing_or_unusable_references_are_that_items_error(local_cfg, local_models):
    reward = build_reward("similarity", local_cfg, local_models)
    x = clip("axb_a0004")
    results = reward.score(
        [
            RewardItem(x, SR),
            RewardItem(x, SR, reference=np.zeros(SR, np.float32)),
            RewardItem(x, SR, reference=clip("axb_a0005")),
        ]
    )
    assert [r.error for r in results[:2]] == [
        "reference: missing (the reference voice)",
        "reference: silent (peak 0 <= 0.0001)",
    ]
    assert results[2].error is None and results[2].score > 0.5

"""R_Pref from the curation quality scorers: DNSMOS (local) on real speech, the w2v-BERT head's P(good) (s2)."""

import numpy as np

from models.quality.head import HeadConfig, QualityHead, save_head
from models.rewards import RewardItem, build_reward
from schemas.config import ModelSpec
from tests.models.rewards.cases import SR, clip, with_noise


def test_clean_speech_scores_above_the_same_speech_with_noise(local_cfg, local_models):
    reward = build_reward("quality", local_cfg, local_models)
    x = clip("aew_a0001")
    clean, noisy, noisier = reward.score(
        [RewardItem(x, SR), RewardItem(with_noise(x, 10), SR), RewardItem(with_noise(x, 0), SR)]
    )
    assert clean.score > noisy.score > noisier.score
    assert clean.score - noisier.score > 0.2  # on [0, 1]: far apart, not a rounding matter
    # DNSMOS gives MOS 1-5: the reward is overall MOS mapped from 1-5, every score logged alongside
    assert clean.score == (clean.components["quality.overall"] - 1) / 4 == clean.components["quality"]
    assert {"quality.snr", "quality.recording_quality", "quality.p808"} <= clean.components.keys()
    assert clean.components["quality.snr"] > noisier.components["quality.snr"]
    assert clean.error is None and clean.metadata["quality.model"].startswith("dnsmos")


def test_bad_waveforms_get_the_worst_reward_and_the_rest_are_scored(local_cfg, local_models):
    reward = build_reward("quality", local_cfg, local_models)
    x = clip("axb_a0004")
    nan = x.copy()
    nan[100] = np.nan
    results = reward.score(
        [
            RewardItem(np.zeros(0, np.float32), SR),
            RewardItem(x, SR),
            RewardItem(np.zeros(SR, np.float32), SR),
            RewardItem(nan, SR),
        ]
    )
    assert [r.error for r in results] == [
        "audio: empty",
        None,
        "audio: silent (peak 0 <= 0.0001)",
        "audio: non-finite samples (NaN or inf)",
    ]
    assert [r.score for r in results[::2]] == [0.0, 0.0] and results[3].score == 0.0 and results[1].score > 0.3
    assert results[1].score == reward.score([RewardItem(x, SR)])[0].score  # the bad items did not touch it


def test_a_head_with_p_good_gives_it_as_the_reward(local_cfg, tiny_w2vbert, tmp_path):
    dims = ["overall", "snr"]
    head = save_head(
        tmp_path / "quality_head.pt",
        QualityHead(
            HeadConfig(
                dims=dims, in_features=32, hidden=8, label_mean=[3.0] * 2, label_std=[1.0] * 2, thresholds=[3.0] * 2
            )
        ),
    )
    spec = ModelSpec(
        name="w2vbert", checkpoint=str(tiny_w2vbert), device="cpu", batch_size=2, options={"head": str(head)}
    )
    cfg = local_cfg.model_copy(update={"models": local_cfg.models.model_copy(update={"quality": spec})})
    x = clip("aew_a0001")
    (r,) = build_reward("quality", cfg).score([RewardItem(x, SR)])
    assert 0.0 < r.score < 1.0 and r.score == r.components["quality.p_good_overall"]
    assert "quality.overall" in r.components and r.metadata["quality.model"].startswith("w2vbert:")

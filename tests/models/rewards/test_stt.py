"""R_STT: offline (pocketsphinx word confidences and WER, speaker turns checked with resemblyzer) on real speech,
and teacher-forced log-probabilities with weighted speaker and vocal tags on a tiny Qwen3-Omni thinker."""

import numpy as np
import pytest

from models.rewards import RewardItem, build_reward
from models.rewards.stt import TeacherForcedStt, token_kinds, turn_pieces
from schemas.config import ModelSpec
from schemas.rewards import AudioLimits, SttConfig
from tests.models.rewards.cases import ARCTIC, SR, clip, dialogue, dialogue_text
from tests.tiny_models import OPTIONS, TARGET


@pytest.fixture(scope="module")
def offline(local_cfg, local_models):
    """Every offline case scored in one batch, as an RL step would."""
    reward = build_reward("stt", local_cfg, local_models)
    split = "<|speaker:0|>Author of the danger trail,<|speaker:1|>Philip Steels, etc."
    cases = {
        "right": RewardItem(clip("aew_a0001"), SR, ARCTIC["aew_a0001"]),
        "wrong": RewardItem(clip("aew_a0001"), SR, ARCTIC["axb_a0004"]),
        "dialogue": RewardItem(dialogue(), SR, dialogue_text(turns=True)),
        "dialogue, speaker tag missing": RewardItem(dialogue(), SR, dialogue_text(turns=False)),
        "one voice, a wrong speaker tag": RewardItem(clip("aew_a0001"), SR, split),
        "only a tag": RewardItem(clip("aew_a0001"), SR, "<|speaker:0|>[laugh]"),
        "malformed": RewardItem(clip("aew_a0001"), SR, "<|speaker:0|>hi [laugh"),
    }
    return dict(zip(cases, reward.score(list(cases.values()))))


def test_the_right_transcript_scores_above_a_wrong_one(offline):
    right, wrong = offline["right"], offline["wrong"]
    assert right.score > 0.5 > wrong.score
    assert right.components["stt.wer"] < 0.5 < wrong.components["stt.wer"]
    assert right.components["stt.word_confidence"] > wrong.components["stt.word_confidence"]


def test_a_missing_speaker_tag_is_penalised(offline):
    right, missing = offline["dialogue"], offline["dialogue, speaker tag missing"]
    assert right.components["stt.wer"] == missing.components["stt.wer"]  # the same words: only the speakers differ
    assert right.components["stt.speaker_agreement"] > 0.8 > 0.6 > missing.components["stt.speaker_agreement"]
    assert right.score - missing.score > 0.1


def test_a_wrong_speaker_tag_is_penalised(offline):
    right, split = offline["right"], offline["one voice, a wrong speaker tag"]
    assert right.components["stt.speaker_agreement"] > 0.8 > 0.2 > split.components["stt.speaker_agreement"]
    assert right.score - split.score > 0.1


def test_the_offline_reward_says_what_it_approximates(offline):
    method = offline["right"].metadata["stt.method"]
    assert method.startswith("offline approximation") and "vocal tags not checked" in method and "resemblyzer" in method
    assert offline["right"].metadata["stt.model"] == "pocketsphinx:en-us+resemblyzer"


def test_targets_it_cannot_check_are_that_items_error(offline):
    assert offline["only a tag"].error == "text: no words to compare (the offline R_STT checks words)"
    assert offline["malformed"].error.startswith("text: unclosed '[' at position 16")
    assert offline["only a tag"].score == offline["malformed"].score == 0.0


def test_turns_are_cut_at_their_longest_pauses():
    words = [(0.0, 0.5), (0.5, 1.0), (1.1, 1.6), (2.4, 3.0), (3.0, 3.5), (3.6, 4.2)]
    assert turn_pieces(words, 1.5) == [(0.0, 2.0), (2.0, 4.2)]  # the 0.8 s pause, not the first word gap
    assert turn_pieces(words, 3.0) == [(0.0, 4.2)]
    assert turn_pieces(words[:2], 0.4) == [(0.0, 0.5), (0.5, 1.0)]


@pytest.fixture(scope="module")
def teacher_forced(tiny_qwen3_omni):
    from models import registry

    asr = registry.build(
        "asr",
        ModelSpec(name="qwen3-omni", checkpoint=str(tiny_qwen3_omni), device="cpu", batch_size=4, options=OPTIONS),
    )
    return asr, TeacherForcedStt(asr, SttConfig(), AudioLimits())


def test_tags_are_located_in_the_tokens(teacher_forced):
    asr, _ = teacher_forced
    enc = asr.tokenizer(TARGET, add_special_tokens=False, return_offsets_mapping=True)
    kinds = token_kinds(TARGET, enc["offset_mapping"])
    # the tiny tokenizer has a token per byte: each character's kind, read off the text
    expected = np.zeros(len(TARGET), dtype=int)
    for start in (TARGET.index("<|speaker:0|>"), TARGET.index("<|speaker:1|>")):
        expected[start : start + len("<|speaker:0|>")] = 1
    expected[TARGET.index("[laugh]") : TARGET.index("[laugh]") + len("[laugh]")] = 2
    assert kinds.tolist() == expected.tolist()


def test_teacher_forced_costs_weigh_speaker_and_vocal_tokens(teacher_forced):
    asr, reward = teacher_forced
    x = clip("aew_a0001")  # the tiny thinker was taught to hear TARGET in any audio
    wrong_speaker, wrong_word = TARGET.replace("<|speaker:1|>", "<|speaker:0|>"), TARGET.replace("yo", "yu")
    right, speaker, word = reward.score([RewardItem(x, SR, t) for t in (TARGET, wrong_speaker, wrong_word)])
    # one wrong byte each, but the speaker marker's costs five times as much
    assert right.error is None and right.score > 0.9 > word.score > speaker.score
    assert speaker.components["stt.nll_speaker"] > 2 * right.components["stt.nll_speaker"]
    assert right.metadata["stt.method"].startswith("teacher-forced")
    # score = exp(-(words + 5 x speaker tokens + 2 x vocal tokens) / tokens), from the per-kind means
    kinds = np.bincount(
        token_kinds(
            wrong_speaker,
            asr.tokenizer(wrong_speaker, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"],
        ),
        minlength=3,
    )
    c = speaker.components
    cost = kinds[0] * c["stt.nll_text"] + 5 * kinds[1] * c["stt.nll_speaker"] + 2 * kinds[2] * c["stt.nll_vocal"]
    assert c["stt.tokens"] == kinds.sum() and speaker.score == pytest.approx(np.exp(-cost / kinds.sum()), rel=1e-9)
    # the weight is what makes a wrong speaker cost more: at weight 1 the same item scores higher
    (unweighted,) = TeacherForcedStt(asr, SttConfig(speaker_weight=1.0), AudioLimits()).score(
        [RewardItem(x, SR, wrong_speaker)]
    )
    assert unweighted.score > speaker.score

"""Who speaks when inside one utterance: speaker turns from embedding clustering (the `local` profile's
substitute for a model that writes speaker turns itself).

1. An energy gate marks speech frames (10 ms); silence is not embedded.
2. Overlapping windows (1.5 s every 0.5 s) with enough speech are embedded.
3. Average-linkage agglomerative clustering on cosine similarity stops at `same_speaker_similarity`,
   which decides the number of speakers; clusters with too little speech join their nearest neighbour.
4. Each speech frame takes the cluster its covering windows resemble most; runs become turns that tile
   the utterance (pauses split at their midpoint); turns too short to judge join a neighbour.
5. Whole turns are re-embedded (longer audio, steadier embeddings), reassigned to the nearest speaker
   centroid, and speakers whose centroids are closer than `merge_similarity` are merged.

Speakers are numbered by first appearance: the first voice heard is speaker 0.

Over a whole source (`diarize_source`), steps 2-4 run on the windows of all its segments together (kept by
`diarize_segment` as `SegmentVoices`), so that a voice has one id in every segment of a recording; there each
phrase (speech between pauses) is also embedded whole and weighs in its frames' labels, so that turns change at
pauses and short answers (back-channels) find their own voice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment

from models.protocols import SpeakerEmbedder
from models.speaker.frontend import frame_levels_db, voiced_frames
from schemas.config import ModelSpec

FRAME_S = 0.01
# a source with more windows than this (about 33 minutes of speech) is clustered on an evenly spaced subset of them:
# average linkage holds a distance for every pair
MAX_SOURCE_WINDOWS = 4000


@dataclass(frozen=True)
class SpeakerTurn:
    speaker: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class DiarizationParams:
    """Defaults suit the resemblyzer voice encoder; similarity thresholds are properties of the embedding space."""

    window_s: float = 1.5
    hop_s: float = 0.5
    min_window_speech: float = 0.5  # fraction of speech frames a window needs to be embedded
    same_speaker_similarity: float = 0.65  # clustering stops when clusters are less similar than this (average linkage)
    merge_similarity: float = 0.8  # speakers whose whole-turn centroids are more similar than this are one speaker
    min_speaker_s: float = 1.5  # a cluster with less speech is not a speaker of its own
    min_turn_s: float = 0.4  # a shorter turn cannot be judged reliably and joins a neighbour
    min_gap_fill_s: float = 0.2  # pauses shorter than this inside speech count as speech
    min_island_s: float = 0.1  # speech islands shorter than this are ignored
    # Over a whole source: this share of the mean of all its windows' embeddings is taken from each before they are
    # compared. What every window shares (the channel: band, microphone, room) weighs less, so two voices through one
    # phone line no longer sound alike; the clustering then stops at `source_similarity`. Chosen with
    # scripts/bench_speakers on built 1-4 speaker sources, wideband and telephone (0.2-0.35 with 0.5-0.4 hold alike).
    channel_share: float = 0.3
    source_similarity: float = 0.45
    # One speaker is the verdict on a whole source only when its last two clusters are this similar; below, the source
    # keeps its two main clusters (which `min_speaker_s` may still join). Two voices that differ little (AMI dev01's
    # pair) merge below `single_similarity` and above `source_similarity`; one voice's windows never did on the
    # benchmark's 1-speaker sources (their last merge at 0.56-0.63, dev01's at 0.52: a thin margin).
    single_similarity: float = 0.54
    # Phrases (speech between pauses of `phrase_pause_s` or more) are embedded whole as well: a turn changes hands at
    # a pause, and a short answer (a back-channel) fills no 1.5 s window of its own. A phrase with `min_phrase_s` of
    # speech weighs `phrase_weight` in its frames' speaker scores (its windows the rest). Over a source, such phrases
    # are clustered too (stopping at `phrase_similarity`): longer than windows, their embeddings are steadier, so two
    # voices alike through one phone line part as phrases when their windows do not. Where the phrases find more
    # speakers than the windows, their centroids are the source's speakers. On the benchmark, one voice's phrases
    # (two LJSpeech recordings) merged at 0.53 and two telephone voices' at 0.46.
    # Pauses of 0.2 s and turns of 0.4 s (0.3 s and 0.6 s before): AMI 77.8% -> 80.9% on scripts/bench_speakers
    # (2026-12-07), every built source as before. Chosen on that benchmark; 1.2 s windows gave AMI 81.6% but broke the
    # telephone pair when cut into 9 s pieces (tests/curation/policy/test_diarization.py).
    phrase_pause_s: float = 0.2
    min_phrase_s: float = 0.5
    phrase_weight: float = 0.7
    phrase_similarity: float = 0.5


PARAMS_BY_EMBEDDER = {
    "resemblyzer": DiarizationParams(),
    # microsoft/wavlm-base-plus-sv decides 'same speaker' above 0.86 cosine.
    "wavlm": DiarizationParams(
        same_speaker_similarity=0.86,
        merge_similarity=0.9,
        channel_share=0.0,
        source_similarity=0.86,
        single_similarity=0.86,
        phrase_similarity=0.86,
    ),
}


def diarization_params(spec: ModelSpec) -> DiarizationParams:
    """The embedder's defaults, overridden by any DiarizationParams field named in spec.options."""
    names = {f.name for f in fields(DiarizationParams)}
    return replace(
        PARAMS_BY_EMBEDDER.get(spec.name, DiarizationParams()), **{k: v for k, v in spec.options.items() if k in names}
    )


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end, value) of the runs of equal values."""
    if values.size == 0:
        return []
    edges = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [values.size]])
    return [(int(s), int(e), int(values[s])) for s, e in zip(starts, ends)]


def speech_frames(wav: np.ndarray, sample_rate: int, params: DiarizationParams = DiarizationParams()) -> np.ndarray:
    """Boolean speech mask, one value per 10 ms frame."""
    mask = voiced_frames(frame_levels_db(wav, int(round(sample_rate * FRAME_S)))).astype(np.int8)
    for value, limit in ((0, params.min_gap_fill_s), (1, params.min_island_s)):
        runs = _runs(mask)
        for k, (s, e, v) in enumerate(runs):
            inner = 0 < k < len(runs) - 1 or value == 1
            if v == value and inner and (e - s) * FRAME_S < limit:
                mask[s:e] = 1 - value
    return mask.astype(bool)


def speech_span(
    wav: np.ndarray, sample_rate: int, params: DiarizationParams = DiarizationParams()
) -> tuple[float, float]:
    """(start_s, end_s) from the first to the last speech frame; the whole clip when none is found."""
    voiced = np.flatnonzero(speech_frames(wav, sample_rate, params))
    if voiced.size == 0:
        return 0.0, len(wav) / sample_rate
    frame_s = int(round(sample_rate * FRAME_S)) / sample_rate
    return voiced[0] * frame_s, (voiced[-1] + 1) * frame_s


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _cluster(emb: np.ndarray, threshold: float, single: float | None = None) -> np.ndarray:
    """Average linkage stopping below `threshold`; with `single`, one cluster only if the last merge is above it."""
    if len(emb) < 2:
        return np.zeros(len(emb), dtype=int)
    tree = linkage(emb, method="average", metric="cosine")
    labels = fcluster(tree, t=1.0 - threshold, criterion="distance") - 1
    if single is not None and labels.max() == 0 and 1.0 - tree[-1, 2] < single:
        labels = fcluster(tree, t=2, criterion="maxclust") - 1
    return labels


def _absorb_small(labels: np.ndarray, emb: np.ndarray, weights: np.ndarray, min_weight: float) -> np.ndarray:
    """Relabel members of clusters weighing less than `min_weight` to the nearest sufficient cluster."""
    ids = np.unique(labels)
    mass = {c: weights[labels == c].sum() for c in ids}
    big = [c for c in ids if mass[c] >= min_weight] or [max(ids, key=lambda c: mass[c])]
    centroids = _unit(np.stack([emb[labels == c].mean(axis=0) for c in big]))
    out = labels.copy()
    for i in np.flatnonzero(~np.isin(labels, big)):
        out[i] = big[int(np.argmax(centroids @ emb[i]))]
    return out


def _tile(labels: np.ndarray, speech: np.ndarray) -> list[list[int]]:
    """Frame labels on speech frames -> [start, end, label] turns covering every frame."""
    runs = [(s, e, v) for s, e, v in _runs(np.where(speech, labels, -1)) if v >= 0]
    turns: list[list[int]] = []
    for s, e, v in runs:
        if turns and turns[-1][2] == v:
            turns[-1][1] = e
        elif turns:
            mid = (turns[-1][1] + s) // 2
            turns[-1][1] = mid
            turns.append([mid, e, v])
        else:
            turns.append([s, e, v])
    turns[0][0], turns[-1][1] = 0, len(speech)
    return turns


def _merge_equal(turns: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for t in turns:
        if out and out[-1][2] == t[2]:
            out[-1][1] = t[1]
        else:
            out.append(list(t))
    return out


@dataclass(frozen=True)
class SegmentVoices:
    """What one segment gives source-level diarization: its 10 ms speech mask, the frame spans [start, end) of its
    embedded windows and their embeddings (unit vectors; float16, to travel light). Never written to KEY.json."""

    speech: np.ndarray  # bool (frames,)
    windows: np.ndarray  # int32 (n, 2)
    embeddings: np.ndarray  # float16 (n, dim)
    duration_s: float
    phrases: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))  # int32 (m, 2): frame spans
    phrase_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float16))  # float16 (m, dim)


def _window_spans(speech: np.ndarray, params: DiarizationParams) -> np.ndarray:
    """[start, end) frames of the windows to embed: `window_s` long every `hop_s`, with enough speech; a segment
    with too little speech for one gets a single window over its speech."""
    voiced = np.flatnonzero(speech)
    if voiced.size == 0:
        return np.zeros((0, 2), np.int32)
    win, hop = int(round(params.window_s / FRAME_S)), int(round(params.hop_s / FRAME_S))
    if len(speech) >= win:
        last = max(int(voiced[0]), int(voiced[-1]) + 1 - win)
        starts = [
            s for s in range(int(voiced[0]), last + 1, hop) if speech[s : s + win].mean() >= params.min_window_speech
        ]
        if starts:
            return np.array([(s, min(s + win, len(speech))) for s in starts], np.int32)
    return np.array([(int(voiced[0]), int(voiced[-1]) + 1)], np.int32)


def _phrase_spans(speech: np.ndarray, params: DiarizationParams) -> np.ndarray:
    """[start, end) frames of the runs of speech separated by pauses of `phrase_pause_s` or more that hold
    `min_phrase_s` of speech (shorter ones say too little to judge)."""
    pause = int(round(params.phrase_pause_s / FRAME_S))
    spans: list[list[int]] = []
    for s, e, v in _runs(speech.astype(np.int8)):
        if v and spans and s - spans[-1][1] < pause:
            spans[-1][1] = e
        elif v:
            spans.append([s, e])
    judged = [(a, b) for a, b in spans if speech[a:b].sum() * FRAME_S >= params.min_phrase_s]
    return np.array(judged, np.int32).reshape(-1, 2)


def _label_turns(
    speech: np.ndarray,
    spans: np.ndarray,
    sims: np.ndarray,
    params: DiarizationParams,
    phrases: np.ndarray | None = None,
    phrase_sims: np.ndarray | None = None,
) -> list[list[int]]:
    """[start, end, speaker column] turns tiling a segment's frames, from its windows' similarity to each speaker
    (`sims`, windows x speakers): each speech frame takes the speaker its covering windows resemble most (frames no
    window covers, the nearest covered frame's), blended with its phrase's own similarity (`phrase_sims`); runs
    become turns, and turns with too little speech to judge join the neighbour whose speaker their frames resemble
    more."""
    n = len(speech)
    score, cover = np.zeros((n, sims.shape[1])), np.zeros(n)
    for (a, b), row in zip(spans, sims):
        score[a:b] += row
        cover[a:b] += 1
    covered = np.flatnonzero(cover > 0)
    nearest = covered[np.clip(np.searchsorted(covered, np.arange(n)), 0, len(covered) - 1)]
    score = score[nearest] / cover[nearest, None]
    if phrase_sims is not None:
        for (a, b), row in zip(phrases, phrase_sims):
            score[a:b] = (1.0 - params.phrase_weight) * score[a:b] + params.phrase_weight * row
    frame_labels = np.argmax(score, axis=1)
    turns = _tile(frame_labels, speech)
    min_turn = int(round(params.min_turn_s / FRAME_S))
    while len(turns) > 1:
        short = [k for k, (s, e, _) in enumerate(turns) if speech[s:e].sum() < min_turn]
        if not short:
            break
        k = min(short, key=lambda j: speech[turns[j][0] : turns[j][1]].sum())
        s, e, _ = turns[k]
        options = [turns[j][2] for j in (k - 1, k + 1) if 0 <= j < len(turns)]
        turns[k][2] = max(options, key=lambda c: score[s:e, c].sum())
        turns = _merge_equal(turns)
    return turns


def _speaker_turns(turns: list[list[int]], ids, frame_s: float, duration: float) -> list[SpeakerTurn]:
    """Frame turns -> SpeakerTurns in seconds tiling [0, duration], speakers named by `ids[column]`."""
    return [
        SpeakerTurn(ids[c], s * frame_s if k else 0.0, e * frame_s if k < len(turns) - 1 else duration)
        for k, (s, e, c) in enumerate(turns)
    ]


@dataclass(frozen=True)
class VoicePlan:
    """What one segment embeds: its 10 ms speech mask and the frame spans of its windows and of its phrases (none
    when it has no window)."""

    speech: np.ndarray
    spans: np.ndarray
    phrases: np.ndarray

    @classmethod
    def of(cls, wav: np.ndarray, sample_rate: int, params: DiarizationParams) -> VoicePlan:
        speech = speech_frames(wav, sample_rate, params)
        spans = _window_spans(speech, params)
        phrases = _phrase_spans(speech, params) if len(spans) else np.zeros((0, 2), np.int32)
        return cls(speech, spans, phrases)

    def clips(self, wav: np.ndarray, sample_rate: int) -> list[np.ndarray]:
        """The windows', then the phrases' audio."""
        frame = int(round(sample_rate * FRAME_S))
        return [wav[a * frame : b * frame] for a, b in (*self.spans, *self.phrases)]

    def voices(self, emb: np.ndarray, duration_s: float) -> tuple[np.ndarray, SegmentVoices]:
        """From the embeddings of `clips`: (the windows' embeddings, the segment's voices)."""
        n = len(self.spans)
        if not n:
            return emb[:0], SegmentVoices(self.speech, self.spans, np.zeros((0, 0), np.float16), duration_s)
        found = SegmentVoices(
            self.speech, self.spans, emb[:n].astype(np.float16), duration_s, self.phrases, emb[n:].astype(np.float16)
        )
        return emb[:n], found


def embed_voices(
    wavs: Sequence[np.ndarray], sample_rate: int, embedder: SpeakerEmbedder, params: DiarizationParams
) -> list[tuple[VoicePlan, np.ndarray]]:
    """Each segment's plan and the embeddings of its clips, all segments' clips in one embedder call (which then pads
    one network block, not one per segment). An embedding does not depend on what shares its call."""
    plans = [VoicePlan.of(w, sample_rate, params) for w in wavs]
    clips = [plan.clips(w, sample_rate) for plan, w in zip(plans, wavs)]
    flat = [c for cs in clips for c in cs]
    emb = embedder.embed(flat, sample_rate) if flat else np.zeros((0, 0), np.float32)
    bounds = np.cumsum([0, *map(len, clips)])
    return [(plan, emb[a:b]) for plan, a, b in zip(plans, bounds[:-1], bounds[1:])]


def segment_voices(
    wav: np.ndarray, sample_rate: int, embedder: SpeakerEmbedder, params: DiarizationParams = DiarizationParams()
) -> SegmentVoices:
    """The segment's voices for `diarize_source` alone, without its own turns: for turns a transcriber wrote itself."""
    plan, emb = embed_voices([wav], sample_rate, embedder, params)[0]
    return plan.voices(emb, len(wav) / sample_rate)[1]


def diarize(
    wav: np.ndarray, sample_rate: int, embedder: SpeakerEmbedder, params: DiarizationParams = DiarizationParams()
) -> list[SpeakerTurn]:
    """Speaker turns tiling the utterance; a single turn of speaker 0 when one voice (or too little speech) is found."""
    return diarize_segment(wav, sample_rate, embedder, params, voices=False)[0]


def diarize_segment(
    wav: np.ndarray,
    sample_rate: int,
    embedder: SpeakerEmbedder,
    params: DiarizationParams = DiarizationParams(),
    voices: bool = True,
    embedded: tuple[VoicePlan, np.ndarray] | None = None,
) -> tuple[list[SpeakerTurn], SegmentVoices | None]:
    """`diarize`, and the segment's voices for source-level diarization (`diarize_source`). Without `voices` (None
    then), a segment with too little speech to tell voices apart is not embedded at all. `embedded`: the segment's
    entry of `embed_voices`, when its clips were embedded with other segments'."""
    duration = len(wav) / sample_rate
    single = [SpeakerTurn(0, 0.0, duration)]
    frame = int(round(sample_rate * FRAME_S))
    plan = embedded[0] if embedded is not None else VoicePlan.of(wav, sample_rate, params)
    speech, spans = plan.speech, plan.spans
    too_little = speech.sum() * FRAME_S < 2 * params.min_speaker_s or len(spans) < 2
    if not len(spans) or (too_little and not voices):
        return single, SegmentVoices(speech, spans[:0], np.zeros((0, 0), np.float16), duration) if voices else None
    if voices:
        clips = embedded[1] if embedded is not None else embedder.embed(plan.clips(wav, sample_rate), sample_rate)
        emb, found = plan.voices(clips, duration)
    else:
        emb, found = embedder.embed(plan.clips(wav, sample_rate)[: len(spans)], sample_rate), None
    if too_little:
        return single, found
    labels = _cluster(emb, params.same_speaker_similarity)
    labels = _absorb_small(labels, emb, np.full(len(spans), params.hop_s), params.min_speaker_s)
    ids = np.unique(labels)
    if len(ids) == 1:
        return single, found

    # Frame scores: mean similarity of the covering windows to each speaker centroid.
    centroids = _unit(np.stack([emb[labels == c].mean(axis=0) for c in ids]))
    turns = _label_turns(speech, spans, emb @ centroids.T, params)

    # Whole-turn embeddings: merge speakers that are too small or one voice, reassign turns to the nearest speaker.
    turn_emb = embedder.embed([wav[s * frame : e * frame] for s, e, _ in turns], sample_rate)
    speech_s = np.array([speech[s:e].sum() * FRAME_S for s, e, _ in turns])
    labels = np.array([c for _, _, c in turns])
    for _ in range(2 * len(turns)):
        ids = np.unique(labels)
        if len(ids) == 1:
            break
        cents = _unit(np.stack([(turn_emb[labels == c] * speech_s[labels == c, None]).sum(axis=0) for c in ids]))
        sim = cents @ cents.T
        np.fill_diagonal(sim, -1.0)
        mass = np.array([speech_s[labels == c].sum() for c in ids])
        if mass.min() < params.min_speaker_s:
            a = int(np.argmin(mass))
            labels[labels == ids[a]] = ids[int(np.argmax(sim[a]))]
            continue
        a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[a, b] >= params.merge_similarity:
            labels[labels == ids[b]] = ids[a]
            continue
        new = ids[np.argmax(turn_emb @ cents.T, axis=1)]
        if np.array_equal(new, labels):
            break
        labels = new
    turns = _merge_equal([[s, e, int(c)] for (s, e, _), c in zip(turns, labels)])
    order = {c: i for i, c in enumerate(dict.fromkeys(t[2] for t in turns))}
    return _speaker_turns(turns, order, frame / sample_rate, duration), found


def _phrase_speakers(
    segments: Sequence[SegmentVoices], channel: np.ndarray, params: DiarizationParams
) -> np.ndarray | None:
    """Speaker centroids from the source's phrases (average linkage stopping at `phrase_similarity`, speakers with
    less than `min_speaker_s` of speech joining their nearest); None under two phrases."""
    weight = np.array([seg.speech[a:b].sum() * FRAME_S for seg in segments for a, b in seg.phrases])
    if len(weight) < 2:
        return None
    emb = np.concatenate([seg.phrase_embeddings for seg in segments if len(seg.phrases)]).astype(np.float64)
    emb = _unit(_unit(emb) - channel)
    labels = _absorb_small(_cluster(emb, params.phrase_similarity), emb, weight, params.min_speaker_s)
    return _unit(np.stack([(emb[labels == c] * weight[labels == c, None]).sum(axis=0) for c in np.unique(labels)]))


def diarize_source(
    segments: Sequence[SegmentVoices], params: DiarizationParams = DiarizationParams()
) -> tuple[list[list[SpeakerTurn]], int]:
    """Source-level diarization: the windows of all the segments of one source (in time order) clustered together
    (less `channel_share` of their mean, what the source's channel gives them all; average linkage on cosine
    similarity, stopping at `source_similarity`; clusters with less than
    `min_speaker_s` of speech join their nearest), then each segment's frames labelled with the source's speakers as
    `diarize` labels them within one utterance. A voice is one speaker in every segment, which a segment alone cannot
    say (too short to tell two voices apart, or one side of a call in each). Sources with more than
    MAX_SOURCE_WINDOWS windows are clustered on an evenly spaced subset, the rest going to the nearest speaker.

    Returns each segment's turns, tiling it, with source-level speaker ids numbered by first appearance ([] for a
    segment without speech frames), and the number of speakers."""
    counts = [len(s.windows) for s in segments]
    if not sum(counts):
        return [[] for _ in segments], 0
    emb = _unit(np.concatenate([s.embeddings for s in segments if len(s.windows)]).astype(np.float64))
    channel = params.channel_share * emb.mean(axis=0)
    emb = _unit(emb - channel)
    step = -(-len(emb) // MAX_SOURCE_WINDOWS)
    sub = emb[::step]
    labels = _cluster(sub, params.source_similarity, params.single_similarity)
    labels = _absorb_small(labels, sub, np.full(len(sub), params.hop_s * step), params.min_speaker_s)
    ids = np.unique(labels)
    centroids = _unit(np.stack([sub[labels == c].mean(axis=0) for c in ids]))
    phrase_centroids = _phrase_speakers(segments, channel, params)
    if phrase_centroids is not None and len(phrase_centroids) > len(centroids):
        centroids = phrase_centroids
    bounds = np.cumsum([0, *counts])
    frame_turns = [
        _label_turns(
            seg.speech,
            seg.windows,
            emb[a:b] @ centroids.T,
            params,
            seg.phrases,
            _unit(_unit(seg.phrase_embeddings.astype(np.float64)) - channel) @ centroids.T
            if len(seg.phrases)
            else None,
        )
        if b > a
        else []
        for seg, a, b in zip(segments, bounds[:-1], bounds[1:])
    ]
    order = {c: i for i, c in enumerate(dict.fromkeys(t[2] for turns in frame_turns for t in turns))}
    return [
        _speaker_turns(turns, order, FRAME_S, seg.duration_s) if turns else []
        for seg, turns in zip(segments, frame_turns)
    ], len(order)


def join_utterances(
    clips: Sequence[tuple[int, np.ndarray]], sample_rate: int, pause_s: float = 0.4
) -> tuple[np.ndarray, list[SpeakerTurn]]:
    """A dialogue from (speaker, waveform) clips separated by silence, with its reference turns (for evaluation)."""
    gap = np.zeros(int(round(pause_s * sample_rate)), dtype=np.float32)
    parts, ref, t = [], [], 0.0
    for k, (speaker, x) in enumerate(clips):
        if k:
            parts.append(gap)
            t += len(gap) / sample_rate
        parts.append(np.asarray(x, dtype=np.float32))
        ref.append(SpeakerTurn(speaker, t, t + len(x) / sample_rate))
        t += len(x) / sample_rate
    return np.concatenate(parts), ref


def speaker_raster(turns: Sequence[SpeakerTurn], n: int, speakers: list) -> np.ndarray:
    """(speakers, n) bool: who talks in each of the first `n` 10 ms frames, rows in the order of `speakers`."""
    grid = np.zeros((len(speakers), n), dtype=bool)
    for t in turns:
        grid[speakers.index(t.speaker), int(round(t.start_s / FRAME_S)) : int(round(t.end_s / FRAME_S))] = True
    return grid


def attribution_accuracy(reference: Sequence[SpeakerTurn], hypothesis: Sequence[SpeakerTurn]) -> float:
    """Share of reference speech time (where exactly one reference speaker talks) attributed to the right
    speaker under the best one-to-one mapping of hypothesis to reference speakers."""
    end = max([t.end_s for t in reference] + [t.end_s for t in hypothesis])
    n = int(round(end / FRAME_S)) + 1
    ref_ids, hyp_ids = sorted({t.speaker for t in reference}), sorted({t.speaker for t in hypothesis})
    ref, hyp = speaker_raster(reference, n, ref_ids), speaker_raster(hypothesis, n, hyp_ids)
    single = ref.sum(axis=0) == 1
    if not single.any():
        return 0.0
    overlap = (ref[:, None, :] & hyp[None, :, :] & single).sum(axis=2)
    rows, cols = linear_sum_assignment(-overlap)
    return float(overlap[rows, cols].sum() / single.sum())

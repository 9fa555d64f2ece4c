"""The S2 prompt layout, for inference and for training on the same layout.

    <|im_start|>system\\n convert the provided text to speech reference to the following:\\n\\nText:\\n
        <|speaker:0|>{reference text}\\n\\nSpeech:\\n {reference codes} <|im_end|>\\n
    <|im_start|>user\\n {text: speaker tags, vocal tags like [laugh]} <|im_end|>\\n
    <|im_start|>assistant\\n<|voice|> {codes} <|im_end|>

Without a reference the system turn is `convert the provided text to speech`. Several references are tagged
<|speaker:i|> in turn (unless their text has a tag) and their codes concatenated, as the reference does. Each
text piece is tokenized on its own, as the reference's Conversation does. For inference the rows stop after
<|voice|>; for training they go on with the target codes and the final <|im_end|>, which are the only tokens
learned (Eq. 2: m_t = 0 on the system prompt, the reference audio and the user turn).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from models.dual_ar.tokens import IM_END, IM_START, VOICE, TokenIds

WITH_REFERENCE = "convert the provided text to speech reference to the following:\n\nText:\n"
WITHOUT_REFERENCE = "convert the provided text to speech"
SPEECH_HEADER = "\n\nSpeech:\n"
SPEAKER_TAG = re.compile(r"<\|speaker:\d+\|>")
IGNORE = -100


@dataclass
class Reference:
    """A voice to clone: its transcript and its codec codes [N, T]."""

    text: str
    codes: np.ndarray | Tensor


@dataclass
class EncodedPrompt:
    """tokens: rows [N+1, T] (row 0 token ids, rows 1..N codes at audio positions, 0 elsewhere);
    loss_mask: [T] bool, True where token t is a training target (the assistant's codes and final <|im_end|>);
    audio_mask: [T] bool, True where token t is an audio frame (reference or target)."""

    tokens: Tensor
    loss_mask: Tensor
    audio_mask: Tensor

    def training_pair(self) -> tuple[Tensor, Tensor]:
        """(inputs, labels) [N+1, T-1] for next-token training: labels are the tokens shifted by one, IGNORE
        where nothing is learned; rows 1..N of labels keep the codes of learned audio frames only."""
        inputs, labels = self.tokens[:, :-1], self.tokens[:, 1:].clone()
        learned = self.loss_mask[1:]
        labels[0, ~learned] = IGNORE
        labels[1:, ~(learned & self.audio_mask[1:])] = IGNORE
        return inputs, labels


def _codes(codes, num_codebooks: int, codebook_size: int, what: str) -> Tensor:
    codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    if codes.ndim != 2 or codes.shape[0] != num_codebooks:
        raise ValueError(f"{what}: codes must be [{num_codebooks}, T], got {tuple(codes.shape)}")
    if codes.numel() and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(
            f"{what}: codes must lie in 0..{codebook_size - 1}, got {int(codes.min())}..{int(codes.max())}"
        )
    return codes


def build_prompt(
    tokenizer,
    ids: TokenIds,
    num_codebooks: int,
    text: str,
    references: Sequence[Reference] = (),
    target_codes: np.ndarray | Tensor | None = None,
) -> EncodedPrompt:
    """Rows of the inference prompt for `text` (target_codes None), or of a training sample whose assistant
    turn is `target_codes` [N, T] followed by <|im_end|>."""
    codebook_size = ids.semantic_end - ids.semantic_begin + 1
    pieces: list[tuple[str | Tensor, bool]] = []  # (text or codes [N, T], learned)

    def say(*texts: str) -> None:
        pieces.extend((t, False) for t in texts)

    say(f"{IM_START}system\n")
    if references:
        tagged = [
            r.text if SPEAKER_TAG.search(r.text) else f"<|speaker:{i}|>{r.text}" for i, r in enumerate(references)
        ]
        say(WITH_REFERENCE, "\n".join(tagged), SPEECH_HEADER)
        codes = [_codes(r.codes, num_codebooks, codebook_size, f"reference {i}") for i, r in enumerate(references)]
        pieces.append((torch.cat(codes, dim=1), False))
    else:
        say(WITHOUT_REFERENCE)
    say(f"{IM_END}\n", f"{IM_START}user\n", text, f"{IM_END}\n", f"{IM_START}assistant\n{VOICE}")
    if target_codes is not None:
        pieces.append((_codes(target_codes, num_codebooks, codebook_size, "target"), True))
        pieces.append((IM_END, True))

    rows, learned, audio = [], [], []
    for piece, learn in pieces:
        if isinstance(piece, str):
            token_ids = torch.tensor(tokenizer.encode(piece, add_special_tokens=False), dtype=torch.long)
            part = torch.zeros(num_codebooks + 1, len(token_ids), dtype=torch.long)
            part[0] = token_ids
        else:
            part = torch.cat([piece[:1] + ids.semantic_begin, piece])
        rows.append(part)
        learned.append(torch.full((part.shape[1],), learn))
        audio.append(torch.full((part.shape[1],), not isinstance(piece, str)))
    return EncodedPrompt(tokens=torch.cat(rows, dim=1), loss_mask=torch.cat(learned), audio_mask=torch.cat(audio))

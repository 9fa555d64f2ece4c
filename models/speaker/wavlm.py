"""WavLM x-vector speaker embeddings (`s2` profile): transformers `WavLMForXVector`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.checkpoints import check_hf_checkpoint, pick_device, pick_dtype, resolve_hf_checkpoint
from models.signal import resample, to_mono
from schemas.config import ModelSpec

DEFAULT_CHECKPOINT = "microsoft/wavlm-base-plus-sv"


class WavLMSpeakerEmbedder:
    """embed(waveforms, sample_rate) -> (n, xvector_output_dim) unit vectors."""

    sample_rate = 16000

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> WavLMSpeakerEmbedder:
        return cls(spec)

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str = "transcription.speaker_model") -> None:
        check_hf_checkpoint(spec.checkpoint or DEFAULT_CHECKPOINT, "WavLM speaker embedder", setting)

    def __init__(self, spec: ModelSpec):
        from transformers import AutoFeatureExtractor, WavLMForXVector

        checkpoint = spec.checkpoint or DEFAULT_CHECKPOINT
        path = resolve_hf_checkpoint(checkpoint, "WavLM speaker embedder", "transcription.speaker_model.checkpoint")
        self.model_id = f"wavlm:{checkpoint}"
        self.device = pick_device(spec.device)
        self.batch_size = spec.batch_size
        self.features = AutoFeatureExtractor.from_pretrained(path)
        self.model = (
            WavLMForXVector.from_pretrained(path, dtype=pick_dtype(spec.dtype, self.device)).to(self.device).eval()
        )
        self.dim = self.model.config.xvector_output_dim

    def embed(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        import torch

        out = np.zeros((len(waveforms), self.dim), dtype=np.float32)
        dtype = next(self.model.parameters()).dtype
        for k in range(0, len(waveforms), self.batch_size):
            audio = [resample(to_mono(x), sample_rate, self.sample_rate) for x in waveforms[k : k + self.batch_size]]
            inputs = self.features(
                audio, sampling_rate=self.sample_rate, padding=True, return_attention_mask=True, return_tensors="pt"
            )
            with torch.inference_mode():
                emb = self.model(
                    input_values=inputs["input_values"].to(self.device, dtype),
                    attention_mask=inputs["attention_mask"].to(self.device),
                ).embeddings.float()
                emb = emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-12)
            out[k : k + len(audio)] = emb.cpu().numpy()
        return out


# A WavLM x-vector of every part at a few thousand parameters (random weights): the tests' checkpoint and the GPU
# script's dry run, never for scoring.
TINY_WAVLM_XVECTOR = dict(
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
    conv_dim=(8, 8),
    conv_stride=(5, 4),
    conv_kernel=(10, 8),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    tdnn_dim=(8, 8),
    tdnn_kernel=(3, 1),
    tdnn_dilation=(1, 1),
    xvector_output_dim=12,
    num_buckets=16,
    max_bucket_distance=40,
    feat_extract_norm="layer",
)

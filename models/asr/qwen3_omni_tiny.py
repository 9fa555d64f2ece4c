"""The shape of a tiny Qwen3-Omni thinker (every part of the real architecture, a few thousand parameters wide): built
with random weights for the tests' checkpoints and the GPU script's dry run, never for transcription."""

from __future__ import annotations


def tiny_thinker_config(vocab_size: int, ids: dict[str, int]) -> dict:
    """Keyword arguments of `Qwen3OmniMoeThinkerConfig` for a tiny thinker over `vocab_size` tokens. `ids` names the
    special tokens: audio, audio_start, vision_start, image, video, and optionally user, pad and eos."""
    text = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        moe_intermediate_size=64,
        num_experts=2,
        num_experts_per_tok=1,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [2, 3, 3],
            "interleaved": True,
        },
    )
    text.update({f"{k}_token_id": ids[k] for k in ("pad", "eos") if k in ids})
    config = dict(
        audio_config=dict(
            num_mel_bins=128,
            encoder_layers=1,
            encoder_attention_heads=2,
            encoder_ffn_dim=32,
            d_model=16,
            output_dim=64,
            n_window=50,
            n_window_infer=100,
            downsample_hidden_size=8,
        ),
        vision_config=dict(
            depth=1,
            hidden_size=16,
            intermediate_size=32,
            num_heads=2,
            out_hidden_size=64,
            deepstack_visual_indexes=[0],
            num_position_embeddings=16,
        ),
        text_config=text,
    )
    config.update(
        {
            f"{k}_token_id": ids[k]
            for k in ("audio", "audio_start", "vision_start", "image", "video", "user")
            if k in ids
        }
    )
    return config

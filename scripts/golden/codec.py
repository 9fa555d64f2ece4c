"""Golden fixtures for our S2 codec (models/codec), made by the reference's own DAC at two seeded random configs.

Run by scripts/make_s2_golden.py in the reference's environment, with FISH_SPEECH_SRC (an export of
fishaudio/fish-speech at the pinned commit) and OUT (the folder to fill) set. For each config it writes OUT/<name>/:

  codec.pth   the reference model's state dict in the released layout (keys as the reference names them, its
              convolutions with the new weight-norm parametrisation, dac's VQ projections with weight_g/weight_v)
  codec.json  the config in our sidecar format (models/codec/config.py: CodecConfig fields)
  io.npz      input_<i> (float32 waveforms at 44.1 kHz), codes_<i> (`DAC.encode` of each input alone, [N, T]),
              latents_<i> (the encoder's continuous output inside that call, before the quantizer, [D, T * 4]: the
              encoder transformer's window changes these and, rarely, no code), audio_<i> (`DAC.from_indices` of
              those codes), random_codes / random_audio (codes drawn uniformly over every codebook, so that decoding
              reads rows the encoder never picks)

and OUT/released_layout.tsv.gz: key and shape of every tensor of the released configuration (configs/modded_dac_vq.yaml,
built on the meta device: no memory, no weights), in the reference's order.

Configs:
  tiny     widths of a few channels, 3 encoder blocks (strides 2,4,2) without transformer, a 3-block decoder, 1 semantic +
           3 residual codebooks; stored as {"state_dict": {"generator.<key>": ...}} beside a discriminator key, as a
           training checkpoint holds it, in float32
  reduced  the released structure (strides 2,4,8,8, the encoder transformer, downsampling 2,2, pre/post transformers,
           1 semantic + 9 residual codebooks, decoder rates 8,8,4,2) at reduced width; stored flat, as the reference's
           modded_dac.py loads s2-pro's codec.pth, in bfloat16 (the reference runs the same bf16-rounded values in
           float32) to keep the fixture small

Both use short attention windows so that a few frames exceed them: the encoder window is set through the partial's
`window_size` attribute, the very lookup by which the reference's EncoderBlock finds it (512 when absent).
Every parameter is redrawn with scales that keep activations of order one: the reference's own init (layer scales
1e-2 and 1e-6, weights of std 0.02) would leave transformers and ConvNeXt blocks contributing nothing measurable.
"""

from __future__ import annotations

import functools
import gc
import gzip
import json
import math
import os
from pathlib import Path

import reference_imports  # noqa: F401  (registers dac/audiotools and the fish-speech export before their imports)

# isort: split
import numpy as np
import torch
from fish_speech.models.dac.modded_dac import DAC, ModelArgs, WindowLimitedTransformer
from fish_speech.models.dac.rvq import DownsampleResidualVectorQuantize

OUT = Path(os.environ["OUT"])

CONFIGS = {
    "tiny": dict(
        sample_rate=44100,
        encoder_dim=2,
        encoder_rates=[2, 4, 2],
        encoder_transformer_layers=[0, 0, 0],
        encoder_window=512,
        encoder_head_dim=64,
        latent_dim=8,
        decoder_dim=8,
        decoder_rates=[4, 2, 2],
        downsample_factors=[2, 2],
        quantizer_layers=1,
        quantizer_heads=2,
        quantizer_head_dim=4,
        quantizer_ffn_dim=16,
        quantizer_window=3,
        semantic_codebook_size=32,
        codebook_size=16,
        residual_codebooks=3,
        codebook_dim=2,
        rope_base=10000.0,
        norm_eps=1e-5,
        random_init=True,
    ),
    "reduced": dict(
        sample_rate=44100,
        encoder_dim=4,  # the encoder transformer has width // 64 heads: 4 * 16 = 64 is the narrowest with one
        encoder_rates=[2, 4, 8, 8],
        encoder_transformer_layers=[0, 0, 0, 1],
        encoder_window=8,
        encoder_head_dim=16,
        latent_dim=16,
        decoder_dim=16,
        decoder_rates=[8, 8, 4, 2],
        downsample_factors=[2, 2],
        quantizer_layers=1,
        quantizer_heads=2,
        quantizer_head_dim=8,
        quantizer_ffn_dim=32,
        quantizer_window=2,
        semantic_codebook_size=64,
        codebook_size=32,
        residual_codebooks=9,
        codebook_dim=4,
        rope_base=10000.0,
        norm_eps=1e-5,
        random_init=True,
    ),
}
INPUT_LENGTHS = {"tiny": [300, 256, 1000], "reduced": [3000, 6000]}
STORED_DTYPE = {"tiny": torch.float32, "reduced": torch.bfloat16}
RANDOM_FRAMES = 2


def build_reference(c: dict) -> DAC:
    general = functools.partial(
        ModelArgs,
        block_size=8192,
        n_local_heads=-1,
        head_dim=c["encoder_head_dim"],
        rope_base=c["rope_base"],
        norm_eps=c["norm_eps"],
        dropout_rate=0.1,
        attn_dropout_rate=0.1,
        channels_first=True,
    )
    general.window_size = c["encoder_window"]

    def quantizer_transformer() -> WindowLimitedTransformer:
        args = ModelArgs(
            block_size=2048,
            n_layer=c["quantizer_layers"],
            n_head=c["quantizer_heads"],
            dim=c["latent_dim"],
            intermediate_size=c["quantizer_ffn_dim"],
            n_local_heads=-1,
            head_dim=c["quantizer_head_dim"],
            rope_base=c["rope_base"],
            norm_eps=c["norm_eps"],
            dropout_rate=0.1,
            attn_dropout_rate=0.1,
            channels_first=True,
        )
        return WindowLimitedTransformer(
            causal=True, window_size=c["quantizer_window"], input_dim=c["latent_dim"], config=args
        )

    quantizer = DownsampleResidualVectorQuantize(
        input_dim=c["latent_dim"],
        n_codebooks=c["residual_codebooks"],
        codebook_size=c["codebook_size"],
        codebook_dim=c["codebook_dim"],
        quantizer_dropout=0.5,
        downsample_factor=c["downsample_factors"],
        pre_module=quantizer_transformer(),
        post_module=quantizer_transformer(),
        semantic_codebook_size=c["semantic_codebook_size"],
    )
    return DAC(
        encoder_dim=c["encoder_dim"],
        encoder_rates=c["encoder_rates"],
        latent_dim=c["latent_dim"],
        decoder_dim=c["decoder_dim"],
        decoder_rates=c["decoder_rates"],
        quantizer=quantizer,
        sample_rate=c["sample_rate"],
        causal=True,
        encoder_transformer_layers=c["encoder_transformer_layers"],
        decoder_transformer_layers=[0] * len(c["decoder_rates"]),
        transformer_general_config=general,
    ).eval()


def redraw(model: torch.nn.Module, gen: torch.Generator, dtype: torch.dtype) -> None:
    """Every parameter drawn anew (see the module docstring), then rounded to the dtype it is stored in."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            owner, leaf = name.rsplit(".", 1)
            if leaf == "alpha":  # Snake
                p.copy_(0.5 + 1.5 * torch.rand(p.shape, generator=gen))
            elif leaf == "gamma":  # LayerScale, ConvNeXt
                p.copy_(0.3 + 0.5 * torch.rand(p.shape, generator=gen))
            elif leaf in ("original0", "weight_g"):  # weight-norm magnitudes: each filter's norm
                p.copy_(0.6 + 0.6 * torch.rand(p.shape, generator=gen))
            elif leaf == "bias":
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif owner.endswith("norm"):  # RMSNorm, LayerNorm
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif owner.endswith("codebook"):
                p.copy_(torch.randn(p.shape, generator=gen))
            else:  # weights and weight-norm directions
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(math.prod(p.shape[1:])))
            p.copy_(p.to(dtype).float())


def waveform(n: int, rng: np.random.Generator) -> np.ndarray:
    """Changing sound, so that frames differ: a chirp under a moving envelope, plus noise bursts."""
    t = np.arange(n) / 44100
    f0, f1 = rng.uniform(100, 400), rng.uniform(2000, 8000)
    chirp = np.sin(2 * np.pi * (f0 + (f1 - f0) * t / t[-1] / 2) * t) * (
        0.2 + 0.3 * np.abs(np.sin(2 * np.pi * rng.uniform(5, 30) * t))
    )
    bursts = rng.standard_normal(n) * np.repeat(rng.uniform(0, 0.4, n // 64 + 1), 64)[:n]
    return (chirp + bursts).astype(np.float32)


def calibrate_output(model: DAC, codes: torch.Tensor, dtype: torch.dtype) -> None:
    """Scale the last convolution so that the signal entering tanh has std 0.5: a saturated tanh would hide
    differences in everything before it."""
    last = model.decoder.model[-2].conv
    seen = []
    handle = last.register_forward_hook(lambda _m, _i, out: seen.append(out.std().item()))
    with torch.no_grad():
        model.from_indices(codes.clone())
        handle.remove()
        g = last.parametrizations.weight.original0
        g.mul_(0.5 / seen[0])
        g.copy_(g.to(dtype).float())


def make(name: str, c: dict, seed: int) -> None:
    torch.manual_seed(seed)
    model = build_reference(c)
    redraw(model, torch.Generator().manual_seed(seed), STORED_DTYPE[name])
    sizes = [c["semantic_codebook_size"]] + [c["codebook_size"]] * c["residual_codebooks"]
    random_codes = torch.stack(
        [
            torch.randint(0, s, (RANDOM_FRAMES,), generator=torch.Generator().manual_seed(seed + k))
            for k, s in enumerate(sizes)
        ]
    )
    calibrate_output(model, random_codes[None], STORED_DTYPE[name])
    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.to(STORED_DTYPE[name]) for k, v in model.state_dict().items()}
    if name == "tiny":
        state = {
            "state_dict": {
                "discriminator.mpd.0.weight": torch.zeros(2),
                **{f"generator.{k}": v for k, v in state.items()},
            }
        }
    torch.save(state, out / "codec.pth")
    (out / "codec.json").write_text(json.dumps(c, indent=1) + "\n")

    rng = np.random.default_rng(seed)
    inputs = [waveform(n, rng) for n in INPUT_LENGTHS[name]]
    arrays: dict[str, np.ndarray] = {}
    latents = []
    hook = model.encoder.register_forward_hook(lambda _m, _i, out: latents.append(out[0].float().numpy()))
    with torch.no_grad():
        for i, x in enumerate(inputs):
            codes, frames = model.encode(torch.from_numpy(x)[None, None], torch.tensor([len(x)]))
            audio = model.from_indices(codes.clone())
            assert codes.shape[-1] == frames.item() == math.ceil(len(x) / model.frame_length)
            arrays.update(
                {
                    f"input_{i}": x,
                    f"codes_{i}": codes[0].numpy().astype(np.int16),
                    f"latents_{i}": latents.pop(),
                    f"audio_{i}": audio[0, 0].numpy(),
                }
            )
        hook.remove()
        # the reference is causal: the same inputs right-padded into one batch give the same codes
        batch = torch.zeros(len(inputs), 1, max(INPUT_LENGTHS[name]))
        for i, x in enumerate(inputs):
            batch[i, 0, : len(x)] = torch.from_numpy(x)
        codes, frames = model.encode(batch, torch.tensor(INPUT_LENGTHS[name]))
        for i in range(len(inputs)):
            assert np.array_equal(codes[i, :, : frames[i]].numpy(), arrays[f"codes_{i}"]), (
                f"{name}: batch differs for input {i}"
            )
        arrays["random_codes"] = random_codes.numpy().astype(np.int16)
        arrays["random_audio"] = model.from_indices(random_codes[None].clone())[0, 0].numpy()
    np.savez_compressed(out / "io.npz", **arrays)
    distinct = [
        len(np.unique(np.concatenate([arrays[f"codes_{i}"][row] for i in range(len(inputs))])))
        for row in range(len(sizes))
    ]
    audio_std = [float(arrays[f"audio_{i}"].std()) for i in range(len(inputs))]
    print(
        f"{name}: {len(model.state_dict())} keys, distinct codes per codebook {distinct}, decoded std {np.round(audio_std, 3).tolist()}"
    )


# configs/modded_dac_vq.yaml in our sidecar's terms
RELEASED = dict(
    CONFIGS["reduced"],
    encoder_dim=64,
    encoder_transformer_layers=[0, 0, 0, 4],
    encoder_window=512,
    encoder_head_dim=64,
    latent_dim=1024,
    decoder_dim=1536,
    quantizer_layers=8,
    quantizer_heads=16,
    quantizer_head_dim=64,
    quantizer_ffn_dim=3072,
    quantizer_window=128,
    semantic_codebook_size=4096,
    codebook_size=1024,
    codebook_dim=8,
    random_init=False,
)


def write_released_layout() -> None:
    with torch.device("meta"):
        state = build_reference(RELEASED).state_dict()
    lines = "".join(f"{k}\t{','.join(map(str, v.shape))}\n" for k, v in state.items())
    with gzip.GzipFile(OUT / "released_layout.tsv.gz", "wb", mtime=0) as f:  # no timestamp: the same bytes every run
        f.write(lines.encode())
    print(f"released: {len(state)} keys, {sum(v.numel() for v in state.values()):,} parameters")


def main() -> None:
    write_released_layout()
    for seed, (name, c) in enumerate(CONFIGS.items()):
        make(name, c, seed)
        gc.collect()  # each reference transformer holds a 1 GiB mask: one config at a time


if __name__ == "__main__":
    main()

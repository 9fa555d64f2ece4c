"""Discriminators, losses and the generator's training path on tiny shapes: shapes, gradients that flow, and losses
that are zero where they must be."""

from __future__ import annotations

import pytest
import torch

from models.codec.checkpoint import random_codec
from models.codec.config import CodecConfig
from schemas.codec_training import DiscriminatorConfig
from training.codec.discriminators import (
    Discriminators,
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
    MultiScaleSTFTDiscriminator,
)
from training.codec.generator import CodecGenerator, codebook_perplexity, residual_kept
from training.codec.losses import (
    MultiScaleMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    semantic_loss,
)

FRAME = CodecConfig.tiny().frame_length


@pytest.mark.parametrize(
    ("make", "count"),
    [
        (lambda: MultiPeriodDiscriminator([2, 3, 5, 7, 11], 2), 5),
        (lambda: MultiResolutionDiscriminator([512, 256, 128], 2), 3),
        (lambda: MultiScaleSTFTDiscriminator([256, 128], 2), 2),
    ],
    ids=["period", "resolution", "stft"],
)
def test_each_discriminator_scores_every_sub_band_and_passes_gradients(make, count):
    torch.manual_seed(0)
    d = make()
    audio = torch.randn(2, 1, 3000, requires_grad=True)  # not a multiple of any period: reflect-padded
    outputs = d(audio)
    assert len(outputs) == count
    for logits, features in outputs:
        assert logits.shape[0] == 2 and logits.shape[1] == 1 and torch.isfinite(logits).all()
        assert len(features) >= 4 and all(f.shape[0] == 2 for f in features)
    sum(logits.sum() for logits, _ in outputs).backward()
    assert audio.grad is not None and audio.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())


def test_period_discriminator_folds_by_its_period():
    d = MultiPeriodDiscriminator([2, 5], 1)
    (logits2, _), (logits5, _) = d(torch.randn(1, 1, 900))
    assert logits2.shape[-1] == 2 and logits5.shape[-1] == 5


def test_the_three_together_in_a_fixed_order():
    config = DiscriminatorConfig(periods=[2, 3], resolutions=[256], stft_sizes=[128, 64], channels=1)
    outputs = Discriminators(config)(torch.randn(2, 2048))
    assert len(outputs) == 2 + 1 + 2
    assert [o[0].shape[-1] for o in outputs[:2]] == [2, 3]


def test_mel_loss_is_zero_for_equal_audio_and_has_gradients_otherwise():
    mel = MultiScaleMelLoss(44100, [64, 256, 1024], [10, 40, 80])
    x = torch.randn(2, 4096)
    assert float(mel(x, x)) == 0.0
    y = (x + 0.1 * torch.randn_like(x)).requires_grad_()
    loss = mel(y, x)
    loss.backward()
    assert float(loss) > 0 and y.grad.abs().sum() > 0
    assert float(mel(0.5 * x, x)) > float(mel(0.9 * x, x)) > 0  # farther apart, larger


def _outputs(value: float, features: list[torch.Tensor] | None = None):
    return [(torch.full((2, 1, 4, 3), value), features or [torch.ones(2, 3, 4)])]


@pytest.mark.parametrize("kind", ["least_squares", "hinge"])
def test_adversarial_losses_vanish_at_their_targets(kind):
    real, fake = (1.0, 0.0) if kind == "least_squares" else (1.5, -1.5)
    assert float(discriminator_loss(_outputs(real), _outputs(fake), kind)) == 0.0
    assert float(discriminator_loss(_outputs(fake), _outputs(real), kind)) > 0
    assert float(generator_adversarial_loss(_outputs(1.0 if kind == "least_squares" else 1.5), kind)) == 0.0
    assert float(generator_adversarial_loss(_outputs(-1.0), kind)) > 0


def test_feature_matching_is_zero_for_equal_features_and_moves_only_the_decoded_side():
    real_f = torch.randn(2, 3, 5, requires_grad=True)
    fake_f = real_f.detach().clone().requires_grad_()
    assert float(feature_matching_loss(_outputs(0.0, [real_f]), _outputs(0.0, [fake_f]))) == 0.0
    moved = (fake_f + 1).detach().requires_grad_()
    loss = feature_matching_loss(_outputs(0.0, [real_f]), _outputs(0.0, [moved]))
    loss.backward()
    assert float(loss) == pytest.approx(1.0) and moved.grad.abs().sum() > 0 and real_f.grad is None


def test_semantic_loss_cosine_ignores_scale_mse_does_not():
    t = torch.randn(2, 7, 16)
    assert float(semantic_loss(t, t, "cosine")) == pytest.approx(0.0, abs=1e-6)
    assert float(semantic_loss(3 * t, t, "cosine")) == pytest.approx(0.0, abs=1e-6)
    assert float(semantic_loss(-t, t, "cosine")) == pytest.approx(2.0)
    assert float(semantic_loss(t, t, "mse")) == 0.0 and float(semantic_loss(3 * t, t, "mse")) > 0


@pytest.fixture
def generator():
    return CodecGenerator(random_codec(CodecConfig.tiny(), seed=1), teacher_dim=12).train()


def test_training_path_quantizes_as_inference_does_and_passes_gradients_straight_through(generator):
    torch.manual_seed(0)
    audio = 0.3 * torch.randn(2, 2 * FRAME)
    out = generator(audio, torch.tensor([9, 9]))
    codec = generator.codec
    with torch.no_grad():
        codes, _ = codec.encode(audio, torch.tensor([2 * FRAME, 2 * FRAME]))
        decoded = codec.decode(codes)
    assert torch.equal(out.codes, codes)  # the codes users get
    torch.testing.assert_close(out.audio, decoded, atol=1e-4, rtol=1e-4)  # the audio users get
    assert out.semantic.shape == (2, 2, 12)
    out.audio.pow(2).mean().backward(retain_graph=True)  # the reconstruction alone
    first_conv = codec.encoder.block[0].conv.parametrizations.weight.original1
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0  # straight through the quantizer
    book = codec.quantizer.quantizer.quantizers[8].codebook.weight
    assert book.grad is None or book.grad.abs().sum() == 0  # rows learn from the codebook loss only
    (out.codebook + out.semantic.mean()).backward()
    assert book.grad.abs().sum() > 0 and generator.semantic_head.weight.grad.abs().sum() > 0
    assert float(out.commitment) > 0 and float(out.codebook) == pytest.approx(float(out.commitment), rel=1e-5)


def test_quantizer_dropout_uses_only_the_kept_codebooks(generator):
    audio = 0.3 * torch.randn(1, FRAME)
    with torch.no_grad():
        full = generator(audio, torch.tensor([9]))
        none = generator(audio, torch.tensor([0]))
        codec = generator.codec
        semantic_only = codec.quantizer.semantic_quantizer.decode(full.codes[:, :1])
        expected = codec.decoder(codec.quantizer.upsample(codec.quantizer.post_module(semantic_only)))[:, 0]
    torch.testing.assert_close(none.audio, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(none.audio, full.audio)
    draws = residual_kept(1000, 9, 0.5, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert 0.5 < float((draws == 9).float().mean()) < 0.6 and int(draws.min()) == 0  # 50% + 50%/10 keep all


def test_decoder_only_training_freezes_encoder_and_quantizer():
    g = CodecGenerator(random_codec(CodecConfig.tiny()), None, frozen_front=True).train()
    out = g(0.3 * torch.randn(1, FRAME), torch.tensor([9]))
    out.audio.pow(2).mean().backward()
    assert out.semantic is None
    assert all(p.grad is None for p in [*g.codec.encoder.parameters(), *g.codec.quantizer.parameters()])
    assert all(p.grad is not None for p in g.codec.decoder.parameters())


def test_codebook_perplexity_counts_equally_used_entries():
    codes = torch.stack([torch.arange(8) % 4, torch.zeros(8, dtype=torch.long)])[None]  # [1, 2, 8]
    assert codebook_perplexity(codes, [16, 16]) == pytest.approx([4.0, 1.0])

"""GRPO arithmetic against hand-computed values (Eq. 5-8, k3 KL), the sampler's distribution as pi, and the reference
policy: the model with its adapters disabled gives the base model's log-probs bit for bit."""

from __future__ import annotations

import math

import pytest
import torch

from models.dual_ar.sampling import SamplingParams
from models.dual_ar.tokens import TokenIds
from schemas.training import LoraConfig
from tests.training.grpo.conftest import ACOUSTIC, SEMANTIC
from training.grpo.advantages import group_advantages, taking_part
from training.grpo.loop import adapters_disabled
from training.grpo.losses import TokenLogProbs, grpo_loss, k3_kl, sampled_logprobs
from training.grpo.rollout import Prompt, RolloutGenerator, pad_batch
from training.lora import apply_lora

SIZES = [SEMANTIC, ACOUSTIC, ACOUSTIC, ACOUSTIC]
L = math.log


def test_advantages_subtract_the_group_mean_only():
    rewards = torch.tensor([[1.0, 2.0, 3.0, 6.0], [0.5, 0.5, 0.5, 0.5], [0.0, 1.0, 0.0, 1.0]])
    expected = torch.tensor([[-2.0, -1.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0], [-0.5, 0.5, -0.5, 0.5]])
    assert torch.equal(group_advantages(rewards), expected)  # no division by the std (Dr.GRPO)
    with pytest.raises(ValueError, match="G >= 2"):
        group_advantages(torch.ones(3, 1))


def test_k3_kl_by_hand():
    # r = pi_ref / pi; k3 = r - log r - 1
    logp = torch.tensor([L(0.5), L(0.25), L(0.3)])
    ref = torch.tensor([L(0.25), L(0.5), L(0.3)])
    # r = 0.5: 0.5 + 0.693147 - 1 = 0.193147;  r = 2: 2 - 0.693147 - 1 = 0.306853;  r = 1: 0
    assert k3_kl(logp, ref).tolist() == pytest.approx([0.193147, 0.306853, 0.0], abs=1e-6)


def _lp(slow, slow_rollout, fast, fast_rollout, grad=False) -> TokenLogProbs:
    return TokenLogProbs(
        slow=torch.tensor([L(p) for p in slow], requires_grad=grad),
        slow_rollout=torch.tensor(slow_rollout),
        fast=torch.tensor([[L(p) for p in row] for row in fast]).view(-1, 2).requires_grad_(grad),
        fast_rollout=torch.tensor(fast_rollout, dtype=torch.long),
    )


def test_advantages_drop_the_rollouts_that_were_not_scored():
    rewards = torch.tensor([[1.0, 9.0, 3.0, 5.0], [2.0, 0.0, 0.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    scored = torch.tensor([[True, False, True, True], [True, False, False, False], [True, True, True, True]])
    # group 0: the mean of 1, 3, 5 (the failed 9 takes no part); group 1: one scored rollout, no baseline: nothing
    expected = torch.tensor([[-2.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [-1.5, -0.5, 0.5, 1.5]])
    assert torch.equal(group_advantages(rewards, scored), expected)
    assert taking_part(scored).tolist() == [[True, False, True, True], [False] * 4, [True] * 4]


def _two_lengths(length_norm: str) -> TokenLogProbs:
    """Rollouts of 2 and 20 slow tokens (1 and 19 frames of K = 2 fast tokens), both with advantage -1 and no KL:
    the gradient of the loss on each log pi, by rollout."""
    slow_rollout = [0] * 2 + [1] * 20
    fast_rollout = [0] * 1 + [1] * 19
    policy = _lp([0.5] * 22, slow_rollout, [[0.5, 0.5]] * 20, fast_rollout, grad=True)
    reference = _lp([0.5] * 22, slow_rollout, [[0.5, 0.5]] * 20, fast_rollout)
    parts = grpo_loss(
        policy,
        reference,
        torch.tensor([-1.0, -1.0]),
        beta=0.0,
        gamma=1.0,
        normaliser=2,
        length_norm=length_norm,
        max_new_tokens=24,
    )
    parts.loss.backward()
    return policy


def test_constant_length_norm_gives_every_token_the_same_gradient_whatever_its_rollouts_length():
    policy = _two_lengths("constant")
    # every token: -A / (normaliser x max_new_tokens) = 1 / (2 x 24); fast: 1 / (2 x 24 x K)
    assert policy.slow.grad.tolist() == pytest.approx([1 / 48] * 22)
    assert policy.fast.grad.flatten().tolist() == pytest.approx([1 / 96] * 40)
    # per-response normalisation: the 20-token rollout's tokens get a tenth of the 2-token one's
    policy = _two_lengths("sequence")
    short, long = policy.slow.grad[:2], policy.slow.grad[2:]
    assert short.tolist() == pytest.approx([1 / 4] * 2) and long.tolist() == pytest.approx([1 / 40] * 20)


def test_a_dropped_rollout_adds_nothing_to_the_loss():
    policy = _lp([0.5, 0.25, 0.5], [0, 0, 1], [[0.5, 0.5]], [0], grad=True)
    reference = _lp([0.25, 0.25, 0.25], [0, 0, 1], [[0.5, 0.25]], [0])
    kwargs = dict(beta=0.1, gamma=1.0, normaliser=2, length_norm="constant", max_new_tokens=4)
    both = grpo_loss(policy, reference, torch.tensor([1.0, 0.0]), **kwargs)
    first = grpo_loss(policy, reference, torch.tensor([1.0, 0.0]), kept=torch.tensor([True, False]), **kwargs)
    # rollout 1 has advantage 0 but a KL term (pi 0.5 vs pi_ref 0.25): kept it adds it, dropped it adds nothing
    assert float(both.loss) > float(first.loss)
    assert float(first.loss) == pytest.approx(float(both.slow[0] + both.fast[0]) / 2)
    first.loss.backward()
    assert policy.slow.grad[2] == 0


def test_slow_and_fast_losses_by_hand():
    # rollout 0 (A = +1): 2 slow tokens, 1 frame of K = 2 fast tokens; rollout 1 (A = -1): 1 slow token, no frame
    policy = _lp([0.5, 0.25, 0.5], [0, 0, 1], [[0.5, 0.5]], [0], grad=True)
    reference = _lp([0.25, 0.25, 0.5], [0, 0, 1], [[0.5, 0.25]], [0])
    parts = grpo_loss(
        policy,
        reference,
        torch.tensor([1.0, -1.0]),
        beta=0.1,
        gamma=0.5,
        normaliser=2,
        length_norm="sequence",
        max_new_tokens=8,
    )
    # k3 where pi = 0.5, pi_ref = 0.25: 0.193147; elsewhere pi = pi_ref: 0
    # L_slow,0 = 1/2 [(-log .5 + 0.1 * 0.193147) + (-log .25)] = 1/2 (0.693147 + 0.019315 + 1.386294) = 1.049378
    # L_slow,1 = 1/1 [-(-1) log .5]                                                                   = -0.693147
    # L_fast,0 = 1/(1 frame x 2) [(-log .5) + (-log .5 + 0.1 * 0.193147)] = 1/2 (1.386294 + 0.019315)  = 0.702804
    # L_fast,1 = 0 (no frames)
    # L = [(1.049378 + 0.5 * 0.702804) + (-0.693147)] / 2                                             = 0.353817
    assert parts.slow.tolist() == pytest.approx([1.049378, -0.693147], abs=1e-6)
    assert parts.fast.tolist() == pytest.approx([0.702804, 0.0], abs=1e-6)
    assert parts.kl_slow.tolist() == pytest.approx([0.193147 / 2, 0.0], abs=1e-6)
    assert parts.kl_fast.tolist() == pytest.approx([0.193147 / 2, 0.0], abs=1e-6)
    assert float(parts.loss) == pytest.approx(0.353817, abs=1e-6)
    parts.loss.backward()
    # d/d log pi of rollout 0's first slow token: 1/normaliser x 1/S_0 x (-A + beta (1 - r)), r = 0.5
    #   = 1/2 x 1/2 x (-1 + 0.1 x 0.5) = -0.2375; rollout 1's token: 1/2 x 1/1 x (+1) = 0.5
    assert policy.slow.grad.tolist() == pytest.approx([-0.2375, -0.25, 0.5], abs=1e-6)
    # fast tokens of rollout 0: 1/2 x 1/2 x 0.5 (gamma) x (-1 + beta (1 - r)): r = 1 -> -0.125, r = 0.5 -> -0.11875
    assert policy.fast.grad[0].tolist() == pytest.approx([-0.125, -0.11875], abs=1e-6)


def _batch(model, tokenizer, ids, seed=0, n=3):
    generator = RolloutGenerator(model, tokenizer, ids, SIZES, SamplingParams(1.0, 1.0, 64, 0), 6)
    rollouts = generator.rollouts([Prompt("p", "<|speaker:0|>Hi there.")] * n, list(range(seed, seed + n)))
    return pad_batch([generator.training_pair(r) for r in rollouts]), rollouts


def test_log_probs_are_the_samplers_distribution(tiny_model, tokenizer):
    model, (tok, ids) = tiny_model.eval(), tokenizer
    (inputs, labels), rollouts = _batch(model, tok, ids)
    lp = sampled_logprobs(model, inputs, labels, codebook_sizes=SIZES, im_end_id=ids.im_end, temperature=0.7)
    with torch.no_grad():
        out = model(inputs, labels)
    allowed = [*range(ids.semantic_begin, ids.semantic_begin + SEMANTIC), ids.im_end]
    learned = labels[:, 0] != -100
    slow = (out.token_logits[learned][:, allowed] / 0.7).log_softmax(-1)
    index = torch.tensor([allowed.index(int(t)) for t in labels[:, 0][learned]])
    assert torch.allclose(lp.slow, slow.gather(-1, index[:, None])[:, 0], atol=1e-5)
    # one slow token per frame, plus <|im_end|> for each rollout that ended with it
    assert len(lp.slow) == sum(r.frames + r.ended for r in rollouts)
    fast = (out.codebook_logits[:, 1:, :ACOUSTIC] / 0.7).log_softmax(-1)
    assert torch.allclose(lp.fast, fast.gather(-1, out.codebook_labels[:, 1:, None])[..., 0], atol=1e-5)
    assert lp.fast.shape == (sum(r.frames for r in rollouts), 3)


def test_disabled_adapters_give_the_base_models_log_probs_exactly(tiny_model_dir, tokenizer):
    from models.dual_ar.checkpoint import from_s2_checkpoint

    tok, _ = tokenizer
    base = from_s2_checkpoint(tiny_model_dir)[0]
    policy = apply_lora(from_s2_checkpoint(tiny_model_dir)[0], LoraConfig(enabled=True))
    names = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert names and all(".lora_" in n and any(f".{t}." in n for t in ("w1", "w2", "w3")) for n in names)
    with torch.no_grad():  # trained-looking adapters: B away from its zero init
        for n, p in policy.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))) * 0.05)
    ids = TokenIds.from_tokenizer(tok, SEMANTIC)
    (inputs, labels), _ = _batch(base, tok, ids, seed=7)

    def logprobs(model):
        with torch.no_grad():
            return sampled_logprobs(model, inputs, labels, codebook_sizes=SIZES, im_end_id=ids.im_end, temperature=1.0)

    want = logprobs(base)
    adapted = logprobs(policy)
    assert not torch.allclose(adapted.slow, want.slow) and not torch.allclose(adapted.fast, want.fast)
    with adapters_disabled(policy):
        reference = logprobs(policy)
    assert torch.equal(reference.slow, want.slow) and torch.equal(reference.fast, want.fast)
    assert all(p.requires_grad for n, p in policy.named_parameters() if n in names)  # adapters train again
    assert torch.equal(logprobs(policy).slow, adapted.slow)

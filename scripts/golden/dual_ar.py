"""Golden fixture of the Dual-AR model: tiny seeded weights in the released format and what the reference computes
with them (run by scripts/make_s2_golden.py in the reference's environment; $OUT is tests/data/golden/dual_ar).

Writes
  config.json                               released layout (fish_qwen3_omni); the fast AR narrower than the slow
                                            one, so that its input projection is exercised
  model.safetensors.index.json + 2 shards   bfloat16, keys text_model.model.* / audio_decoder.* (what the reference's
                                            loader remaps)
  golden.safetensors                        inputs and the reference's outputs, float32 / int64:
    train.{a,b}.{tokens,labels}             two training samples [N+1, T]
    train.{a,b}.{token_logits,codebook_logits}   DualARTransformer.forward on each alone
    prompt.tokens, prompt.{logits,hidden}   forward_generate over a prompt (all positions; codebook embeddings
                                            scaled by 1/sqrt(N+1)), hidden after the final norm
    fast.codes, fast.logits                 the fast AR stepped through its KV cache from the prompt's last hidden
                                            state, fed these codes: logits for codebooks 1..N-1
    generate.{i}.tokens                     inference.generate's new columns [N+1, G] for the settings in golden.json
  golden.json                               ids and sampling settings of the generate runs

The weights are drawn at a larger scale than the reference's init (so that logits are far from uniform), rounded
to bfloat16 and run in float32: the stored bfloat16 tensors are exactly the weights the reference ran with.
The reference's environment has no tokenizers library, so no tokenizer is written: the token ids follow the layout
of models.dual_ar.tiny with 16 semantic tokens (byte-level base, <|im_end|> 258, semantic 268..283, vocabulary 320),
and the tests attach that tokenizer.
"""

from __future__ import annotations

import json
import math
import os
import sys
import types
from pathlib import Path

import reference_imports  # noqa: F401  (puts the reference on sys.path)
import torch
from safetensors.torch import save_file

OUT = Path(os.environ["OUT"])
IM_END, SEMANTIC_BEGIN, CODES, N, VOCAB = 258, 268, 16, 4, 320
CONFIG = {
    "model_type": "fish_qwen3_omni",
    "semantic_start_token_id": SEMANTIC_BEGIN,
    "semantic_end_token_id": SEMANTIC_BEGIN + CODES - 1,
    "text_config": {
        "vocab_size": VOCAB,
        "n_layer": 2,
        "n_head": 4,
        "n_local_heads": 2,
        "head_dim": 8,
        "dim": 32,
        "intermediate_size": 48,
        "rope_base": 1000000,
        "norm_eps": 1e-6,
        "max_seq_len": 64,
        "attention_qk_norm": True,
        "tie_word_embeddings": True,
    },
    "audio_decoder_config": {
        "vocab_size": CODES,
        "num_codebooks": N,
        "n_layer": 2,
        "dim": 24,
        "n_head": 3,
        "n_local_heads": 1,
        "head_dim": 8,
        "intermediate_size": 40,
        "attention_qk_norm": False,
        "text_dim": 32,
    },
}
GENERATE = [
    {"seed": 11, "temperature": 0.8, "top_p": 0.8, "top_k": 30, "max_new_tokens": 24},
    {"seed": 12, "temperature": 1.0, "top_p": 0.9, "top_k": 5, "max_new_tokens": 24},
]


def build_model():
    from fish_speech.models.text2semantic.llama import BaseModelArgs, DualARTransformer

    (OUT / "config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    model = DualARTransformer(BaseModelArgs.from_pretrained(str(OUT / "config.json")))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith("norm.weight"):
                value = 1 + 0.3 * noise
            elif "embeddings" in name:
                value = 0.5 * noise
            elif p.ndim == 2:
                value = noise / math.sqrt(p.shape[1])
            else:
                value = 0.1 * noise
            p.copy_(value.bfloat16().float())
    return model.eval()


def save_released(model) -> None:
    """The state dict under the released names, text and audio parts in separate shards."""
    shards: dict[str, dict[str, torch.Tensor]] = {
        "model-00001-of-00002.safetensors": {},
        "model-00002-of-00002.safetensors": {},
    }
    for key, t in model.state_dict().items():
        if key.startswith("codebook_embeddings."):
            name, file = "audio_decoder." + key, "model-00002-of-00002.safetensors"
        elif key.startswith("fast_"):
            name, file = "audio_decoder." + key[len("fast_") :], "model-00002-of-00002.safetensors"
        else:
            name, file = "text_model.model." + key, "model-00001-of-00002.safetensors"
        shards[file][name] = t.bfloat16().contiguous()
    for file, tensors in shards.items():
        save_file(tensors, str(OUT / file), metadata={"format": "pt"})
    index = {
        "metadata": {"total_size": sum(t.nbytes for s in shards.values() for t in s.values())},
        "weight_map": {name: file for file, s in shards.items() for name in s},
    }
    (OUT / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def training_sample(text: list[int], reference: torch.Tensor | None, target: torch.Tensor):
    """(tokens, labels) [N+1, T]: text, optional reference audio (not learned), more text, target audio + <|im_end|>
    (learned), shifted by one as the reference's dataset does."""
    parts = [(torch.tensor(text[:3]), None, False)]
    if reference is not None:
        parts.append((reference[0] + SEMANTIC_BEGIN, reference, False))
    parts += [
        (torch.tensor(text[3:]), None, False),
        (target[0] + SEMANTIC_BEGIN, target, True),
        (torch.tensor([IM_END]), None, True),
    ]
    rows, learned = [], []
    for ids, codes, learn in parts:
        block = torch.zeros(N + 1, len(ids), dtype=torch.long)
        block[0] = ids
        if codes is not None:
            block[1:] = codes
        rows.append(block)
        learned.append(torch.full((len(ids),), learn))
    full, learned = torch.cat(rows, 1), torch.cat(learned)
    tokens, labels = full[:, :-1], full[:, 1:].clone()
    labels[:, ~learned[1:]] = -100
    labels[1:, labels[0] == IM_END] = -100
    return tokens, labels


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    model = build_model()
    save_released(model)
    g = torch.Generator().manual_seed(1)
    out: dict[str, torch.Tensor] = {}

    samples = {
        "a": training_sample([104, 105, 10, 257, 97], None, torch.randint(0, CODES, (N, 6), generator=g)),
        "b": training_sample(
            [115, 10, 58, 32, 258, 10],
            torch.randint(0, CODES, (N, 4), generator=g),
            torch.randint(0, CODES, (N, 5), generator=g),
        ),
    }
    with torch.no_grad():
        for name, (tokens, labels) in samples.items():
            result = model(inp=tokens[None], labels=labels[None])
            out |= {f"train.{name}.tokens": tokens, f"train.{name}.labels": labels}
            out |= {
                f"train.{name}.token_logits": result.token_logits[0],
                f"train.{name}.codebook_logits": result.codebook_logits,
            }

        prompt = samples["b"][0][:, :13]  # text, reference audio, text, the first target frames
        from fish_speech.models.text2semantic.llama import BaseTransformer

        result = BaseTransformer.forward_generate(model, prompt[None], return_all=True)
        out |= {"prompt.tokens": prompt, "prompt.logits": result.logits[0], "prompt.hidden": result.hidden_states[0]}

        model.setup_caches(max_batch_size=1, max_seq_len=CONFIG["text_config"]["max_seq_len"], dtype=torch.float32)
        fast_codes = torch.randint(0, CODES, (N,), generator=g)
        x = model.fast_project_in(result.hidden_states[:, -1:])
        model.forward_generate_fast(x, torch.tensor([0]))
        logits = []
        for k in range(1, N):
            x = model.fast_embeddings(fast_codes[k - 1 : k])
            logits.append(model.forward_generate_fast(x, torch.tensor([k]))[0, 0])
        out |= {"fast.codes": fast_codes, "fast.logits": torch.stack(logits)}

    inference = reference_inference()
    model.tokenizer = types.SimpleNamespace(get_token_id=lambda token: IM_END)
    for i, settings in enumerate(GENERATE):
        torch.manual_seed(settings["seed"])
        kwargs = {k: v for k, v in settings.items() if k != "seed"}
        seq = inference.generate(model=model, prompt=prompt, audio_masks=None, audio_parts=None, **kwargs)
        out[f"generate.{i}.tokens"] = seq[:, prompt.shape[1] :].long().contiguous()

    save_file({k: v.contiguous() for k, v in out.items()}, str(OUT / "golden.safetensors"))
    (OUT / "golden.json").write_text(json.dumps({"im_end_id": IM_END, "generate": GENERATE}, indent=2) + "\n")


def reference_inference():
    """fish_speech.models.text2semantic.inference, importable without click and transformers (only its
    command line and tokenizer wrappers use them; generate needs neither)."""
    transformers = types.ModuleType("transformers")
    transformers.AutoTokenizer = transformers.PreTrainedTokenizerFast = object
    sys.modules.setdefault("transformers", transformers)
    try:
        import click  # noqa: F401
    except ImportError:
        decorator = lambda *args, **kwargs: lambda f: f  # noqa: E731
        sys.modules["click"] = types.SimpleNamespace(command=decorator, option=decorator, Path=decorator)
    from fish_speech.models.text2semantic import inference

    return inference


if __name__ == "__main__":
    main()

# Everything a fresh clone needs. `make demo` curates examples/; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch 2.13.0 (installed only when the venv has no torch). On a GPU machine, install
# your CUDA build of torch into the venv first, or pass TORCH_SPEC='torch' to take PyPI's default build.
TORCH_SPEC ?= torch==2.13.0
DEMO_OUT ?= out/demo

.PHONY: install dev demo test bench bench-memory bench-scale bench-rewards train-demo bench-train bench-train-memory grpo-demo bench-grpo codec-demo clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e .
	touch $@

# Headless Chromium renders the run report in a test (Debian package; needs root to install).
$(VENV)/.dev-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[dev]"
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the report rendering test will be skipped"
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

demo: install
	RAY_AUTH_MODE=disabled $(VENV)/bin/s2 curate --input examples/audio --output $(DEMO_OUT)
	@echo "shards: $(DEMO_OUT)/shards/  index: $(DEMO_OUT)/index.json  manifest: $(DEMO_OUT)/manifest.parquet"

test: dev
	RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 $(PY) -m pytest

# About one hour of audio built from the repo's clips: Ray Data vs the same stages run sequentially.
bench: install
	RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 $(PY) -m scripts.bench_curation --out bench_out/curation.json

# One 2-hour file through every stage: peak memory of the whole local run.
bench-memory: install
	RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 $(PY) -m scripts.bench_curation --long-input-hours 2 --out bench_out/curation_long.json

# Curation at 1k, 10k and 100k tiny inputs on a 2-node Ray cluster with S3 (moto) output: driver peak RSS, wall, time
# to the first unit, finalize (bench_out/scale.json). About an hour on 2 cores; `--points 1000 10000` for the small ones.
bench-scale: install
	RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 $(PY) -m scripts.bench_scale --out bench_out/scale.json

# Reward throughput (local profile, CPU): in-process and over HTTP, one at a time vs concurrent clients.
bench-rewards: install
	RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 $(PY) -m scripts.bench_rewards --out bench_out/rewards.json

# A tiny random-init Dual-AR trained on CPU on examples/ (curated, tokenized by a tiny random codec):
# train_out/metrics.jsonl and train_out/sample.wav, which is noise (tiny random models).
train-demo: install
	RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 $(PY) -m scripts.train_demo --out train_out

# The training loader's samples/s on CPU from the demo's tokenized shards, against ten times one GPU's need.
bench-train: install
	RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 $(PY) -m scripts.bench_train --index train_out/curated/index.json --out bench_out/train_loader.json

# Host memory per rank of the sharded trainer (2 gloo ranks on CPU, a 0.5 B slow AR): RSS growth while loading
# and while saving a DCP checkpoint, over the full fp32 model's bytes.
bench-train-memory: install
	$(PY) -m scripts.bench_train_memory --out bench_out/train_memory.json

# GRPO on CPU with tiny random-init models (the codec's audio is noise) raising real curation-model rewards of that
# noise: DNSMOS (R_Pref) into grpo_out/rewards.jsonl, then resemblyzer's similarity to the prompts' reference voices
# (R_SIM) into grpo_out/similarity/rewards.jsonl; each prints its first- and last-quarter mean reward with standard
# errors. A fresh folder each time: a rerun into an old one would resume it.
grpo-demo: install
	rm -rf grpo_out && RAY_AUTH_MODE=disabled $(VENV)/bin/s2 grpo --config jobs/configs/grpo_demo.yaml
	RAY_AUTH_MODE=disabled $(VENV)/bin/s2 grpo --config jobs/configs/grpo_demo.yaml --set rewards.weights.quality=0 \
		--set rewards.weights.similarity=1.0 --set runtime.out=grpo_out/similarity

# A GRPO step on CPU: rollout tokens/s of one batched generation over one rollout (and one group) at a time, scoring
# and update times, into bench_out/grpo.json (scripts/gpu_bench_grpo.py: the same at the S2-Pro shape on a GPU)
bench-grpo: install
	RAY_AUTH_MODE=disabled $(PY) -m scripts.bench_grpo --out bench_out/grpo.json

# A TINY random-init codec trained on CPU for a few minutes on examples/ and the test speech, evaluated on held-out
# clips before and after: codec_out/eval.json (mel distance, STOI, PESQ, SI-SDR), codec_out/eval/*/*.wav. A few CPU
# minutes give a poor codec: the point is the wiring (and that mel distance falls and STOI rises).
# (a fresh folder each time: a rerun into an old one would resume it)
codec-demo: install
	rm -rf codec_out && $(VENV)/bin/s2 codec train --config jobs/configs/codec_demo.yaml

clean:
	rm -rf out bench_out train_out grpo_out codec_out

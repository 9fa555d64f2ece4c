"""The reward services on Ray Serve (local profile), over real HTTP on 127.0.0.1: the same results as the in-process
rewards, batches gathered across concurrent requests, the token, size and deadline limits, per-item errors; and
`s2 serve-rewards` refusing to start without what it needs."""

import base64
import concurrent.futures
import io
import socket

import numpy as np
import pytest
import requests
import soundfile as sf

from jobs import serve_rewards as job
from models.rewards import RewardItem, Wrappers, build_reward
from models.rewards.audio import encode_wav
from models.rewards.client import RewardClient, RewardServiceError
from schemas.rewards import TIMEOUT_HEADER, TOKEN_ENV
from tests.models.rewards.cases import ARCTIC, SR, clip

TOKEN = "test-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BYTES = 4_000_000
# small reservations: the three model replicas share the test session's 2-CPU Ray
SETTINGS = [
    *(f"service.{k}.num_cpus=0.25" for k in ("stt", "quality", "similarity")),
    f"service.max_request_bytes={MAX_BYTES}",
    "service.max_items=16",
    "service.batch_wait_timeout_s=0.05",
]

pytestmark = pytest.mark.ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(ray_session):
    from ray import serve

    from pipelines.serve_rewards import start

    cfg = job.rewards_config("local", overrides=SETTINGS)
    url = start(cfg, TOKEN, "127.0.0.1", _free_port())
    yield url, cfg
    serve.shutdown()


@pytest.fixture(scope="module")
def items():
    return [
        RewardItem(clip("aew_a0001"), SR, ARCTIC["aew_a0001"], reference=clip("aew_a0002")),
        RewardItem(clip("axb_a0004"), SR, ARCTIC["axb_a0004"], reference=clip("aew_a0002")),
        RewardItem(np.zeros(SR, np.float32), SR, ARCTIC["axb_a0004"], reference=clip("axb_a0005")),
    ]


def _stats(url: str) -> dict:
    r = requests.get(f"{url}/v1/stats", headers=AUTH, timeout=30)
    assert r.status_code == 200
    return r.json()


def test_results_equal_the_in_process_rewards(service, items):
    url, cfg = service
    # the total carries every reward's components; quality and similarity also through their own endpoints
    remote = {
        kind: RewardClient(url, kind, token=TOKEN, timeout_s=120).score(items)
        for kind in ("quality", "similarity", "total")
    }
    wrappers = Wrappers(cfg)
    local = {kind: build_reward(kind, cfg, wrappers).score(items) for kind in remote}
    for kind in remote:
        assert [r.error for r in remote[kind]] == [r.error for r in local[kind]]
        assert remote[kind][2].error == "audio: silent (peak 0 <= 0.0001)" and remote[kind][2].score == 0.0
        assert remote[kind][2] == local[kind][2]
        for a, b in zip(remote[kind][:2], local[kind][:2]):
            assert a.components.keys() == b.components.keys() and a.metadata == b.metadata
            assert all(a.components[k] == b.components[k] for k in a.components if k.startswith("quality"))
            assert all(
                a.components[k] == pytest.approx(b.components[k], abs=1e-6)
                for k in a.components
                if k.startswith("similarity")
            )
            assert a.components.get("stt.wer") == b.components.get("stt.wer")
            # pocketsphinx's confidences move slightly with what the decoder decoded before (its own state)
            assert a.score == pytest.approx(b.score, abs=0.05)


def test_concurrent_requests_are_scored_in_batches(service):
    url, _ = service
    before = _stats(url)["quality"]
    client = RewardClient(url, "quality", token=TOKEN, timeout_s=120)
    x = clip("axb_a0004")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda k: client.score([RewardItem(x[k * 100 :], SR)])[0], range(12)))
    assert all(r.error is None and r.score > 0 for r in results)
    after = _stats(url)["quality"]
    ran = {int(size): n - before.get(size, 0) for size, n in after.items() if n > before.get(size, 0)}
    assert sum(size * n for size, n in ran.items()) == 12 and max(ran) > 1


def test_every_request_needs_the_token(service, items):
    url, _ = service
    body = {"items": [{"audio": encode_wav(clip("aew_a0001"), SR)}]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = requests.post(f"{url}/v1/score/quality", json=body, headers=headers, timeout=30)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert requests.get(f"{url}/v1/stats", timeout=30).status_code == 401
    assert requests.post(f"{url}/v1/score/pitch", json=body, headers=AUTH, timeout=30).status_code == 404
    assert requests.get(f"{url}/healthz", timeout=30).json() == {"status": "ok"}  # probes carry no token
    with pytest.raises(RewardServiceError, match="401") as caught:
        RewardClient(url, "quality", token="wrong").score(items[:1])
    assert caught.value.status == 401


def test_oversized_requests_are_413(service):
    url, _ = service
    r = requests.post(f"{url}/v1/score/quality", json={"items": [{"audio": "A" * MAX_BYTES}]}, headers=AUTH, timeout=30)
    assert r.status_code == 413 and str(MAX_BYTES) in r.json()["detail"]
    r = requests.post(f"{url}/v1/score/quality", json={"items": [{}] * 17}, headers=AUTH, timeout=30)
    assert r.status_code == 413 and r.json()["detail"] == "17 items; at most 16 per request"


def test_a_request_past_its_deadline_is_504(service):
    url, _ = service
    body = {"items": [{"audio": encode_wav(clip("aew_a0001"), SR), "text": ARCTIC["aew_a0001"]}]}
    r = requests.post(f"{url}/v1/score/stt", json=body, headers={**AUTH, TIMEOUT_HEADER: "0.001"}, timeout=60)
    assert r.status_code == 504 and r.json()["detail"] == "not scored within 0.001 s"
    r = requests.post(f"{url}/v1/score/stt", json=body, headers={**AUTH, TIMEOUT_HEADER: "soon"}, timeout=60)
    assert r.status_code == 400


def test_a_bad_item_is_its_own_error_and_the_others_are_scored(service):
    url, _ = service
    silent = io.BytesIO()
    sf.write(silent, np.zeros(SR, np.float32), SR, format="FLAC")
    good = {"audio": encode_wav(clip("aew_a0001"), SR), "text": ARCTIC["aew_a0001"]}
    pcm = (clip("aew_a0001") * 32767).astype("<i2").tobytes()
    body = {
        "items": [
            good,
            {"audio": "***"},
            {"audio": base64.b64encode(silent.getvalue()).decode(), "text": "hello"},
            {"audio": good["audio"]},
            {"sound": good["audio"]},
            {"audio": {"data": base64.b64encode(pcm).decode(), "sample_rate": SR}, "text": ARCTIC["aew_a0001"]},
        ]
    }
    r = requests.post(f"{url}/v1/score/stt", json=body, headers=AUTH, timeout=120)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["error"] for x in results[:5]] == [
        None,
        "audio: not valid base64 (Only base64 data is allowed)",
        "audio: silent (peak 0 <= 0.0001)",
        "text: missing (the target transcript)",
        "invalid item: audio: Field required; sound: Extra inputs are not permitted",
    ]
    assert results[0]["score"] > 0.3 and all(x["score"] == 0.0 for x in results[1:5])
    assert results[5]["error"] is None and results[5]["components"]["stt.wer"] == results[0]["components"]["stt.wer"]


def test_serve_rewards_refuses_to_start_without_a_token_or_weights(monkeypatch, capsys):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert job.main(["--profile", "local"]) == 2
    assert TOKEN_ENV in capsys.readouterr().err
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert job.main(["--profile", "s2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cannot start: ") and "transcription.model" in err


def test_the_rewards_reuse_the_curation_profiles_specs():
    from jobs.config import curate_config

    local, curate = job.rewards_config("local"), curate_config("local", direct={"input": "-", "output": "-"})
    assert (local.models.quality, local.models.asr, local.models.speaker) == (
        curate.quality.model,
        curate.transcription.model,
        curate.transcription.speaker_model,
    )
    s2 = job.rewards_config("s2", overrides=["weights.stt=2"], model_overrides=["quality.model.options.head=heads/q1"])
    assert (
        s2.models.asr.name == "qwen3-omni"
        and s2.models.speaker.name == "wavlm"
        and s2.models.quality.options == {"head": "heads/q1"}
    )
    assert s2.weights.stt == 2.0 and s2.service.stt.num_gpus == 0.5

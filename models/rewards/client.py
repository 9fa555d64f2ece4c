"""The reward services (`s2 serve-rewards`) behind the reward protocol: `RewardClient(url, kind=...).score(batch)`
returns what `build_reward(kind, cfg).score(batch)` returns in-process, so an RL loop swaps one for the other.

Audio travels as 32-bit float WAV (lossless: the service scores the very samples given). An item the service cannot
score comes back as that item's error, like in-process; a request the service refuses (401, 413, ...) or cannot
be reached raises `RewardServiceError`, since no item was scored.

Transient failures are retried: a request that timed out, could not connect, or was answered 5xx (a replica
restarting, the service's own 504 deadline) is sent again after `backoff_s`, then twice that, ... at most `retries`
times, so a request gives up after at most retries + 1 tries of `timeout_s` (+5 s) each and backoff_s x
(2^retries - 1) s of waiting. What still fails raises `RewardServiceError` with `transient` set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import requests

from models.rewards.audio import encode_wav
from models.rewards.base import RewardItem
from schemas.rewards import TIMEOUT_HEADER, TOKEN_ENV, RewardKind, RewardResult, ScoreResponse


class RewardServiceError(RuntimeError):
    """status: the HTTP status, None when no answer came (timeout, connection refused or reset)."""

    def __init__(self, status: int | None, detail: str, tries: int = 1):
        self.status, self.detail = status, detail
        after = f" (after {tries} tries)" if tries > 1 else ""
        super().__init__(f"reward service: {status or 'unreachable'}: {detail}{after}")

    @property
    def transient(self) -> bool:
        """A failure another try may not meet: no answer, or a 5xx."""
        return self.status is None or self.status >= 500


def item_json(item: RewardItem) -> dict:
    """A RewardItem as a request item (schemas.rewards.ScoreItem)."""
    out: dict = {"audio": encode_wav(item.audio, item.sample_rate)}
    if item.text is not None:
        out["text"] = item.text
    if item.reference is not None:
        out["reference"] = encode_wav(item.reference, item.reference_rate or item.sample_rate)
    return out


class RewardClient:
    """kind: 'stt', 'quality', 'similarity' or 'total'. token: default $S2_REWARDS_TOKEN. A batch is sent in requests
    of at most `max_items` items; `timeout_s` is each request's deadline, which the service also honours; `retries`
    and `backoff_s`: the retries of transient failures (module docstring)."""

    def __init__(
        self,
        url: str,
        kind: RewardKind = "total",
        token: str | None = None,
        timeout_s: float = 60.0,
        max_items: int = 64,
        retries: int = 3,
        backoff_s: float = 1.0,
    ):
        if retries < 0 or backoff_s < 0:
            raise ValueError(f"retries and backoff_s must be >= 0, got {retries} and {backoff_s}")
        token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        if not token:
            raise ValueError(f"no token: pass token= or set {TOKEN_ENV}")
        self.name = kind
        self.url = f"{url.rstrip('/')}/v1/score/{kind}"
        self.timeout_s, self.max_items = timeout_s, max_items
        self.retries, self.backoff_s = retries, backoff_s
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", TIMEOUT_HEADER: f"{timeout_s:g}"})

    def _post(self, items: Sequence[RewardItem]) -> list[RewardResult]:
        tries = 0
        while True:
            tries += 1
            try:
                return self._try(items)
            except RewardServiceError as exc:
                if not exc.transient or tries > self.retries:
                    raise RewardServiceError(exc.status, exc.detail, tries) from None
            time.sleep(self.backoff_s * 2 ** (tries - 1))

    def _try(self, items: Sequence[RewardItem]) -> list[RewardResult]:
        try:
            # a little past the service's own deadline, so that its 504 arrives rather than a client-side timeout
            r = self.session.post(
                self.url, json={"items": [item_json(it) for it in items]}, timeout=self.timeout_s + 5.0
            )
        except requests.RequestException as exc:
            raise RewardServiceError(None, str(exc)) from exc
        if r.status_code != 200:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise RewardServiceError(r.status_code, str(detail))
        results = ScoreResponse.model_validate_json(r.content).results
        if len(results) != len(items):
            raise RewardServiceError(r.status_code, f"{len(results)} results for {len(items)} items")
        return results

    def score(self, batch: Sequence[RewardItem]) -> list[RewardResult]:
        return [r for k in range(0, len(batch), self.max_items) for r in self._post(batch[k : k + self.max_items])]

    def close(self) -> None:
        self.session.close()

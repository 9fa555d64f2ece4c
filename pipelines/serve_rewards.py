"""The reward services on Ray Serve: the curation wrappers behind HTTP, as rewards other teams' RL loops call.

Deployments: one per reward (`stt`, `quality`, `similarity`), each holding its model wrapper and scoring the items
of concurrent requests together (`@serve.batch`); `total`, which holds no model and combines the three; and the
HTTP ingress, which checks the bearer token (401), the body size and item count (413), decodes the audio, sends
each item to its reward and answers within the request's deadline (504). An item that cannot be decoded or scored
is answered with its reason while the other items of the request are scored.

  GET  /healthz                 liveness, no token (probes carry none); says nothing about the models
  GET  /v1/stats                per reward: how many batches of each size it ran (the replica that answers)
  POST /v1/score/{kind}         kind: stt, quality, similarity or total; body ScoreRequest, answer ScoreResponse

A client may shorten its deadline with the header `X-Request-Timeout-S` (never beyond `service.request_timeout_s`).
"""

# no `from __future__ import annotations`: FastAPI reads the route signatures' types at run time
import asyncio
import hashlib
import hmac
import json
import logging
from collections import Counter

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

from models.rewards import Wrappers, audio, build_reward
from models.rewards.base import RewardItem
from models.rewards.total import check_items, combine
from schemas.rewards import (
    COMPONENTS,
    TIMEOUT_HEADER,
    DeploymentResources,
    RewardResult,
    RewardsConfig,
    ScoreItem,
    ScoreResponse,
)

APP_NAME = "s2-rewards"
KINDS = (*COMPONENTS, "total")


def _batched(cfg: RewardsConfig, method) -> None:
    """@serve.batch's limits come from the config, known only when the replica starts."""
    method.set_max_batch_size(cfg.service.max_batch_size)
    method.set_batch_wait_timeout_s(cfg.service.batch_wait_timeout_s)


class _BatchStats:
    def __init__(self) -> None:
        self.batch_sizes: Counter[int] = Counter()

    def stats(self) -> dict[str, int]:
        return {str(size): n for size, n in sorted(self.batch_sizes.items())}


def _result(kind: str, answer: RewardResult | BaseException) -> RewardResult:
    """A deployment's answer for one item; a failed call (a replica lost, a model error) fails that item only."""
    if isinstance(answer, RewardResult):
        return answer
    return RewardResult.failed(f"{kind} service failed: {type(answer).__name__}: {answer}")


@serve.deployment
class RewardDeployment(_BatchStats):
    """One reward over its model wrapper."""

    def __init__(self, kind: str, cfg: dict):
        super().__init__()
        config = RewardsConfig.model_validate(cfg)
        self.reward = build_reward(kind, config, Wrappers(config))
        _batched(config, self.score)

    @serve.batch
    async def score(self, items: list[RewardItem]) -> list[RewardResult]:
        self.batch_sizes[len(items)] += 1
        # off the event loop: the replica keeps queueing the next batch while the model runs
        return await asyncio.to_thread(self.reward.score, items)


@serve.deployment
class TotalDeployment(_BatchStats):
    """The weighted total from the reward deployments (which batch these items with everyone else's)."""

    def __init__(self, cfg: dict, components: dict[str, DeploymentHandle]):
        super().__init__()
        self.cfg = RewardsConfig.model_validate(cfg)
        self.components = {name: h for name, h in components.items() if name in self.cfg.needs("total")}
        _batched(self.cfg, self.score)

    @serve.batch
    async def score(self, items: list[RewardItem]) -> list[RewardResult]:
        self.batch_sizes[len(items)] += 1
        ok, results = check_items(items, self.cfg.audio)
        calls = {name: [h.score.remote(items[i]) for i in ok] for name, h in self.components.items()}
        scored = {
            name: [_result(name, a) for a in await asyncio.gather(*responses, return_exceptions=True)]
            for name, responses in calls.items()
        }
        for k, i in enumerate(ok):
            results[i] = combine({name: rs[k] for name, rs in scored.items()}, self.cfg.weights)
        return [results[i] for i in range(len(items))]


api = FastAPI(title="s2 reward services", description=__doc__)


def _error(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


@serve.deployment
@serve.ingress(api)
class RewardsIngress:
    def __init__(self, cfg: dict, token_sha256: str, handles: dict[str, DeploymentHandle]):
        self.cfg = RewardsConfig.model_validate(cfg)
        # only the token's hash travels in the application's arguments (visible to anyone who can read the cluster)
        self.token_sha256 = bytes.fromhex(token_sha256)
        self.handles = handles

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            hashlib.sha256(token.strip().encode()).digest(), self.token_sha256
        )

    @api.get("/healthz")
    async def healthz(self) -> dict:
        return {"status": "ok"}

    @api.get("/v1/stats")
    async def stats(self, request: Request):
        if not self._authorised(request):
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        return {kind: await h.stats.remote() for kind, h in self.handles.items()}

    async def _body(self, request: Request) -> bytes | JSONResponse:
        """The body, or 413 as soon as it is known to exceed the limit (from its declared length, else while reading)."""
        limit = self.cfg.service.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return _error(
                413 if declared.isdigit() else 400,
                f"request body over {limit} bytes" if declared.isdigit() else "bad Content-Length",
            )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _error(413, f"request body over {limit} bytes")
        return bytes(body)

    def _decode(self, raw: object) -> RewardItem | RewardResult:
        """One request item -> samples to score (checked by the rewards, as in-process), or why it cannot be read."""
        try:
            item = ScoreItem.model_validate(raw)
        except ValidationError as exc:
            return RewardResult.failed(
                "invalid item: "
                + "; ".join(f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in exc.errors())
            )
        try:
            wav, rate = audio.decode(item.audio, self.cfg.audio)
        except audio.AudioError as exc:
            return RewardResult.failed(f"audio: {exc}")
        ref, ref_rate = None, None
        if item.reference is not None:
            try:
                ref, ref_rate = audio.decode(item.reference, self.cfg.audio)
            except audio.AudioError as exc:
                return RewardResult.failed(f"reference: {exc}")
        return RewardItem(wav, rate, item.text, ref, ref_rate)

    @api.post("/v1/score/{kind}")
    async def score(self, kind: str, request: Request):
        if not self._authorised(request):
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        if kind not in self.handles:
            return _error(404, f"unknown reward {kind!r}; choose one of {', '.join(KINDS)}")
        timeout = self.cfg.service.request_timeout_s
        if TIMEOUT_HEADER.lower() in request.headers:
            try:
                asked = float(request.headers[TIMEOUT_HEADER.lower()])
            except ValueError:
                asked = -1.0
            if not asked > 0:
                return _error(400, f"{TIMEOUT_HEADER} must be a positive number of seconds")
            timeout = min(timeout, asked)
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            items = json.loads(body)["items"]
        except (ValueError, KeyError, TypeError):
            return _error(422, 'expected a JSON object {"items": [...]}')
        if not isinstance(items, list):
            return _error(422, '"items" must be a list')
        if len(items) > self.cfg.service.max_items:
            return _error(413, f"{len(items)} items; at most {self.cfg.service.max_items} per request")
        decoded = await asyncio.to_thread(lambda: [self._decode(raw) for raw in items])
        todo = [i for i, d in enumerate(decoded) if isinstance(d, RewardItem)]
        responses = [self.handles[kind].score.remote(decoded[i]) for i in todo]
        try:
            answers = await asyncio.wait_for(asyncio.gather(*responses, return_exceptions=True), timeout)
        except TimeoutError:
            for r in responses:
                r.cancel()
            return _error(504, f"not scored within {timeout:g} s")
        for i, answer in zip(todo, answers):
            decoded[i] = _result(kind, answer)
        return JSONResponse(ScoreResponse(results=decoded).model_dump(mode="json"))


def _options(res: DeploymentResources, max_ongoing: int) -> dict:
    return {
        "num_replicas": res.replicas,
        "max_ongoing_requests": max_ongoing,
        "ray_actor_options": {"num_cpus": res.num_cpus, "num_gpus": res.num_gpus},
    }


def build_app(cfg: RewardsConfig, token: str):
    """The Serve application: a deployment per reward, the total, the ingress."""
    data = cfg.model_dump(mode="json")
    service = cfg.service
    # room for a batch being scored and the next one filling
    per_model = 2 * service.max_batch_size
    models = {
        kind: RewardDeployment.options(name=kind, **_options(getattr(service, kind), per_model)).bind(kind, data)
        for kind in COMPONENTS
    }
    total = TotalDeployment.options(name="total", **_options(service.total, per_model)).bind(data, models)
    return RewardsIngress.options(name="ingress", **_options(service.ingress, service.max_concurrent_requests)).bind(
        data, hashlib.sha256(token.encode()).hexdigest(), {**models, "total": total}
    )


def stop(on_cluster: bool) -> None:
    """Take the services down. On a cluster only this application goes (Serve and other applications stay); a local
    Ray, which this process started, is shut down whole, Serve's controller and proxy with it, in a few seconds
    (serve.shutdown() waits up to 30 s for the controller)."""
    import ray

    if on_cluster:
        serve.delete(APP_NAME)
    ray.shutdown()


def start(cfg: RewardsConfig, token: str, host: str, port: int) -> str:
    """Start Serve on the connected Ray and deploy the services; returns their base URL once they are ready."""
    if not token:
        raise ValueError("the reward services need a bearer token")
    serve.start(http_options={"host": host, "port": port})
    logger = logging.getLogger("ray.serve")
    logger.addFilter(_not_reconnecting)
    try:
        serve.run(build_app(cfg, token), name=APP_NAME, route_prefix="/")
    finally:
        logger.removeFilter(_not_reconnecting)
    return f"http://{host}:{port}"


def _not_reconnecting(record: logging.LogRecord) -> bool:
    """serve.run starts Serve again with default options and, finding the one `start` just began with ours, logs that
    "new http_options will not be applied": untrue here (ours were applied), so that line is dropped."""
    return not record.getMessage().startswith("Connecting to existing Serve app")

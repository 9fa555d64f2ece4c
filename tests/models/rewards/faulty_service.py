"""A real reward service on 127.0.0.1 that fails chosen requests: the services' protocol (POST /v1/score/<kind>, a
bearer token, the client's deadline header, ScoreRequest in, ScoreResponse out) in front of any reward, over
http.server in a thread. `plan(n)` says what request n (counted from 0, in arrival order) gets:

    "ok"    scored by the reward
    503     answered with that status at once
    "late"  answered 504 once the request's deadline (its X-Request-Timeout-S) has passed, as the services do
    "drop"  the connection closed without an answer
    "hang"  no answer for `hang_s`, past the client's own timeout, then the scores

Failures are chosen by request number, so a run against it fails the same requests every time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from models.rewards.audio import AudioError, decode
from models.rewards.base import Reward, RewardItem
from schemas.rewards import TIMEOUT_HEADER, AudioLimits, RewardResult, ScoreRequest, ScoreResponse

TOKEN = "faulty-service-token"
Action = str | int


class FaultyService:
    def __init__(self, reward: Reward, plan: Callable[[int], Action], hang_s: float = 6.0):
        self.reward, self.plan, self.hang_s = reward, plan, hang_s
        self.requests: list[Action] = []  # what each request got, in arrival order
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()  # a hanging handler stops waiting
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def _next(self) -> Action:
        with self._lock:
            action = self.plan(len(self.requests))
            self.requests.append(action)
            return action

    def _score(self, body: bytes) -> bytes:
        request = ScoreRequest.model_validate_json(body)
        results: list[RewardResult | None] = [None] * len(request.items)
        ready = []
        for i, item in enumerate(request.items):
            try:
                audio, rate = decode(item.audio, AudioLimits())
            except AudioError as exc:
                results[i] = RewardResult.failed(f"audio: {exc}")
                continue
            ready.append((i, RewardItem(audio[:, 0], rate, item.text)))
        for (i, _), result in zip(ready, self.reward.score([item for _, item in ready])):
            results[i] = result
        return ScoreResponse(results=results).model_dump_json().encode()

    def _handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    service.requests.append(401)
                    return self._answer(401, json.dumps({"detail": "bad token"}).encode())
                action = service._next()
                if action == "drop":
                    self.close_connection = True
                    return
                if action == "late":
                    time.sleep(float(self.headers.get(TIMEOUT_HEADER, "0")))
                    return self._answer(504, json.dumps({"detail": "deadline exceeded"}).encode())
                if action == "hang":
                    service._closing.wait(service.hang_s)
                if isinstance(action, int):
                    return self._answer(action, json.dumps({"detail": f"planned {action}"}).encode())
                self._answer(200, service._score(body))

        return Handler

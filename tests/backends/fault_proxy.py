"""A fault-injection HTTP proxy (a real aiohttp server on loopback) in front of an OpenAI-compatible server.

With probability `rate` (seeded) a request gets one fault, the next of `kinds` in turn:
- `429`: Too Many Requests with `Retry-After`;
- `500`, `503`: server errors;
- `slow`: the response is held `slow_seconds` (longer than the client's timeout) before being forwarded;
- `drop`: the connection is closed without a response;
- `malformed`: 200 with a truncated JSON body;
- `nologprobs`: the upstream response with its logprobs removed;
- `rejectlogprobs` (not among the default kinds): 400 to any request asking for logprobs, others forwarded.
Otherwise the request is forwarded unchanged. `require_key` makes it answer 401 to a wrong key, echoing the
key it received the way some providers do ("Incorrect API key provided: ..."), to test redaction.

It runs on its own event loop in a background thread so tests (and CLI subprocesses) reach it over TCP.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

FAULT_KINDS = ("429", "500", "503", "slow", "drop", "malformed", "nologprobs")


@dataclass
class FaultProxy:
    """Settings and counters of one proxy; `start()` serves it, `stop()` shuts it down."""

    upstream: str
    """Upstream base URL without the /v1 path, e.g. http://127.0.0.1:8000."""
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after: str = "1"
    slow_seconds: float = 4.0
    require_key: str | None = None
    stats: Counter[str] = field(default_factory=Counter)
    faults: int = 0
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- request handling ---------------------------------------------------------------------------
    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, bytes, str]:
        assert self._session is not None
        async with self._session.post(f"{self.upstream}{request.path}", data=body,
                                      headers={"Content-Type": "application/json"}) as response:
            return response.status, await response.read(), response.content_type

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.stats["requests"] += 1
        if self.require_key is not None:
            sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if sent != self.require_key:
                self.stats["unauthorized"] += 1
                return web.json_response({"error": {"message": f"Incorrect API key provided: {sent}.", "type": "invalid_request_error",
                                                    "code": "invalid_api_key"}}, status=401)
            self.stats["authorized"] += 1
        fault = None
        if self.rng.random() < self.rate:
            # Kinds in turn rather than drawn: every kind occurs once the run has len(kinds) faults.
            fault = self.kinds[self.faults % len(self.kinds)]
            self.faults += 1
        if fault is None:
            self.stats["forwarded"] += 1
            status, payload, content_type = await self._forward(request, body)
            return web.Response(status=status, body=payload, content_type=content_type)
        self.stats[fault] += 1
        if fault == "429":
            return web.json_response({"error": {"message": "Rate limit reached (injected)", "type": "rate_limit"}},
                                     status=429, headers={"Retry-After": self.retry_after})
        if fault in ("500", "503"):
            return web.json_response({"error": {"message": f"injected {fault}"}}, status=int(fault))
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
            status, payload, content_type = await self._forward(request, body)
            return web.Response(status=status, body=payload, content_type=content_type)
        if fault == "rejectlogprobs":  # a provider without logprobs that says so with a 400
            if json.loads(body).get("logprobs"):
                return web.json_response({"error": {"message": "logprobs is not supported for this model"}}, status=400)
            status, payload, content_type = await self._forward(request, body)
            return web.Response(status=status, body=payload, content_type=content_type)
        if fault == "drop":
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError  # nothing is written: the client sees the connection go away
        status, payload, content_type = await self._forward(request, body)
        if fault == "malformed":
            return web.Response(status=200, body=payload[: len(payload) // 2], content_type="application/json")
        data: dict[str, Any] = json.loads(payload)
        for choice in data.get("choices", []):
            choice["logprobs"] = None
        return web.json_response(data, status=status)

    # -- lifecycle ----------------------------------------------------------------------------------
    async def _serve(self, ready: threading.Event) -> None:
        self.rng = random.Random(self.seed)
        self._session = ClientSession(timeout=ClientTimeout(total=600))
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()

    def start(self) -> FaultProxy:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.create_task(self._serve(ready))
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            await self._session.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

"""A fixed-latency OpenAI-compatible chat completions server, in its own process, for benchmarks and tests.

Every `POST /v1/chat/completions` is answered after `latency` seconds with one token ("A") and, when the
request asks for `logprobs`, 20 top logprobs that include the letter labels A-E with and without a leading
space. The server does no other work, so a client's throughput against it is bounded by `C / latency` and
by the client's own overhead (`benchmarks/api_throughput.py`).

It records when each request arrived and when its response was sent (wall clock, `time.time()`, so the
times compare across processes): `GET /stats` returns the count, the peak number of requests in flight,
the first arrival and last response, and with `?intervals=1` every `[start, end]` pair; `POST /stats/reset`
clears them. A test running two API models on two servers can check from the intervals that the models
were served at the same time.

    process, base_url = start_latency_server(0.1)          # base_url: http://127.0.0.1:PORT/v1
    try:
        ...                                                  # --api-base base_url --models openai/bench-model
        stats = server_stats(base_url, intervals=True)
    finally:
        stop_latency_server(process)

Only aiohttp is needed (a probekit dependency). Run directly (`python latency_server.py --latency 0.1`) it
serves on a free port and prints `PORT <n>` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import selectors
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

LABEL_TOKENS = ["A", "B", "C", "D", "E", " A", " B", " C", " D", " E",
                "The", "I", "(", "**", "Answer", "1", "\n", " ", "a", "b"]
"""The 20 top-logprob alternatives of the one generated token, most likely first."""


def completion_body(model: str, logprobs: bool) -> bytes:
    """The fixed response: one token "A" (with its top-20 alternatives when `logprobs`)."""
    top = [{"token": t, "logprob": round(-0.1 * i, 3), "bytes": None} for i, t in enumerate(LABEL_TOKENS)]
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "length"}
    if logprobs:
        choice["logprobs"] = {"content": [{"token": "A", "logprob": 0.0, "bytes": None, "top_logprobs": top}]}
    return json.dumps({
        "id": "chatcmpl-latency", "object": "chat.completion", "created": 0, "model": model,
        "system_fingerprint": "fp_latency", "choices": [choice],
        "usage": {"prompt_tokens": 60, "completion_tokens": 1, "total_tokens": 61},
    }).encode()


# -- the server (runs in the subprocess) -------------------------------------------------------------
async def _serve(latency: float, model: str, port: int) -> None:
    from aiohttp import web

    with_logprobs, without_logprobs = completion_body(model, True), completion_body(model, False)
    intervals: list[tuple[float, float]] = []
    in_flight = 0
    peak = 0

    async def complete(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        started = time.time()
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            raw = await request.read()
            # A byte test instead of json.loads keeps the server's CPU per request negligible.
            wants_logprobs = b'"logprobs": true' in raw or b'"logprobs":true' in raw
            await asyncio.sleep(latency)
            return web.Response(body=with_logprobs if wants_logprobs else without_logprobs, content_type="application/json")
        finally:
            in_flight -= 1
            intervals.append((started, time.time()))

    async def stats(request: web.Request) -> web.Response:
        data: dict[str, Any] = {
            "requests": len(intervals), "in_flight": in_flight, "peak_in_flight": peak, "latency": latency,
            "first_start": min((s for s, _ in intervals), default=None),
            "last_end": max((e for _, e in intervals), default=None),
        }
        if request.query.get("intervals"):
            data["intervals"] = sorted(intervals)
        return web.json_response(data)

    async def reset(request: web.Request) -> web.Response:
        nonlocal peak
        intervals.clear()
        peak = in_flight
        return web.json_response({"requests": 0})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/stats", stats)
    app.router.add_post("/stats/reset", reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"PORT {bound}", flush=True)
    await asyncio.Event().wait()  # until terminated


# -- the parent's side ---------------------------------------------------------------------------------
def start_latency_server(latency: float = 0.1, *, model: str = "bench-model",
                         ready_timeout: float = 30.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server in a subprocess on a free 127.0.0.1 port (chosen by the server itself, so there is
    no race for it) and return (process, base_url) once it accepts connections; base_url ends in /v1.
    `model` is the name the responses carry (`response.model`: probekit's `resolved_model`)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--latency", str(latency), "--model", model]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    deadline = time.monotonic() + ready_timeout
    line = b""
    # The first line is "PORT n" once the socket listens; anything else (an import error) fails here.
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline and process.poll() is None:
            if selector.select(timeout=0.2):
                line = process.stdout.readline()
                break
    if not line.startswith(b"PORT "):
        stop_latency_server(process)
        raise RuntimeError(f"latency server did not start (exit code {process.returncode}, first line {line!r})")
    return process, f"http://127.0.0.1:{int(line.split()[1])}/v1"


def stop_latency_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _root(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1")


def server_stats(base_url: str, *, intervals: bool = False) -> dict[str, Any]:
    """The server's request record since the last reset (see the module docstring)."""
    url = _root(base_url) + "/stats" + ("?intervals=1" if intervals else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def reset_stats(base_url: str) -> None:
    request = urllib.request.Request(_root(base_url) + "/stats/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description="Fixed-latency OpenAI-compatible chat completions server.")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds before each response")
    parser.add_argument("--model", default="bench-model", help="model name the responses carry")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed as 'PORT n')")
    args = parser.parse_args()
    try:
        asyncio.run(_serve(args.latency, args.model, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

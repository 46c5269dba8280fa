"""API client throughput: how close probekit gets to the ideal request rate of a slow server.

A loopback OpenAI-compatible server (separate process) answers every chat completion after a fixed
latency (100 ms) with one token and 20 top logprobs, doing no compute. For each concurrency C the ideal
rate is C / latency. Clients measured in the same run, each sending N one-token logprob requests:

- `bare aiohttp`: a semaphore and one pooled session, JSON in, JSON out (the reference floor);
- `probekit`: `LiteLLMBackend.score` on distinct trials through the runner's tenacity wrapper (request
  building, cache, limiter hooks, label reading, row building) — the path a run takes;
- `litellm.acompletion` (with `--litellm`): a plain loop with a semaphore, for comparison.

CPU ms/request is the client process's CPU time (user + system) over the requests; the server's CPU is
not counted (other process).

    python benchmarks/api_throughput.py                  # 2,000 requests at C = 8, 32, 128; 200 at C = 1
    python benchmarks/api_throughput.py --requests-c1 2000 --litellm
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

LATENCY = 0.1
TOP = [{"token": t, "logprob": -0.1 * i, "bytes": None} for i, t in enumerate(["A", "B", " A", " B", "The", "I", "C", "1", "(", "**",
                                                                              "a", "b", "Answer", " The", "D", "Yes", "No", "\n", " ", "-"])]
BODY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench-model", "system_fingerprint": "fp_bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "length",
                 "logprobs": {"content": [{"token": "A", "logprob": 0.0, "bytes": None, "top_logprobs": TOP}]}}],
    "usage": {"prompt_tokens": 60, "completion_tokens": 1, "total_tokens": 61},
}).encode()


# -- the fixed-latency server (runs in its own process) -------------------------------------------
def serve(port: int) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(LATENCY)
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=1024)


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("benchmark server did not start")


# -- clients -----------------------------------------------------------------------------------------
def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Question {i}: which option? A. yes B. no. Answer with A or B."}]


async def bare_aiohttp(api_base: str, concurrency: int, n: int) -> None:
    import aiohttp

    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(i: int) -> None:
            async with semaphore:
                payload = {"model": "bench", "messages": messages(i), "max_tokens": 1, "logprobs": True, "top_logprobs": 20}
                async with session.post(f"{api_base}/chat/completions", json=payload) as response:
                    data = await response.json()
                    assert data["choices"][0]["logprobs"]["content"]
        await asyncio.gather(*(one(i) for i in range(n)))


async def probekit_backend(api_base: str, concurrency: int, n: int) -> None:
    from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

    from probekit.backends.base import BackendError
    from probekit.backends.litellm_backend import LiteLLMBackend
    from probekit.scoring import ScoringSettings
    from probekit.survey.expand import Message, Trial

    template = Trial(trial_id="0", survey_id="bench", item_id="0", template_id="t", paraphrase_id="p0", order=(0, 1),
                     label_scheme="letters", labels=("A", "B"), shown_options=("yes", "no"), reasoning="direct",
                     messages=(Message(role="user", content="x"),), completion_prompt="x", answer_prefix="Answer:")
    trials = [template.model_copy(update={"trial_id": str(i), "messages": (Message(**messages(i)[0]),)}) for i in range(n)]
    backend = LiteLLMBackend("openai/bench", api_base=api_base, concurrency=concurrency, logprobs=True)
    await backend.start()
    settings = ScoringSettings(mode="logprob")
    semaphore = asyncio.Semaphore(concurrency)

    async def one(trial: Trial) -> None:
        async with semaphore:  # as the runner does: one batch (one trial) per slot, retried by tenacity
            async for attempt in AsyncRetrying(stop=stop_after_attempt(3), reraise=True,
                                               retry=retry_if_exception(lambda e: isinstance(e, BackendError) and e.retryable)):
                with attempt:
                    rows = await backend.score([trial], settings)
            assert rows[0][0]["status"] == "ok"

    try:
        await asyncio.gather(*(one(t) for t in trials))
    finally:
        await backend.close()


async def litellm_loop(api_base: str, concurrency: int, n: int) -> None:
    import litellm

    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with semaphore:
            response = await litellm.acompletion(model="openai/bench", messages=messages(i), api_base=api_base, api_key="x",
                                                 max_tokens=1, logprobs=True, top_logprobs=20)
            assert response.choices[0].logprobs
    await asyncio.gather(*(one(i) for i in range(n)))


def measure(client: Callable[[str, int, int], Awaitable[None]], api_base: str, concurrency: int, n: int) -> tuple[float, float]:
    """(requests per second, CPU ms per request) for n requests after a short warm-up."""
    asyncio.run(client(api_base, concurrency, min(n, concurrency * 2)))  # imports, connections, caches
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(client(api_base, concurrency, n))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrency level (C > 1)")
    parser.add_argument("--requests-c1", type=int, default=200, help="requests at C = 1 (2,000 take 200 s)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--litellm", action="store_true", help="also measure a plain litellm.acompletion loop")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    clients: dict[str, Callable[[str, int, int], Awaitable[None]]] = {"bare aiohttp": bare_aiohttp, "probekit": probekit_backend}
    if args.litellm:
        clients["litellm.acompletion"] = litellm_loop
    process, api_base = start_server()
    results: dict[tuple[str, int], tuple[float, float]] = {}
    try:
        for concurrency in args.concurrency:
            n = args.requests_c1 if concurrency == 1 else args.requests
            for name, client in clients.items():
                results[name, concurrency] = measure(client, api_base, concurrency, n)
                rps, cpu = results[name, concurrency]
                print(f"  {name:<20} C={concurrency:<4} {rps:8.1f} req/s  {rps / (concurrency / LATENCY):6.1%} of ideal  "
                      f"{cpu:5.2f} CPU ms/req", file=sys.stderr, flush=True)
    finally:
        process.terminate()
        process.wait()
    print(f"\nlatency {LATENCY * 1000:.0f} ms, {os.cpu_count()} CPUs; requests per level: {args.requests} "
          f"({args.requests_c1} at C=1)")
    header = f"{'client':<20}" + "".join(f"{'C=' + str(c):>22}" for c in args.concurrency) + f"{'CPU ms/req':>12}"
    print(header)
    print(f"{'(ideal req/s)':<20}" + "".join(f"{c / LATENCY:>22.0f}" for c in args.concurrency))
    for name in clients:
        cells = "".join(f"{results[name, c][0]:>12.1f} ({results[name, c][0] / (c / LATENCY):>6.1%})" for c in args.concurrency)
        cpu = sum(results[name, c][1] for c in args.concurrency if c > 1) / max(1, sum(1 for c in args.concurrency if c > 1))
        print(f"{name:<20}{cells}{cpu:>12.2f}")
    print("CPU ms/req: mean over the levels with C > 1 (client process only).")


if __name__ == "__main__":
    main()

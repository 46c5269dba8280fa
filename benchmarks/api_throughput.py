"""API throughput: how close probekit gets to the ideal request rate of a slow server, for the whole run.

A loopback OpenAI-compatible server (`tests/backends/latency_server.py`, its own process) answers every
chat completion after a fixed latency (100 ms) with one token and 20 top logprobs, doing no compute. For
concurrency C the ideal rate is C / latency, and N requests ideally take ceil(N / C) x latency. Clients
measured in the same run, each sending N one-token logprob requests (N distinct trials of 5 options):

- `bare aiohttp`: a semaphore and one pooled session, JSON in, JSON out (the reference floor);
- `backend only`: the API backend on the N expanded trials through the runner's tenacity wrapper (request
  building, cache, limiter hooks, label reading, row building), no store (`backend_only` below);
- `whole run`: `probekit.run` in this process on a survey YAML of N inline items (5 options, one template,
  identity order, logprob scoring), from the call to its return: load + expand, store setup, the capability
  probe, the requests, DuckDB writes, final flush and status; the N stored rows are checked afterwards;
- `whole run (CLI)`: `probekit run SPEC ... -q` in a subprocess (interpreter start-up and imports
  included): what a user waits for;
- `litellm.acompletion` (with `--litellm`): a plain loop with a semaphore, for comparison.

CPU ms/request is the client process's CPU time (user + system, all threads) over the measurement divided
by N; for the CLI the child's rusage. The server's CPU is not counted (other process). The breakdown comes
from the server's record of when each request arrived and was answered (wall clock): `before` = call →
first trial request (load, expand, store setup, probe), `requests` = first trial request → last response,
`after` = last response → return (final flush, version record, run status). `in-window %` is the ideal
time of the requests over the `requests` window, `in flight` the server's mean number of requests in flight
over it, `peak` its maximum (how well the client keeps C requests in flight). For the whole run the client
CPU is also split across the three phases (a background thread samples the process CPU time).

    python benchmarks/api_throughput.py                       # N = 2,000 at C = 32, 128; CLI at C = 32
    python benchmarks/api_throughput.py -n 500 -c 32          # quicker
    python benchmarks/api_throughput.py --profile 128         # cProfile (all threads) of the whole run at C = 128
    python benchmarks/api_throughput.py -c 1 8 32 128 --requests-c1 200 --litellm
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import cProfile
import math
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "backends"))  # the latency server lives with the tests

from latency_server import reset_stats, server_stats, start_latency_server, stop_latency_server  # noqa: E402

MODEL = "openai/bench-model"
N_OPTIONS = 5
Client = Callable[[str, int, int, Path], Coroutine[Any, Any, None]]
"""client(api_base, concurrency, n, spec): sends n requests with at most `concurrency` in flight."""


# -- the survey ----------------------------------------------------------------------------------------
def write_spec(directory: Path, n: int) -> Path:
    """A survey of n inline mcq items with 5 options each (one template, identity order, logprob
    scoring), written as block YAML the way the survey builders write specs. Every question differs, so
    the in-run response cache never answers a trial."""
    import yaml

    items = [{"id": f"q{i:05d}", "fields": {"question": f"Benchmark question {i}: which of these is the best answer?"},
              "options": [{"text": f"option {chr(65 + k).lower()} of question {i}"} for k in range(N_OPTIONS)],
              "gold": i % N_OPTIONS} for i in range(n)]
    spec = {
        "id": "bench_whole_run", "kind": "mcq", "title": f"API throughput benchmark ({n} items)", "labels": "letters",
        "templates": [{"id": "t", "user": "{question}\n{options}\nAnswer with {labels_or}."}],
        "permutations": {"policy": "identity"}, "scoring": {"mode": "logprob"}, "items": items,
    }
    path = directory / f"bench_{n}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path


def stored_ok_rows(store: Path, run_id: str) -> tuple[int, int]:
    """(rows, rows with status ok) of the run in the store."""
    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        total, ok = con.execute("SELECT count(*), count(*) FILTER (WHERE status = 'ok') FROM results WHERE run_id = ?",
                                [run_id]).fetchone()  # type: ignore[misc]
    return int(total), int(ok)


# -- clients: each sends n requests at concurrency C -------------------------------------------------
def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Question {i}: which option? A. yes B. no. Answer with A or B."}]


async def bare_aiohttp(api_base: str, concurrency: int, n: int, spec: Path) -> None:
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


_TRIALS: dict[Path, list[Any]] = {}


async def backend_only(api_base: str, concurrency: int, n: int, spec: Path) -> None:
    """The API backend alone, driven the way the runner drives it, on the first n trials of the survey:
    one trial per task, retries, cache, concurrency slots, label reading and result rows; no store, no
    spec loading (the trials are expanded once, outside the timing), no capability probe (`logprobs: true`).

    This is the one function that knows how the runner calls a backend; it follows both interfaces:
    - since the runtime rewrite (74e9aed): `ModelRuntime(backend)` + `score_trials(runtime, [trial],
      settings)` — the runtime owns retries (tenacity), cache, slots and limiter, as in `runner._run_model`;
    - before it: `backend.score([trial], settings)` inside the runner's tenacity loop and semaphore.
    If the runner changes how it calls the scoring layer again, change `one()` to match `runner.py`."""
    import probekit
    from probekit.backends import make_backend
    from probekit.scoring import ScoringSettings

    if spec not in _TRIALS:  # expanded once, outside the timed run (the warm-up call does it)
        _TRIALS[spec] = probekit.expand(probekit.load_survey(spec))
    trials = _TRIALS[spec][:n]
    backend = make_backend(MODEL, {"api_base": api_base, "concurrency": concurrency, "logprobs": True})
    settings = ScoringSettings(mode="logprob")

    if hasattr(backend, "score"):  # the backend interface before the runtime rewrite
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        from probekit.backends import BackendError

        semaphore = asyncio.Semaphore(concurrency)

        async def one(trial: Any) -> list[list[Any]]:
            async with semaphore:
                async for attempt in AsyncRetrying(stop=stop_after_attempt(3), reraise=True,
                                                   retry=retry_if_exception(lambda e: isinstance(e, BackendError) and e.retryable)):
                    with attempt:
                        return await backend.score([trial], settings)
            raise AssertionError("unreachable")
        close = backend.close
    else:
        from probekit.runtime import ModelRuntime
        from probekit.scoring import score_trials

        runtime = ModelRuntime(backend)
        await runtime.start()

        async def one(trial: Any) -> list[list[Any]]:
            return await score_trials(runtime, [trial], settings)
        close = runtime.close

    async def checked(trial: Any) -> None:
        row = (await one(trial))[0][0]
        status = row.get("status", "ok") if isinstance(row, dict) else row.status
        assert status == "ok", row

    try:
        await asyncio.gather(*(checked(t) for t in trials))
    finally:
        await close()


async def litellm_loop(api_base: str, concurrency: int, n: int, spec: Path) -> None:
    import litellm

    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with semaphore:
            response = await litellm.acompletion(model="openai/bench", messages=messages(i), api_base=api_base, api_key="x",
                                                 max_tokens=1, logprobs=True, top_logprobs=20)
            assert response.choices[0].logprobs
    await asyncio.gather(*(one(i) for i in range(n)))


# -- measurements --------------------------------------------------------------------------------------
@dataclass
class Result:
    client: str
    concurrency: int
    n: int
    latency: float
    wall: float
    cpu_ms: float
    """Client CPU ms per request."""
    before: float = math.nan
    window: float = math.nan
    after: float = math.nan
    mean_in_flight: float = math.nan
    """Requests in flight at the server, averaged over the `requests` window."""
    peak_in_flight: int = 0
    cpu_phases: tuple[float, float, float] | None = None
    """Client CPU ms per request spent before / during / after the requests window (whole run only)."""
    note: str = ""

    @property
    def ideal(self) -> float:
        return math.ceil(self.n / self.concurrency) * self.latency

    @property
    def rps(self) -> float:
        return self.n / self.wall

    @property
    def of_ideal(self) -> float:
        return self.ideal / self.wall

    @property
    def in_window(self) -> float:
        return self.ideal / self.window if self.window > 0 else math.nan


def _breakdown(result: Result, api_base: str, started: float, ended: float) -> Result:
    """Fill before / requests / after from the server's record: the last n requests to arrive are the
    trials (a run's capability probe comes first)."""
    stats = server_stats(api_base, intervals=True)
    intervals = stats["intervals"][-result.n:]
    if len(intervals) < result.n:
        result.note = f"server saw {len(intervals)} requests"
        return result
    first = intervals[0][0]
    last = max(end for _, end in intervals)
    result.before, result.window, result.after = first - started, last - first, ended - last
    result.mean_in_flight = sum(end - start for start, end in intervals) / result.window if result.window > 0 else math.nan
    result.peak_in_flight = stats["peak_in_flight"]
    return result


def measure_client(name: str, client: Client, api_base: str, concurrency: int,
                   n: int, spec: Path, latency: float) -> Result:
    """n requests after a short warm-up (imports, connections, caches)."""
    asyncio.run(client(api_base, concurrency, min(n, concurrency * 2), spec))
    reset_stats(api_base)
    started, cpu, wall = time.time(), time.process_time(), time.perf_counter()
    asyncio.run(client(api_base, concurrency, n, spec))
    wall, cpu, ended = time.perf_counter() - wall, time.process_time() - cpu, time.time()
    return _breakdown(Result(name, concurrency, n, latency, wall, cpu * 1000 / n), api_base, started, ended)


def _run_kwargs(api_base: str, concurrency: int, store: Path) -> dict[str, Any]:
    # `probekit run`'s own options (probekit.settings.RunRequest): the server is named, so no key is needed.
    return {"models": [MODEL], "store": store, "new_run": True, "api_base": api_base, "concurrency": concurrency}


class CpuSampler:
    """(wall clock, process CPU) every few ms in a background thread, to split a run's CPU time by phase."""

    def __init__(self, period: float = 0.005):
        self.period = period
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), time.process_time()))
            self._stop.wait(self.period)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def cpu_at(self, moment: float) -> float:
        """Process CPU seconds at a wall-clock moment (the last sample before it)."""
        index = bisect.bisect_right(self.samples, (moment, math.inf)) - 1
        return self.samples[max(index, 0)][1]


class Profiler:
    """cProfile of the main thread plus every thread started while it is on (the runner's DuckDB writes run
    in asyncio.to_thread workers). Times are wall clock per thread, inflated by the profiler's overhead."""

    def __init__(self) -> None:
        self.main = cProfile.Profile()
        self.threads: list[cProfile.Profile] = []

    def _thread_hook(self, frame: Any, event: str, arg: Any) -> None:
        profile = cProfile.Profile()
        self.threads.append(profile)
        profile.enable()  # replaces this hook in the new thread

    def __enter__(self) -> Profiler:
        threading.setprofile(self._thread_hook)
        self.main.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self.main.disable()
        threading.setprofile(None)

    def stats(self) -> pstats.Stats:
        stats = pstats.Stats(self.main)
        for profile in self.threads:  # their threads have ended with the run's event loop
            try:
                stats.add(profile)
            except TypeError:  # a thread that never ran Python code
                continue
        return stats


def measure_whole_run(api_base: str, concurrency: int, n: int, spec: Path, workdir: Path, latency: float,
                      profiler: Profiler | None = None) -> Result:
    """`probekit.run` in-process, from the call to its return, after a warm-up run of a 2C-item survey
    (imports, first DuckDB file); then the n stored rows are checked."""
    import probekit

    warm = write_spec(workdir, min(n, 2 * concurrency))
    probekit.run([str(warm)], **_run_kwargs(api_base, concurrency, workdir / f"warm-c{concurrency}.duckdb"))
    store = workdir / f"whole-c{concurrency}.duckdb"
    reset_stats(api_base)
    started, cpu, wall = time.time(), time.process_time(), time.perf_counter()
    with CpuSampler() as sampler, profiler or contextlib.nullcontext():
        summary = probekit.run([str(spec)], **_run_kwargs(api_base, concurrency, store))
    wall, cpu_end, ended = time.perf_counter() - wall, time.process_time(), time.time()
    result = _breakdown(Result("whole run", concurrency, n, latency, wall, (cpu_end - cpu) * 1000 / n), api_base, started, ended)
    if not math.isnan(result.window):
        first, last = started + result.before, ended - result.after
        marks = [cpu, sampler.cpu_at(first), sampler.cpu_at(last), cpu_end]
        result.cpu_phases = tuple((b - a) * 1000 / n for a, b in zip(marks, marks[1:]))  # type: ignore[assignment]
    total, ok = stored_ok_rows(store, summary.run_id)
    if (total, ok) != (n, n):
        raise RuntimeError(f"whole run at C={concurrency}: {total} rows stored, {ok} ok; expected {n} ok rows")
    return result


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("probekit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "probekit.cli.main"]


def measure_cli(api_base: str, concurrency: int, n: int, spec: Path, workdir: Path, latency: float) -> Result:
    """`probekit run` in a subprocess, from spawn to exit; CPU from the child's rusage."""
    store = workdir / f"cli-c{concurrency}.duckdb"
    command = [*cli_command(), "run", str(spec), "--models", MODEL, "--api-base", api_base, "--concurrency", str(concurrency),
               "--store", str(store), "--new-run", "-q"]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    reset_stats(api_base)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # the server child is still running: not counted
    started, wall = time.time(), time.perf_counter()
    done = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True)
    wall, ended = time.perf_counter() - wall, time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"probekit run exited {done.returncode}: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = _breakdown(Result("whole run (CLI)", concurrency, n, latency, wall, cpu * 1000 / n), api_base, started, ended)
    total, ok = stored_ok_rows(store, done.stdout.strip().splitlines()[-1])
    if (total, ok) != (n, n):
        raise RuntimeError(f"CLI run at C={concurrency}: {total} rows stored, {ok} ok; expected {n} ok rows")
    return result


def load_and_expand(spec: Path) -> tuple[float, float, int]:
    """(load s, expand s, trials) of the benchmark survey, in this process (modules already imported)."""
    import probekit

    started = time.perf_counter()
    survey = probekit.load_survey(spec)
    loaded = time.perf_counter()
    trials = probekit.expand(survey)
    return loaded - started, time.perf_counter() - loaded, len(trials)


# -- reporting -----------------------------------------------------------------------------------------
def _s(value: float, digits: int = 2) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f}"


def print_results(results: list[Result]) -> None:
    print(f"{'client':<24}{'C':>5}{'wall s':>8}{'req/s':>8}{'% ideal':>9}{'CPU ms/req':>11}"
          f"{'before s':>9}{'requests s':>11}{'after s':>8}{'in-window %':>12}{'in flight':>10}{'peak':>5}")
    for r in results:
        print(f"{r.client:<24}{r.concurrency:>5}{r.wall:>8.2f}{r.rps:>8.1f}{r.of_ideal:>9.1%}{r.cpu_ms:>11.2f}"
              f"{_s(r.before):>9}{_s(r.window):>11}{_s(r.after):>8}"
              f"{('—' if math.isnan(r.in_window) else f'{r.in_window:.1%}'):>12}{_s(r.mean_in_flight, 1):>10}{r.peak_in_flight:>5}"
              + (f"  {r.note}" if r.note else ""))


def print_cpu_phases(results: list[Result]) -> None:
    for r in results:
        if r.cpu_phases:
            before, during, after = r.cpu_phases
            print(f"{r.client} C={r.concurrency}: client CPU ms/request before {before:.2f} + requests {during:.2f} "
                  f"+ after {after:.2f} = {r.cpu_ms:.2f}")


def print_comparison(results: list[Result], concurrencies: list[int]) -> None:
    by = {(r.client, r.concurrency): r for r in results}
    names = [name for name in ("bare aiohttp", "backend only", "whole run", "whole run (CLI)")
             if any((name, c) in by for c in concurrencies)]
    print("\n" + f"{'C':>5}" + "".join(f"{name + ' %':>19}{'CPU':>6}" for name in names) + f"{'whole/bare':>12}")
    for c in concurrencies:
        cells = ""
        for name in names:
            r = by.get((name, c))
            cells += f"{'—':>19}{'—':>6}" if r is None else f"{r.of_ideal:>19.1%}{r.cpu_ms:>6.2f}"
        bare, whole = by.get(("bare aiohttp", c)), by.get(("whole run", c))
        ratio = f"{whole.of_ideal / bare.of_ideal:.2f}" if bare and whole else "—"
        print(f"{c:>5}{cells}{ratio:>12}")
    print("% of the ideal rate C / latency; CPU: client CPU ms per request; whole/bare: ratio of the two % figures.")


IDLE = {"<method 'poll' of 'select.epoll' objects>", "<method 'select' of 'select.epoll' objects>",
        "<method 'get' of '_queue.SimpleQueue' objects>", "<method 'acquire' of '_thread.lock' objects>",
        "<method 'control' of 'select.kqueue' objects>"}


def print_profile(profiler: Profiler, n: int, top: int) -> None:
    """Top functions by cumulative and by self time, in ms per request: probekit's own functions, then
    everything (libraries included)."""
    entries = profiler.stats().stats  # type: ignore[attr-defined]
    package = str(Path(sys.modules["probekit"].__file__ or "").parent.parent) + "/"
    prefixes = sorted({package, str(ROOT) + "/", *(p + "/" for p in sys.path if "site-packages" in p), sys.prefix + "/lib/",
                       sys.base_prefix + "/lib/"}, key=len, reverse=True)

    def where(key: tuple[str, int, str]) -> str:
        path, line, func = key
        for prefix in prefixes:
            if path.startswith(prefix):
                path = path[len(prefix):]
                break
        return f"{func}  ({path}:{line})" if line else func

    ours = {k: v for k, v in entries.items() if k[0].startswith(package + "probekit/")}
    # Idle waits (the event loop's poll, worker threads waiting for work) are not work: left out.
    busy = {k: v for k, v in entries.items() if k[2] not in IDLE}
    tables = (("probekit functions by cumulative time", ours, 3), ("probekit functions by self time", ours, 2),
              ("all functions by self time (idle waits left out)", busy, 2))
    print(f"\ncProfile of the whole run (main thread + worker threads, wall time per thread, with profiler overhead); "
          f"ms per request over {n} requests")
    for title, table, index in tables:
        print(f"\n{title}\n{'cum ms':>8}{'self ms':>9}{'calls/req':>10}  function")
        for key, (_cc, calls, tt, ct, _callers) in sorted(table.items(), key=lambda kv: kv[1][index], reverse=True)[:top]:
            print(f"{ct * 1000 / n:>8.3f}{tt * 1000 / n:>9.3f}{calls / n:>10.2f}  {where(key)}")


# -- main ----------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("-n", "--requests", type=int, default=2000, help="requests (= survey items) per concurrency level (C > 1)")
    parser.add_argument("--requests-c1", type=int, default=200, help="requests at C = 1 (2,000 take 200 s)")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--latency", type=float, default=0.1, help="server latency in seconds (default 0.1)")
    parser.add_argument("--cli", type=int, nargs="*", default=[32], metavar="C",
                        help="concurrency levels for the CLI run (default 32; --cli alone: none)")
    parser.add_argument("--clients", nargs="+", default=["bare", "backend", "whole"], choices=["bare", "backend", "whole"],
                        help="which in-process clients to measure (default all three)")
    parser.add_argument("--litellm", action="store_true", help="also measure a plain litellm.acompletion loop")
    parser.add_argument("--profile", type=int, metavar="C", help="only profile the whole run at this concurrency (cProfile)")
    parser.add_argument("--profile-top", type=int, default=25, help="functions listed per profile table")
    parser.add_argument("--keep", type=Path, help="write the survey and stores here (default: a temporary directory)")
    args = parser.parse_args()

    clients: dict[str, Client] = {}
    if "bare" in args.clients:
        clients["bare aiohttp"] = bare_aiohttp
    if "backend" in args.clients:
        clients["backend only"] = backend_only
    if args.litellm:
        clients["litellm.acompletion"] = litellm_loop
    process, api_base = start_latency_server(args.latency)
    temporary = None if args.keep else tempfile.TemporaryDirectory(prefix="probekit-bench-")
    workdir = args.keep or Path(temporary.name)  # type: ignore[union-attr]
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    specs: dict[int, Path] = {}

    def spec_for(n: int) -> Path:
        if n not in specs:
            specs[n] = write_spec(workdir, n)
        return specs[n]

    def report(result: Result) -> None:
        results.append(result)
        print(f"  {result.client:<22} C={result.concurrency:<4} {result.rps:8.1f} req/s  {result.of_ideal:6.1%} of ideal  "
              f"{result.cpu_ms:5.2f} CPU ms/req", file=sys.stderr, flush=True)

    try:
        if args.profile:
            spec = spec_for(args.requests)
            profiler = Profiler()
            result = measure_whole_run(api_base, args.profile, args.requests, spec, workdir, args.latency, profiler)
            print_results([result])
            print_cpu_phases([result])
            print_profile(profiler, args.requests, args.profile_top)
            return
        for concurrency in args.concurrency:
            n = args.requests_c1 if concurrency == 1 else args.requests
            spec = spec_for(n)
            for name, client in clients.items():
                try:
                    report(measure_client(name, client, api_base, concurrency, n, spec, args.latency))
                except Exception as error:  # the backend's API changed (see backend_only): the other rows still run
                    if client is not backend_only:
                        raise
                    print(f"  {name}: skipped ({type(error).__name__}: {error}); re-point backend_only()", file=sys.stderr)
            if "whole" in args.clients:
                report(measure_whole_run(api_base, concurrency, n, spec, workdir, args.latency))
        for concurrency in args.cli:
            n = args.requests_c1 if concurrency == 1 else args.requests
            report(measure_cli(api_base, concurrency, n, spec_for(n), workdir, args.latency))
        load_s, expand_s, trials = load_and_expand(spec_for(args.requests))
    finally:
        stop_latency_server(process)
        if temporary is not None:
            temporary.cleanup()

    load = os.getloadavg()
    print(f"\nlatency {args.latency * 1000:.0f} ms, {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f} at the end; {args.requests} requests per level ({args.requests_c1} at C = 1); "
          f"{N_OPTIONS} options per item")
    print_results(results)
    print_cpu_phases(results)
    print_comparison(results, sorted({*args.concurrency, *args.cli}))
    print(f"spec of {args.requests} items: load {load_s:.2f} s + expand {expand_s:.2f} s ({trials} trials), in-process, "
          f"modules imported (part of `before`)")
    if (os.cpu_count() or 0) <= 2:
        print("note: few cores; the server shares them with the client, so every figure is a lower bound.")


if __name__ == "__main__":
    main()

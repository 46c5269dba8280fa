"""`--executor ray`: a local model's trials sharded over Ray actors, each holding one backend.

Each actor (`ModelActor`) makes the model's backend in its own process (transformers or vLLM; with the GPUs
Ray assigns it), wraps it in the same ModelRuntime the in-process path uses and scores whole batches; the
rows come back to the driver, whose one writer records them. Nothing is recorded by an actor, so an actor
that dies loses only the batches it was scoring: the driver sends them again (to another actor, or to the
same one once Ray has restarted it) and a row reaches the store once. A killed driver resumes like any run.

API models are not sharded: they are network-bound and one process keeps hundreds of requests in flight,
and their keys stay in the driver's environment instead of travelling to cluster nodes.

Ray is an optional dependency (`pip install 'probekit[ray]'`); it is imported only when this executor runs.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable

from probekit.backends.base import ModelInfo
from probekit.execution import LocalScorer, error_row
from probekit.ray_options import RayOptions, check_local_capacity, check_reachable
from probekit.runtime import RetryPolicy
from probekit.scoring import ScoringSettings
from probekit.store.rows import ResultRow
from probekit.survey.expand import Trial

INSTALL_HINT = "Ray is not installed: pip install 'probekit[ray]' (or pip install ray)"
MAX_SENDS_PER_BATCH = 4
"""A batch whose actor died is sent again, at most this many times in all; then it is stored as an error
(and sent again when the run is resumed)."""
RESTART_WAIT_SECONDS = 300.0
"""How long the driver waits for Ray to restart a dead actor before giving up on it."""
# Settings the actors need; passed explicitly because on a cluster workers do not inherit the driver's
# environment. Keys are never among them (API models are not sharded).
_FORWARDED_ENV = ("LITELLM_LOCAL_MODEL_COST_MAP", "TOKENIZERS_PARALLELISM", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                  "HF_HOME", "PROBEKIT_CACHE_DIR", "VLLM_CPU_KVCACHE_SPACE", "TRANSFORMERS_VERBOSITY", "TQDM_DISABLE",
                  "HF_HUB_DISABLE_PROGRESS_BARS")


# -- the Ray session -------------------------------------------------------------------------------------
# Several runs of one process may use Ray at once (the stages of a judging experiment run their models
# concurrently): the session is counted, and a local instance this process started is shut down when its
# last user is done. A Ray session the caller started (ray.init before probekit) is left alone.
_session_lock = threading.Lock()
_users = 0
_ours = False
_address: str | None = None




def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return ray


def connect(options: RayOptions, cpus_needed: float = 0.0) -> None:
    """Join `options.address`, or start a local instance with room for `cpus_needed` (logical CPUs: the
    actors of every model of the run fit even on a small machine, where they then share the cores).
    Every call is matched by one `release()`."""
    global _users, _ours, _address
    ray = _import_ray()
    with _session_lock:
        if ray.is_initialized():
            if not _ours or options.address == _address:
                _users += 1
                return
            if _users:
                raise RuntimeError(f"this process already uses the Ray cluster at {_address or 'a local instance'}; "
                                   f"run one with --ray-address {options.address} in another process")
            ray.shutdown()
            _ours = False
        import logging

        env = {name: os.environ[name] for name in _FORWARDED_ENV if name in os.environ}
        kwargs: dict[str, Any] = {"namespace": "probekit", "logging_level": logging.ERROR, "log_to_driver": False,
                                  "runtime_env": {"env_vars": env}}
        if options.address:
            check_reachable(options.address)
            kwargs["address"] = options.address
        else:  # "local": a new instance, never whatever cluster `ray start` last left on this machine
            kwargs.update(address="local", num_cpus=max(os.cpu_count() or 1, int(cpus_needed + 0.999)),
                          include_dashboard=False)
        try:
            ray.init(**kwargs)
        except ConnectionError as error:
            auth = ("; if the cluster uses token authentication (`ray start` does by default since Ray 2.59), set "
                    "RAY_AUTH_MODE=token here too, with the cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN"
                    if os.environ.get("RAY_AUTH_MODE", "disabled") == "disabled" else "")
            raise RuntimeError(f"cannot reach the Ray cluster at {options.address}: {error}. Check --ray-address "
                               f"(e.g. 127.0.0.1:6379, or ray://host:10001 for Ray Client){auth}") from None
        _ours, _address, _users = True, options.address, 1


def release() -> None:
    """One user of the session is done; the last one shuts down a local instance this process started (a
    joined cluster keeps running, only this process leaves it)."""
    global _users, _ours
    with _session_lock:
        _users = max(0, _users - 1)
        if _users == 0 and _ours:
            import ray

            ray.shutdown()
            _ours = False


# -- the actor --------------------------------------------------------------------------------------------
class ModelActor:
    """One backend in a Ray worker process. The model starts on the first call, so a restarted actor
    (after its process died) is ready again as soon as it is asked for work."""

    def __init__(self, model: str, backend_options: dict[str, Any] | None, policy: RetryPolicy):
        self.model = model
        self.backend_options = backend_options
        self.policy = policy
        self._scorer: LocalScorer | None = None
        self._starting: asyncio.Future[dict[str, Any]] | None = None

    async def ping(self) -> int:
        return os.getpid()

    async def start(self) -> dict[str, Any]:
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        return await asyncio.shield(self._starting)

    async def _start(self) -> dict[str, Any]:
        import probekit
        from probekit.backends import make_backend

        scorer = LocalScorer(make_backend(self.model, self.backend_options), self.policy)
        info = await scorer.start()
        self._scorer = scorer
        import ray

        context = ray.get_runtime_context()
        return {"info": info, "model": scorer.model, "max_batch": scorer.max_batch, "concurrency": scorer.concurrency, "pid": os.getpid(),
                "node": context.get_node_id(), "gpus": [str(g) for g in ray.get_gpu_ids()],
                "probekit": probekit.__version__}

    async def score(self, batch: list[Trial], settings: ScoringSettings) -> list[ResultRow]:
        await self.start()
        assert self._scorer is not None
        return await self._scorer.score(batch, settings)

    async def stats(self) -> tuple[int, int]:
        return self._scorer.stats_now() if self._scorer is not None else (0, 0)

    async def close(self) -> None:
        if self._scorer is not None:
            await self._scorer.close()


@dataclass
class _Slot:
    index: int
    handle: Any
    in_flight: int = 0
    alive: bool = True


# -- the driver side ---------------------------------------------------------------------------------------
class RayScorer:
    """A model's scorer made of `options.actors` Ray actors; batches go to the actor with the least work."""

    def __init__(self, model: str, backend_options: dict[str, Any] | None, policy: RetryPolicy, options: RayOptions,
                 notice: Callable[[str], None] | None = None, cpus_needed: float = 0.0):
        self.model = model
        self.backend_options = backend_options
        self.policy = policy
        self.options = options
        self.notice = notice
        self.cpus_needed = cpus_needed or options.actors * options.num_cpus
        self.max_batch = 1
        self.concurrency = 1
        self.slots: list[_Slot] = []
        self._connected = False

    def _gpus_per_actor(self, ray: Any) -> float:
        if self.options.num_gpus is not None:
            return self.options.num_gpus
        if ray.cluster_resources().get("GPU", 0) < 1:
            return 0.0
        return float((self.backend_options or {}).get("tensor_parallel_size", 1))

    def _check_fits(self, ray: Any, gpus: float) -> None:
        """Actors asking for more than the cluster has would wait forever: say so instead."""
        resources = ray.cluster_resources()
        for name, each in (("GPU", gpus), ("CPU", self.options.num_cpus)):
            need, have = each * self.options.actors, resources.get(name, 0.0)
            if need > have:
                raise RuntimeError(f"{self.model}: {self.options.actors} Ray actor(s) × {each:g} {name} need {need:g} {name}s "
                                   f"but the cluster has {have:g}: use fewer actors (--ray-actors) or fewer "
                                   f"{name}s per actor (--ray-{name.lower()}s)")

    async def start(self) -> ModelInfo:
        check_local_capacity(self.options)  # before Ray starts: a refusal starts nothing
        await asyncio.to_thread(connect, self.options, self.cpus_needed)
        self._connected = True
        ray = _import_ray()
        gpus = self._gpus_per_actor(ray)
        self._check_fits(ray, gpus)
        actor_class = ray.remote(ModelActor).options(num_cpus=self.options.num_cpus, num_gpus=gpus,
                                                     max_restarts=self.options.max_restarts, max_task_retries=0)
        self.slots = [_Slot(i, actor_class.remote(self.model, self.backend_options, self.policy))
                      for i in range(self.options.actors)]
        try:
            started = await asyncio.gather(*(slot.handle.start.remote() for slot in self.slots))
        except ray.exceptions.RayError as error:
            cause = getattr(error, "cause", None) or error
            raise RuntimeError(f"{self.model}: could not start on Ray: {cause}") from None
        import probekit

        for facts in started:
            if facts["probekit"] != probekit.__version__:
                raise RuntimeError(f"{self.model}: a Ray worker runs probekit {facts['probekit']}, this process "
                                   f"{probekit.__version__}: install the same version on every node")
        infos: list[ModelInfo] = [facts["info"] for facts in started]
        revisions = {info.revision for info in infos}
        if len(revisions) > 1:  # one model key, different weights on different nodes: the rows would mix them
            raise RuntimeError(f"{self.model}: the Ray actors loaded different weights ({', '.join(sorted(map(str, revisions)))}); "
                               "make the model identical on every node")
        self.model = started[0]["model"]  # the backend's name (the fake engine drops its script from the key)
        self.max_batch = started[0]["max_batch"]
        self.concurrency = sum(facts["concurrency"] for facts in started)
        info = infos[0]
        info.details["executor"] = {"kind": "ray", "actors": len(self.slots), "gpus_per_actor": gpus,
                                    "nodes": len({facts["node"] for facts in started})}
        return info

    def _pick(self) -> _Slot | None:
        alive = [slot for slot in self.slots if slot.alive]
        return min(alive, key=lambda slot: (slot.in_flight, slot.index)) if alive else None

    async def _still_alive(self, slot: _Slot) -> bool:
        """After a failed call: True once Ray has restarted the actor, False when it is gone for good."""
        ray = _import_ray()
        try:
            await asyncio.wait_for(slot.handle.ping.remote(), RESTART_WAIT_SECONDS)
            return True
        except (ray.exceptions.RayActorError, asyncio.TimeoutError):
            return False

    async def score(self, batch: list[Trial], settings: ScoringSettings) -> list[ResultRow]:
        ray = _import_ray()
        last_error = "no Ray actor left"
        for _ in range(MAX_SENDS_PER_BATCH):
            slot = self._pick()
            if slot is None:
                break
            slot.in_flight += 1
            try:
                return list(await slot.handle.score.remote(batch, settings))
            except ray.exceptions.RayActorError as error:
                last_error = f"Ray actor {slot.index} died: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
            except ray.exceptions.RayError as error:  # not a fault the scoring layer turned into error rows
                return [error_row("", trial, self.model, type(error).__name__, str(error), 1) for trial in batch]
            finally:
                slot.in_flight -= 1
            if slot.alive:
                if self.notice:
                    self.notice(f"{self.model}: {last_error}; its batches are sent again")
                slot.alive = await self._still_alive(slot)
                if not slot.alive and self.notice:
                    self.notice(f"{self.model}: Ray actor {slot.index} is gone; "
                                f"{sum(s.alive for s in self.slots)} actor(s) left")
        return [error_row("", trial, self.model, "actor_died", last_error, MAX_SENDS_PER_BATCH) for trial in batch]

    async def stats(self) -> tuple[int, int]:
        ray = _import_ray()
        totals = [0, 0]
        for slot in self.slots:
            if not slot.alive:
                continue
            try:
                hits, calls = await slot.handle.stats.remote()
            except ray.exceptions.RayError:
                continue
            totals[0] += hits
            totals[1] += calls
        return totals[0], totals[1]

    async def close(self) -> None:
        ray = _import_ray() if self.slots else None
        for slot in self.slots:
            try:
                if slot.alive:
                    await asyncio.wait_for(slot.handle.close.remote(), 60)
            except (Exception, asyncio.TimeoutError):
                pass  # a backend that cannot close cleanly still goes with its process
            finally:
                ray.kill(slot.handle)  # type: ignore[union-attr]
        self.slots = []
        if self._connected:
            self._connected = False
            release()

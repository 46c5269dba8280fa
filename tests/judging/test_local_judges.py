"""Judges whose weights load in this process load one at a time: the judging flow asks the engine registry
(`local_weights`), so two `vllm:` judges never hold one GPU at once (before, a `vllm:` key was not "local"
to the flow's own prefix list and both judges loaded together). No vLLM is needed: the `vllm` engine's
factory is replaced by the fake engine, which records when each judge loads and is closed."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from selfpref_helpers import write_experiment

import probekit.backends as backends
from probekit.backends.base import ModelInfo
from probekit.backends.fake import FakeBackend
from probekit.judging import run_judging

JUDGES = ["vllm:judge-a", "vllm:judge-b"]


class RecordingJudge(FakeBackend):
    """The fake engine under a `vllm:` key, writing ("load" | "close", key) to a shared event list. A loaded
    judge stays loaded until the other judge has loaded too, for at most `linger` seconds: two judges the flow
    lets load together always do (so neither test depends on the scheduler's timing), and one that must wait
    for the other costs the first only the linger."""

    def __init__(self, key: str, events: list[tuple[str, str]], linger: float):
        super().__init__(f"fake:{key.removeprefix('vllm:')}")
        self.model, self.events, self.linger = key, events, linger

    async def start(self) -> ModelInfo:
        self.events.append(("load", self.model))
        for _ in range(int(self.linger / 0.01)):
            if sum(kind == "load" for kind, _ in self.events) >= len(JUDGES):
                break
            await asyncio.sleep(0.01)
        return await super().start()

    async def close(self) -> None:
        self.events.append(("close", self.model))
        await super().close()


def _with_vllm_engine(monkeypatch: pytest.MonkeyPatch, events: list[tuple[str, str]], *, local_weights: bool) -> None:
    def factory(model: str, options: dict[str, Any]) -> RecordingJudge:
        # One-at-a-time judges: a short linger (the other could load meanwhile, were it allowed to); the control's
        # judges may load together: they wait for each other.
        return RecordingJudge(model, events, linger=2.0 if local_weights else 60.0)

    engines = [dataclasses.replace(e, factory=factory, local_weights=local_weights) if e.name == "vllm" else e
               for e in backends._ENGINES]
    monkeypatch.setattr(backends, "_ENGINES", engines)
    assert backends.engine_for(JUDGES[0]).name == "vllm"


def _most_loaded_at_once(events: list[tuple[str, str]]) -> int:
    loaded: set[str] = set()
    most = 0
    for kind, model in events:
        if kind == "load":
            loaded.add(model)
            most = max(most, len(loaded))
        else:
            loaded.discard(model)
    return most


def _judge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, local_weights: bool) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    _with_vllm_engine(monkeypatch, events, local_weights=local_weights)
    experiment = write_experiment(tmp_path, judge={"pairs": "all"})  # the judges wrote no answer: every pair
    summary = run_judging(experiment, models=["fake:a", "fake:b"], judges=JUDGES, store=tmp_path / "s.duckdb")
    judged = [s for s in summary.stages if s.stage == "judge"]
    assert [(s.model, s.ok, s.errors) for s in judged] == [(j, 8, 0) for j in JUDGES]  # 1 pair × 4 questions × 2 orders
    return events


def test_two_vllm_judges_load_one_after_the_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _judge(tmp_path, monkeypatch, local_weights=True)
    assert sorted(events) == sorted([("load", j) for j in JUDGES] + [("close", j) for j in JUDGES])
    assert _most_loaded_at_once(events) == 1, events
    first = events[0][1]
    assert events[:2] == [("load", first), ("close", first)], events


def test_judges_behind_an_api_score_concurrently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the same engine registered without local_weights is treated as an API (both judges at once),
    so the test above would see an overlap if the flow ignored the registry flag."""
    events = _judge(tmp_path, monkeypatch, local_weights=False)
    assert _most_loaded_at_once(events) == 2, events

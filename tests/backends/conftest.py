"""Fixtures for the API backend tests: the real llama.cpp server (once per session) and the
fault-injection proxy in front of it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helpers below live next to the tests

from llama_server import LlamaServer, start_llama_server  # noqa: E402

DUMMY_KEY_ENV = "PROBEKIT_TEST_LLAMA_KEY"


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-cpp-python[server] serving SmolLM2 (Q4_1 GGUF) on a free loopback port."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python[server] is not installed: pip install 'llama-cpp-python[server]'")
    from probekit.backends.hf_loader import resolve_local

    gguf = resolve_local("smollm2").gguf_path
    assert gguf is not None
    server = start_llama_server(gguf, tmp_path_factory.mktemp("llama") / "server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def deterministic_llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """The same server evaluating one token per batch. llama.cpp's numbers depend on how a prompt is split
    into batches, and the server reuses the KV cache of the previous prompt's common prefix: a prompt sent
    twice in a row (a retry after a fault that reached the server) is evaluated in a different split than
    after another prompt, and its first-token logprob moved by 0.04 in our runs (enough to flip a greedy
    answer). With one token per batch every split is the same, so identical requests give identical
    answers whatever came before — which the fault-injection test needs for its comparison."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python[server] is not installed: pip install 'llama-cpp-python[server]'")
    from probekit.backends.hf_loader import resolve_local

    gguf = resolve_local("smollm2").gguf_path
    assert gguf is not None
    server = start_llama_server(gguf, tmp_path_factory.mktemp("llama-b1") / "server.log", extra_args=("--n_batch", "1", "--n_ubatch", "1"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dummy_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The server needs no key, but OpenAI-style clients send one: a dummy, from the environment."""
    monkeypatch.setenv(DUMMY_KEY_ENV, "dummy-not-a-secret")
    return DUMMY_KEY_ENV

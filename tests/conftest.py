"""Shared fixtures. Real components: the embedded models, real DuckDB files, real subprocesses."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "backends"))  # the server and proxy helpers live there

from llama_server import LlamaServer, start_llama_server  # noqa: E402

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"


MODEL_FIXTURES = frozenset({"smollm2", "gemma3", "llama_server", "deterministic_llama_server"})
"""Fixtures that load a real model or start a real server: a test using one is slow."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`pytest -m "not slow"` loads no model: a test that uses a model fixture is marked slow here, whatever its
    file says."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _no_model_loads_in_fast_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test without the slow mark that loads real weights (directly, through probekit.run, or a fixture it
    asks for by name) fails at once, naming the fix, instead of making the fast subset slow."""
    if request.node.get_closest_marker("slow") is not None:
        return
    import probekit.backends.hf as hf
    import probekit.backends.hf_loader as hf_loader

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"{request.node.nodeid} loads a real model: mark it @pytest.mark.slow (pytest -m 'not slow' "
                           "must load none)")

    monkeypatch.setattr(hf, "load_model", refuse)
    monkeypatch.setattr(hf_loader, "load_model", refuse)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A fresh DuckDB file path (created on first write)."""
    return tmp_path / "store.duckdb"


@pytest.fixture(scope="session")
def smollm2():
    """The embedded SmolLM2-135M-Instruct, loaded once per test session (transformers, CPU)."""
    from probekit.backends.hf import HFBackend

    backend = HFBackend("smollm2")
    backend.load()
    return backend


@pytest.fixture(scope="session")
def gemma3():
    """The embedded Gemma-3-270M base model (no chat template), loaded once per test session."""
    from probekit.backends.hf import HFBackend

    backend = HFBackend("gemma3-270m")
    backend.load()
    return backend


# -- the real llama.cpp OpenAI-compatible server (once per session), shared by the API and scoring tests --
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

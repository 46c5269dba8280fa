"""Start and stop a real llama-cpp-python OpenAI-compatible server (a subprocess on a free loopback port)
serving the embedded SmolLM2 GGUF with `--logits_all true`, so responses carry real top_logprobs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ALIAS = "smollm2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LlamaServer:
    """A running server: `api_base` for litellm / probekit, `model` the litellm model string."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return f"openai/{ALIAS}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_llama_server(gguf: Path, log: Path, *, ready_timeout: float = 180.0, extra_args: tuple[str, ...] = ()) -> LlamaServer:
    """Launch `python -m llama_cpp.server` and wait until it answers /v1/models."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
               "--port", str(port), "--logits_all", "true", "--model_alias", ALIAS, "--n_ctx", "2048", *extra_args]
    handle = log.open("wb")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ})
    server = LlamaServer(process, port, log)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}; log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.api_base}/models", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"llama_cpp.server did not answer within {ready_timeout:.0f}s; log:\n{log.read_text()[-3000:]}")

"""Issue 10, keys: a key never reaches the store, the terminal or an error message — not when a server echoes the
Authorization header (at any position, across the cuts at 500 and 2,000 characters), not through litellm's
exception text, not when a key is written in models.yaml under another name or given to --api-key-env, not in
a rejected value. models.yaml `params: {extra_headers: ...}` is sent on the direct transport too."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cli_helpers import STARTER, cli, cli_subprocess, refused

from probekit.backends.errors import redact, redact_and_cut

pytestmark = pytest.mark.slow  # drives the CLI or other processes: the full suite, not the quick loop

KEY_ENV = "HARDENING_STUB_VALUE"  # a name that does not say "key": redaction must work by the value actually sent


def _completion(model: str) -> dict[str, Any]:
    content = [{"token": "A", "logprob": -0.1, "top_logprobs": [{"token": "A", "logprob": -0.1}, {"token": "B", "logprob": -2.4}]}]
    return {"id": "x", "object": "chat.completion", "model": model, "created": 0,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "stop",
                         "logprobs": {"content": content}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}


class _Stub(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint whose behaviour is the requested model name: `ok`, or `echo<status>-<pad>`
    (that status, with the received Authorization header echoed after <pad> characters), `malformed-<pad>`."""

    seen: list[dict[str, str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        model = str(body.get("model", ""))
        auth = self.headers.get("Authorization", "")
        if model == "ok":
            self._send(200, json.dumps(_completion(model)))
        elif model.startswith("echo"):
            status, pad = model.removeprefix("echo").split("-")
            echoed = "p" * int(pad) + f"Incorrect API key provided. Received header Authorization: {auth} ..." + "q" * 3000
            self._send(int(status), json.dumps({"error": {"message": echoed, "type": "invalid_request_error"}}))
        elif model.startswith("malformed"):
            self._send(200, "p" * int(model.split("-")[1]) + f"not json {auth}")
        else:
            self._send(404, json.dumps({"error": {"message": f"no model {model}"}}))

    def _send(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


def _models_yaml(tmp: Path, api_base: str, transport: str = "direct", key_env: str | None = KEY_ENV) -> Path:
    path = tmp / "models.yaml"
    named = f"    api_key_env: {key_env}\n" if key_env else ""
    path.write_text(f"models:\n  'openai/*':\n    api_base: {api_base}\n{named}    logprobs: true\n"
                    f"    transport: {transport}\n    concurrency: 2\n"
                    "    params: {extra_headers: {X-Probekit-Probe: hello}}\n")
    return path


def _assert_absent(key: str, store: Path, outputs: list[str], dump: Path) -> None:
    con = duckdb.connect(str(store), read_only=True)
    con.execute(f"EXPORT DATABASE '{dump}' (FORMAT CSV)")  # DuckDB compresses strings on disk: search plain text too
    con.close()
    for path in [store, *dump.iterdir()]:
        assert key.encode() not in path.read_bytes(), f"key found in {path}"
        assert key[:12].encode() not in path.read_bytes(), f"part of the key found in {path}"
    for text in outputs:
        assert key not in text and key[:12] not in text


# pads put the echoed key before, across and after the cut at 500 characters of a provider body (the key starts
# 90 characters after the pad) and the cut at 2,000 of a stored message (litellm's exception text is not cut at 500)
ECHO_MODELS = ["openai/echo401-0", "openai/echo401-395", "openai/echo401-402", "openai/echo401-410",
               "openai/echo400-1900", "openai/echo500-2100", "openai/echo403-10", "openai/malformed-150"]
LITELLM_MODELS = ["openai/echo401-402", "openai/echo400-1900", "openai/echo500-1940"]


@pytest.mark.parametrize("transport,key_env", [("direct", KEY_ENV), ("litellm", KEY_ENV), ("litellm", None)],
                         ids=["direct", "litellm", "litellm-reads-OPENAI_API_KEY-itself"])
def test_an_echoed_key_is_never_stored_or_printed(stub: str, tmp_path: Path, transport: str, key_env: str | None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    key = "Zq" + secrets.token_hex(20)  # no known key shape: only redaction by value can catch it
    store = tmp_path / "s.duckdb"
    models = ECHO_MODELS if transport == "direct" else LITELLM_MODELS
    _Stub.seen.clear()
    args = ("run", str(STARTER), "--models", *models, "--models-config", str(_models_yaml(tmp_path, stub, transport, key_env)),
            "--limit", "1", "--store", str(store), "--max-rate-limit-wait", "1")
    variable = KEY_ENV if key_env else "OPENAI_API_KEY"
    if transport == "direct":
        result = cli_subprocess(*args, env={variable: key}, timeout=300)
    else:  # in this process: litellm is imported once for both cases
        monkeypatch.setenv(variable, key)
        result = cli(*args)
    said = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in said, said
    rows = duckdb.connect(str(store), read_only=True).execute(
        "SELECT model, status, error_class, error_message FROM results").fetchall()
    assert rows and all(r[1] == "error" for r in rows), rows
    assert any("Authorization: Bearer ***" in r[3] for r in rows), rows  # redacted where the cut keeps it
    assert all(len(r[3]) <= 2000 for r in rows)
    _assert_absent(key, store, [result.stdout, result.stderr], tmp_path / "dump")
    # The key was sent (the stub saw it), with the models.yaml extra header, on either transport.
    assert any(h.get("authorization") == f"Bearer {key}" for h in _Stub.seen)
    assert all(h.get("x-probekit-probe") == "hello" for h in _Stub.seen), _Stub.seen[:1]


def test_extra_headers_reach_the_server_on_a_good_run(stub: str, tmp_path: Path) -> None:
    _Stub.seen.clear()
    result = cli("run", str(STARTER), "--models", "openai/ok", "--models-config", str(_models_yaml(tmp_path, stub)),
                 "--limit", "1", "--store", str(tmp_path / "s.duckdb"), "-q")
    assert result.returncode == 0, result.stderr
    assert _Stub.seen and all(h.get("x-probekit-probe") == "hello" for h in _Stub.seen)


KEY = "sk-proj-" + "A1b2C3d4" * 5
# (models.yaml entry lines, words of the refusal)
KEYS_IN_MODELS_YAML: list[tuple[str, str]] = [
    (f"api_key: {KEY}", "holds a key"),
    (f"apikey: {KEY}", "holds a key"),
    (f"API_KEY: {KEY}", "holds a key"),
    (f"key: {KEY}", "holds a key"),
    (f"token: {KEY}", "holds a key"),
    (f"secret: {KEY}", "holds a key"),
    (f"password: {KEY}", "holds a key"),
    (f"auth_token: {KEY}", "holds a key"),
    (f"api_key_env: {KEY}", "NAME of an environment variable"),
    ("api_key_env: A1b2C3d4E5f6G7h8I9j0", "NAME of an environment variable"),
    (f"concurrency: {KEY}", "concurrency"),
    (f"rpm: {KEY}", "rpm"),
    (f"transport: {KEY}", "transport"),
    (f"api_base: https://user:{KEY}@example.com/v1", "user:password"),
    (f"params: [{KEY}", "YAML syntax error"),
    (f"bogus_setting: {KEY}", "unknown setting"),
]


@pytest.mark.parametrize("line,words", KEYS_IN_MODELS_YAML, ids=[c[0].split(":")[0] for c in KEYS_IN_MODELS_YAML])
def test_a_key_in_models_yaml_is_refused_without_echo(tmp_path: Path, line: str, words: str) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(f"models:\n  openai/gpt-4o-mini:\n    {line}\n")
    store = tmp_path / "s.duckdb"
    result = cli("run", str(STARTER), "--models", "openai/gpt-4o-mini", "--models-config", str(config), "--store", str(store))
    refused(result, words, code=1)
    assert KEY not in result.stdout + result.stderr and "A1b2C3d4" not in result.stdout + result.stderr
    assert not store.exists()


@pytest.mark.parametrize("value", [KEY, "sk_live_" + "9f8e7d6c" * 4, "A1b2C3d4E5f6G7h8I9j0", "0123456789abcdef0123456789abcdef",
                                   "AIzaSyA" + "x1" * 16, "hf_" + "AbCdEfGhIj" * 3, "my-key", "has space"])
def test_a_key_given_to_api_key_env_is_refused_and_never_stored(tmp_path: Path, value: str) -> None:
    store = tmp_path / "s.duckdb"
    result = cli("run", str(STARTER), "--models", "openai/gpt-4o-mini", "--api-key-env", value, "--store", str(store))
    refused(result, "NAME of an environment variable", code=1)
    assert value not in result.stdout + result.stderr
    assert not store.exists()


def test_api_key_env_names_are_still_accepted(stub: str, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "MY_PROXY_KEY", "my_key", "HostedVllmKey"):
        result = cli("run", str(STARTER), "--models", "openai/ok", "--api-base", stub, "--api-key-env", name, "--limit", "1",
                     "--store", str(tmp_path / f"{name}.duckdb"), "-q")
        assert result.returncode == 0, (name, result.stderr)
        config = duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True).execute("SELECT config FROM runs").fetchone()
        assert config is not None and name in config[0]


REDACTIONS: list[tuple[str, str]] = [
    ("Incorrect API key provided: sk-abc123456789xyz", "sk-abc123456789xyz"),
    ('{"Authorization": "Bearer opaque-token-value-123"}', "opaque-token-value-123"),
    ("authorization: Basic dXNlcjpwYXNzd29yZDEyMw==", "dXNlcjpwYXNzd29yZDEyMw=="),
    ("x-api-key: 0a1b2c3d4e5f6a7b8c9d", "0a1b2c3d4e5f6a7b8c9d"),
    ("api_key=plainvalue9876", "plainvalue9876"),
    ('{"apiKey": "plainvalue9876"}', "plainvalue9876"),
    ("password: hunter2hunter2", "hunter2hunter2"),
    ("google AIzaSyA1234567890abcdefghijklmnop", "AIzaSyA1234567890abcdefghijklmnop"),
    ("hf token hf_abcdefghijklmnopqrstuv", "hf_abcdefghijklmnopqrstuv"),
    ("github ghp_abcdefghijklmnopqrstuv123", "ghp_abcdefghijklmnopqrstuv123"),
    ("aws AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "eyJhbGciOiJIUzI1NiJ9"),
    ("anthropic sk-ant-api03-abcdefghijkl", "sk-ant-api03-abcdefghijkl"),
]


@pytest.mark.parametrize("text,secret", REDACTIONS, ids=[r[0].split()[0] for r in REDACTIONS])
def test_redaction_by_pattern(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redaction_by_value_before_the_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "opaque" + secrets.token_hex(10)
    for pad in range(1980, 2001):
        cut = redact_and_cut("x" * pad + key + "y" * 50, 2000, [key])
        assert key[:6] + key[6:10] not in cut and len(cut) <= 2000
    monkeypatch.setenv("SERVICE_TOKEN", key)  # a credential-named variable: redacted wherever its value appears
    assert key not in redact(f"server said {key}")
    assert redact("plain words stay") == "plain words stay"

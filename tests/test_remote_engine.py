"""The remote runtime: suggestions from an OpenAI-compatible server, with our prompts, stop rules and filters.

Two kinds of server, both on loopback. llama-cpp-python's own server (its ``server`` extra) on the
tiny GGUF is the real one: its suggestions match the in-process llama.cpp engine's, a cancel closes
its stream, and it is killed and restarted under a running engine. A small fake server of the tests'
own records request bodies and streams canned answers: what a request names for vLLM and llama.cpp
adapters, publishing to them, and suppressions.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hotfix_engine.completion import CompletionRequest
from hotfix_engine.errors import AdapterError, Cancelled, ConfigError, ModelError
from hotfix_engine.models import parse_remote, parse_spec
from hotfix_engine.remote_engine import RemoteEngine, load_remote
from hotfix_engine.runtimes import choose_runtime, load_engine
from hotfix_engine.steering import Steer
from hotfix_engine.stopping import CancelToken

SERVER_MODULES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)
needs_server = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in SERVER_MODULES),
    reason="llama-cpp-python's server extra is not installed",
)
READY_S = 90.0

# Prompts whose last token token healing leaves alone (the remote runtime cannot heal), so the
# in-process engine and the server see the same text.
PREFIX = "def find(items, target):\n    for index, item in enumerate(items):\n        "
PROMPTS = [
    PREFIX,
    "class Stack:\n    def push(self, item):\n        ",
    "def add(a, b):\n    ",
    "items = [\n    ",
]


# Spec and runtime ---------------------------------------------------------------------------------


def test_openai_specs_parse_with_their_options() -> None:
    spec = parse_spec("openai:http://127.0.0.1:8080/v1#Qwen2.5-Coder-1.5B-Instruct")
    assert spec.kind == "openai" and spec.value == "http://127.0.0.1:8080/v1"
    assert spec.key == "qwen2.5-coder-1.5b-instruct"
    remote = parse_remote(spec.text)
    assert remote.fim == "qwen" and remote.fim_tokens and remote.fim_tokens.file_sep == "<|file_sep|>"
    assert remote.adapters == "auto" and remote.root == "http://127.0.0.1:8080"

    remote = parse_remote(
        "openai:https://gpu.example:8000#qwen2.5-coder:1.5b?fim=none&adapters=vllm&key=team&timeout=5"
    )
    assert remote.url == "https://gpu.example:8000/v1" and remote.model == "qwen2.5-coder:1.5b"
    assert (remote.fim, remote.adapters, remote.key, remote.timeout_s) == ("none", "vllm", "team", 5.0)
    assert parse_remote("openai:http://h:1/v1#starcoder2-3b").fim == "starcoder"
    assert parse_remote("openai:http://h:1/v1#gemma-3-270m").fim == "none"
    assert parse_spec("openai:http://h:1/v1#ollama/qwen2.5-coder:7b").key == "ollama-qwen2.5-coder-7b"

    for bad, message in [
        ("openai:http://h:1/v1", "names no model"),
        ("openai:ftp://h/v1#m", "not a server URL"),
        ("openai:http://h:99999/v1#m", "bad port"),
        ("openai:http://h:1/v1#m?fim=gpt", "unknown fim"),
        ("openai:http://h:1/v1#m?adapters=peft", "unknown adapters"),
        ("openai:http://h:1/v1#m?colour=red", "unknown option"),
        ("openai:http://h:1/v1#m?timeout=0", "timeout"),
    ]:
        with pytest.raises(ModelError, match=message):
            parse_spec(bad)


def test_openai_specs_run_on_the_openai_runtime_whatever_the_choice() -> None:
    spec = "openai:http://127.0.0.1:9/v1#m"
    assert choose_runtime("auto", spec) == "openai"
    assert choose_runtime("llama.cpp", spec) == "openai"
    assert choose_runtime("openai", spec) == "openai"
    with pytest.raises(ConfigError, match="openai runtime"):
        choose_runtime("openai", "embedded:gemma3-270m")


# A fake server of our own -------------------------------------------------------------------------


class FakeServer:
    """Records every request and answers from ``routes``; completions stream ``answers`` as SSE.

    Each completion request takes the next entry of ``answers``: the text of each choice.
    """

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, str, Any]] = []
        self.answers: list[list[str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake.handle(self, json.loads(self.rfile.read(length) or b"null"))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self, path: str = "/v1/completions") -> list[Any]:
        return [body for _, p, body in self.requests if p == path]

    def handle(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        self.requests.append((handler.command, handler.path, body))
        if handler.path == "/v1/completions":
            self.stream(handler, body)
            return
        route = self.routes.get(handler.path)
        status, payload = (
            route(body) if callable(route) else (200, route) if route is not None else (404, None)
        )
        data = (
            payload if isinstance(payload, str) else json.dumps(payload or {"detail": "Not Found"})
        ).encode()
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def stream(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        """Chunked SSE, three characters an event, the choices interleaved (as vLLM sends n > 1)."""
        texts = self.answers.pop(0) if self.answers else ["return index\n"]
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def send(data: str) -> None:
            raw = f"data: {data}\n\n".encode()
            handler.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")

        try:
            for start in range(0, max(len(t) for t in texts) + 3, 3):
                for index, text in enumerate(texts):
                    if start <= len(text):
                        done = start + 3 > len(text)
                        choice = {
                            "index": index,
                            "text": text[start : start + 3],
                            "finish_reason": "stop" if done else None,
                        }
                        send(json.dumps({"choices": [choice]}))
            send("[DONE]")
            handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the engine closed the stream: the suggestion ended

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake() -> Iterator[Callable[[dict[str, Any]], FakeServer]]:
    servers: list[FakeServer] = []

    def make(routes: dict[str, Any]) -> FakeServer:
        servers.append(FakeServer(routes))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def engines() -> Iterator[Callable[[str], RemoteEngine]]:
    opened: list[RemoteEngine] = []

    def make(spec: str) -> RemoteEngine:
        opened.append(load_remote(spec))
        return opened[-1]

    yield make
    for engine in opened:
        engine.close()


def llama_routes(adapters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "/v1/models": {"data": [{"id": "coder", "owned_by": "llamacpp"}]},
        "/props": {"default_generation_settings": {"n_ctx": 2048}},
        "/lora-adapters": adapters,
    }


def test_a_request_is_built_by_our_prompt_code_with_sampling_and_stops(fake, engines) -> None:
    server = fake(llama_routes([]))
    engine = engines(f"openai:{server.url}/v1#qwen2.5-coder?key=team")
    assert (engine.server, engine.adapters, engine.context_limit, engine.model_key) == (
        "llama.cpp",
        "llama",
        2048,
        "team",
    )
    result = engine.complete(
        CompletionRequest(prefix=PREFIX, max_new_tokens=20, seed=7, temperature=0.5, top_p=0.9)
    )
    assert result is not None and result.text == "return index" and result.stop_reason == "statement"
    [body] = server.bodies()
    assert body["prompt"] == PREFIX and body["model"] == "qwen2.5-coder" and body["stream"] is True
    assert (body["max_tokens"], body["seed"], body["temperature"], body["top_p"]) == (20, 7, 0.5, 0.9)
    assert body["lora"] == [] and body["cache_prompt"] is True and body["repeat_penalty"] == 1.0

    # Fill-in-the-middle for a Qwen coder, and code after the cursor: the server may stop at the newline.
    engine.complete(CompletionRequest(prefix="total = ", suffix=" + 1\nprint(total)\n"))
    body = server.bodies()[-1]
    assert body["prompt"] == "<|fim_prefix|>total = <|fim_suffix|> + 1\nprint(total)\n<|fim_middle|>"
    assert body["stop"][0] == "\n" and "<|file_sep|>" in body["stop"]

    # A long file: cut by characters to the budget, at a line start.
    lines = [f"value_{i} = {i} * 2" for i in range(2000)]
    engine.complete(CompletionRequest(prefix="\n".join(lines) + "\n", context_tokens=256))
    prompt = server.bodies()[-1]["prompt"]
    assert (
        len(prompt) <= 256 * 3 and prompt.startswith("value_") and prompt.endswith("value_1999 = 1999 * 2\n")
    )


def test_llama_cpp_adapters_are_named_per_request_with_explicit_scales(fake, engines, tmp_path) -> None:
    here = tmp_path / "adapters" / "v0001"
    elsewhere = "/srv/team/adapters/m/v0002/adapter_model.gguf"  # the server sees another mount
    server = fake(
        llama_routes(
            [
                {"id": 0, "path": str(here / "adapter_model.gguf"), "scale": 0.0},
                {"id": 1, "path": elsewhere, "scale": 0.0},
            ]
        )
    )
    engine = engines(f"openai:{server.url}/v1#coder")
    request = CompletionRequest(prefix=PREFIX)

    engine.complete(request)
    assert server.bodies()[-1]["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 0.0}]
    engine.swap_adapter(here, "v0001").result(timeout=10)
    result = engine.complete(request)
    assert result is not None and result.adapter == "v0001" and engine.adapter_version == "v0001"
    assert server.bodies()[-1]["lora"] == [{"id": 0, "scale": 1.0}, {"id": 1, "scale": 0.0}]
    engine.swap_adapter(tmp_path / "adapters" / "v0002", "v0002").result(timeout=10)
    engine.complete(request)
    assert server.bodies()[-1]["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 1.0}]

    missing = tmp_path / "adapters" / "v0003"
    with pytest.raises(AdapterError, match=f"--lora {missing / 'adapter_model.gguf'}"):
        engine.swap_adapter(missing, "v0003").result(timeout=10)
    assert engine.adapter_version == "v0002"  # the current one keeps serving
    engine.swap_adapter(None, None).result(timeout=10)
    engine.complete(request)
    assert server.bodies()[-1]["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 0.0}]


def test_vllm_adapters_are_loaded_then_named_as_the_model(fake, engines, tmp_path) -> None:
    refused = {"n": 0}

    def load(body: Any) -> tuple[int, Any]:
        if body["lora_path"].endswith("v0002"):
            refused["n"] += 1
            return 400, {"error": {"message": "LoRA runtime updating is not enabled"}}
        return 200, f"Success: LoRA adapter '{body['lora_name']}' added successfully."

    server = fake(
        {
            "/v1/models": {"data": [{"id": "coder", "owned_by": "vllm", "max_model_len": 4096}]},
            "/v1/load_lora_adapter": load,
        }
    )
    engine = engines(f"openai:{server.url}/v1#coder")
    assert (engine.server, engine.adapters, engine.context_limit) == ("vllm", "vllm", 4096)
    request = CompletionRequest(prefix=PREFIX)
    engine.complete(request)
    assert server.bodies()[-1]["model"] == "coder" and "repeat_penalty" not in server.bodies()[-1]

    engine.swap_adapter(tmp_path / "v0001", "v0001").result(timeout=10)
    [loaded] = server.bodies("/v1/load_lora_adapter")
    assert loaded["lora_path"] == str(tmp_path / "v0001") and loaded["lora_name"].startswith("v0001-")
    assert engine.complete(request).adapter == "v0001"
    assert server.bodies()[-1]["model"] == loaded["lora_name"]

    with pytest.raises(AdapterError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING"):
        engine.swap_adapter(tmp_path / "v0002", "v0002").result(timeout=10)
    assert refused["n"] == 1 and engine.adapter_version == "v0001"
    engine.complete(request)
    assert server.bodies()[-1]["model"] == loaded["lora_name"]  # requests switch only once confirmed
    engine.swap_adapter(None, None).result(timeout=10)
    engine.complete(request)
    assert server.bodies()[-1]["model"] == "coder"


def test_a_plain_openai_server_cannot_switch_adapters(fake, engines, tmp_path) -> None:
    server = fake({"/v1/models": {"data": [{"id": "m", "owned_by": "me"}]}})
    engine = engines(f"openai:{server.url}/v1#m")
    assert (engine.server, engine.adapters) == ("other", "none")
    with pytest.raises(AdapterError, match="cannot switch adapters"):
        engine.swap_adapter(tmp_path / "v0001", "v0001").result(timeout=10)
    assert engine.adapter_version is None
    engine.complete(CompletionRequest(prefix=PREFIX))
    assert "lora" not in server.bodies()[-1] and server.bodies()[-1]["model"] == "m"


def test_suppressions_filter_afterwards_ask_for_candidates_and_prefer_the_fix(fake, engines) -> None:
    server = fake({"/v1/models": {"data": [{"id": "m", "owned_by": "vllm"}]}})
    engine = engines(f"openai:{server.url}/v1#m")
    banned = Steer(banned=("return item",))
    server.answers = [["return item\n"], ["return item\n", "return index\n", "break\n"]]
    result = engine.complete(CompletionRequest(prefix=PREFIX, steer=banned))
    assert result is not None and result.text == "return index"
    first, second = server.bodies()
    assert "n" not in first and first["temperature"] == 0.0
    assert second["n"] == 3 and second["temperature"] > 0 and second["seed"] == 0

    server.answers = [["return item\n"], ["return item\n"]]
    assert engine.complete(CompletionRequest(prefix=PREFIX, steer=banned)) is None

    before = len(server.bodies())
    fixed = engine.complete(CompletionRequest(prefix=PREFIX, steer=Steer(banned.banned, ("return index\n",))))
    assert fixed is not None and fixed.text == "return index" and len(server.bodies()) == before


def test_an_error_answer_gives_no_suggestion_and_is_logged_once(fake, engines, caplog) -> None:
    server = fake({"/v1/models": {"data": []}})
    engine = engines(f"openai:{server.url}/v1#m")

    def not_found(handler: BaseHTTPRequestHandler, body: Any) -> None:
        data = json.dumps({"error": {"message": "The model `m` does not exist."}}).encode()
        handler.send_response(404)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    server.stream = not_found  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="hotfix_engine.remote_engine"):
        for _ in range(3):
            assert engine.complete(CompletionRequest(prefix=PREFIX)) is None
    assert "does not exist" in (engine.remote_error or "")
    assert len([r for r in caplog.records if "does not exist" in r.getMessage()]) == 1


# llama-cpp-python's server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` on a GGUF file, on a fixed port so that it can come back there."""

    def __init__(self, model: Path, log: Path) -> None:
        self.model = model
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", "tiny",
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048", "--n_threads", "1",
            "--logits_all", "False",
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )
        deadline = time.monotonic() + READY_S
        while not self.answers():
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return sock.recv(16).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)


@pytest.fixture(scope="module")
def llama_server(printable_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = LlamaServer(printable_gguf, tmp_path_factory.mktemp("llama-server") / "server.log")
    server.start()
    yield server
    server.kill()


@needs_server
def test_suggestions_match_the_in_process_llama_engine(llama_server, printable_gguf) -> None:
    from hotfix_engine.prompts import healable_text

    local = load_engine(str(printable_gguf), "llama.cpp")
    remote = load_remote(f"openai:{llama_server.url}#tiny?fim=qwen")
    try:
        assert remote.runtime == "openai" and remote.remote_error is None
        requests = [CompletionRequest(prefix=p, max_new_tokens=12) for p in PROMPTS]
        requests.append(
            CompletionRequest(prefix="def f(x):\n    y = ", suffix="\n    return y\n", max_new_tokens=12)
        )
        shown = 0
        for request in requests:
            if request.suffix:
                assert local.loaded.fim is not None  # the FIM form on both sides
            else:
                assert healable_text(local.tokenizer, local._prompt(request)) == ""
            a, b = local.complete(request), remote.complete(request)
            assert (a is None) == (b is None), (request.prefix, a, b)
            if a is not None and b is not None:
                assert b.text == a.text and b.stop_reason == a.stop_reason
                shown += 1
        assert shown >= 3
    finally:
        local.close()
        remote.close()


class CancelAtStep(CancelToken):
    """Sets itself when the engine counts its ``at``-th streamed chunk, as a newer keystroke would."""

    def __init__(self, at: int) -> None:
        self.at = at
        self._step = 0
        super().__init__()

    @property  # type: ignore[override]
    def step(self) -> int:
        return self._step

    @step.setter
    def step(self, value: int) -> None:
        self._step = value
        if value == self.at:
            self.set()


@needs_server
def test_a_cancel_closes_the_stream_and_the_server_stops_decoding(llama_server) -> None:
    engine = load_remote(f"openai:{llama_server.url}#tiny")
    try:
        token = CancelAtStep(3)
        # The printable model never writes a newline: only max_new_tokens would end this one.
        with pytest.raises(Cancelled) as info:
            engine.submit(CompletionRequest(prefix="x = (", max_new_tokens=1000), token).result(timeout=60)
        assert info.value.steps_after_cancel <= 1 and token.step <= 4  # chunks read of the 1,000
        deadline = time.monotonic() + 30
        while "Disconnected from client" not in llama_server.log.read_text():
            assert time.monotonic() < deadline, "the server never saw the stream close"
            time.sleep(0.1)
        after = engine.complete(CompletionRequest(prefix=PREFIX, max_new_tokens=6))
        assert after is not None  # the server is free for the next request
    finally:
        engine.close()


@needs_server
@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="function")
async def test_hotfix_serve_with_an_openai_model_suggests_over_lsp(llama_server, tmp_path) -> None:
    from test_llama_server_e2e import OPTIONS, open_and_ask
    from test_server_e2e import start, status

    client = await start(tmp_path, {**OPTIONS, "model": f"openai:{llama_server.url}#tiny"})
    try:
        ready = await status(client)
        assert ready["modelReady"], ready["modelError"]
        assert ready["runtime"] == "openai" and ready["backendError"] is None
        assert ready["device"] == llama_server.url and ready["modelKey"] == "tiny"
        params = open_and_ask(client, "file:///work/remote.py", PREFIX)
        result = await client.text_document_inline_completion_async(params)
        assert result.items and result.items[0].insert_text.strip()
    finally:
        await client.shutdown_session()
        await client.stop()


@needs_server
def test_the_backend_going_down_and_coming_back(llama_server, caplog) -> None:
    engine = load_remote(f"openai:{llama_server.url}#tiny")
    request = CompletionRequest(prefix=PREFIX, max_new_tokens=6)
    try:
        assert engine.complete(request) is not None
        llama_server.kill()
        with caplog.at_level(logging.WARNING, logger="hotfix_engine.remote_engine"):
            for _ in range(5):
                assert engine.complete(request) is None  # no suggestion, and no exception
                time.sleep(0.1)
        assert engine.remote_error and llama_server.url in engine.remote_error
        assert len([r for r in caplog.records if "no suggestions" in r.getMessage()]) == 1  # once per outage
        prefill = engine.prefill(request).result(timeout=30)
        assert prefill == 0

        llama_server.start()  # the same port: the engine was never restarted
        deadline = time.monotonic() + 60
        while (result := engine.complete(request)) is None:
            assert time.monotonic() < deadline, engine.remote_error
            time.sleep(0.2)
        assert result.text and engine.remote_error is None
    finally:
        engine.close()

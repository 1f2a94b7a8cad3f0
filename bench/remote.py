"""Remote backend benchmark (issue 17): suggestion latency through an OpenAI-compatible server against
the same model served in-process, same prompts, same settings. Goal: at most 1.15x.

The server is llama-cpp-python's (``python -m llama_cpp.server``) on the same GGUF file, started here
on loopback. The two take turns on each request, never running at once, so that the load of other
work on the machine hits both alike; the ratio is also given per pair. The server gets the
in-process engine's settings: context 4096, batch 512, one thread per core, and ``swa_full`` (Gemma 3's
sliding layers keep every position, so a cached prefix can be reused). llama-cpp-python's server has
no option for that last one (llama.cpp's ``llama-server`` has ``--swa-full``), so the script that
starts it sets it. Two measures: fresh prompts (a statement start in another file each time), and
keystrokes (a long prompt cached, then one character typed at a time, a one-line suggestion each
time), where the server's prompt cache must be reused as the engine's own is.

    python bench/remote.py [--model SPEC] [--prompts N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import cursor_prompts, summary, write_result  # noqa: E402

SERVER_SCRIPT = """
import sys
import llama_cpp

original = llama_cpp.Llama.__init__

def init(self, *args, **kwargs):
    kwargs.setdefault("swa_full", True)  # as the in-process engine (llama_engine.load_llama)
    original(self, *args, **kwargs)

llama_cpp.Llama.__init__ = init
from llama_cpp.server.__main__ import main

sys.argv[0] = "llama_cpp.server"
main()
"""
READY_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(gguf: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    threads = str(os.cpu_count() or 1)
    command = [
        sys.executable, "-c", SERVER_SCRIPT, "--model", str(gguf), "--model_alias", "bench",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_batch", "512",
        "--n_threads", threads, "--n_threads_batch", threads, "--logits_all", "False", "--verbose", "False",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(16).startswith(b"HTTP/1.1 200"):
                    return process
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"the server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - started, value


def requests(
    fresh: list[tuple[str, str, str]], long: list[tuple[str, str, str]], keys: int
) -> list[tuple[str, Any]]:
    """("fresh" | "prime" | "key", request) in the order a user would cause them."""
    from hotfix_engine.completion import CompletionRequest

    out: list[tuple[str, Any]] = [
        ("prime", CompletionRequest(prefix="def warm_up(n):\n    ", max_new_tokens=4))
    ]
    out += [("fresh", CompletionRequest(prefix=p, suffix=s, max_new_tokens=48)) for _, p, s in fresh]
    for _name, prefix, suffix in long:
        line = suffix.split("\n", 1)[0].strip()[:keys] or "result = x"
        out.append(("prime", CompletionRequest(prefix=prefix, max_new_tokens=16)))
        out += [
            ("key", CompletionRequest(prefix=prefix + line[:i], max_new_tokens=16))
            for i in range(1, len(line) + 1)
        ]
    return out


def measure(local: Any, remote: Any, plan: list[tuple[str, Any]]) -> dict[str, Any]:
    """Each request on both backends in turn, so that a change in the machine's load hits both alike.

    Each keeps its own cache (the engine's, the server's), so taking turns costs neither its reuse.
    The in-process engine's token healing takes back a partial word and the server cannot, so a
    typed keystroke may get another suggestion; fresh prompts start on a new line and compare as equal.
    """
    seconds: dict[str, dict[str, list[float]]] = {
        "fresh": {"local": [], "remote": []},
        "key": {"local": [], "remote": []},
    }
    same: dict[str, list[bool]] = {"fresh": [], "key": []}
    for i, (kind, request) in enumerate(plan):
        order = (
            [("local", local), ("remote", remote)] if i % 2 == 0 else [("remote", remote), ("local", local)]
        )
        texts = {}
        for name, engine in order:
            took, result = timed(engine.complete, request)
            texts[name] = result.text if result else None
            if kind != "prime":
                seconds[kind][name].append(took)
        if kind != "prime":
            same[kind].append(texts["local"] == texts["remote"])
    out: dict[str, Any] = {}
    for kind, label in (("fresh", "fresh_s"), ("key", "keystroke_s")):
        local_s, remote_s = seconds[kind]["local"], seconds[kind]["remote"]
        ratios = [r / max(lo, 1e-6) for lo, r in zip(local_s, remote_s, strict=True)]
        out[label] = {
            "in_process": summary(local_s),
            "remote": summary(remote_s),
            "ratio_p50": round(summary(remote_s)["p50"] / summary(local_s)["p50"], 3),
            "paired_ratio_median": round(sorted(ratios)[len(ratios) // 2], 3),
            "same_suggestion_share": round(sum(same[kind]) / max(len(same[kind]), 1), 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded:gemma3-270m", help="a GGUF model spec")
    parser.add_argument("--prompts", type=int, default=12, help="fresh prompts")
    parser.add_argument("--long", type=int, default=4, help="long prompts to type on")
    parser.add_argument("--keys", type=int, default=10, help="characters typed on each long prompt")
    parser.add_argument("--quick", action="store_true", help="3 fresh prompts, 2 long ones, 5 keys each")
    args = parser.parse_args()
    if args.quick:
        args.prompts, args.long, args.keys = 3, 2, 5

    from hotfix_engine.models import gguf_file
    from hotfix_engine.remote_engine import load_remote
    from hotfix_engine.runtimes import load_engine

    gguf = gguf_file(args.model)
    if gguf is None:
        raise SystemExit(f"{args.model} is not a GGUF model")
    fresh = cursor_prompts(args.prompts, seed=1, min_prefix_chars=2000)
    long = cursor_prompts(args.long, seed=7, min_prefix_chars=8000)

    print("loading in-process llama.cpp and starting llama-cpp-python's server...", flush=True)
    plan = requests(fresh, long, args.keys)
    port = free_port()
    local = load_engine(args.model, "llama.cpp")
    with tempfile.TemporaryDirectory(prefix="hotfix-bench-remote-") as scratch:
        server = start_server(gguf, port, Path(scratch) / "server.log")
        try:
            remote = load_remote(f"openai:http://127.0.0.1:{port}/v1#bench")
            try:
                print(f"{len(plan)} requests on each...", flush=True)
                measured = measure(local, remote, plan)
            finally:
                remote.close()
        finally:
            server.kill()
            server.wait(30)
            local.close()

    import llama_cpp

    results = {
        "model": args.model,
        "settings": vars(args),
        "server": f"llama-cpp-python {llama_cpp.__version__} server on loopback, swa_full as in-process",
        **measured,
        "goal_ratio_max": 1.15,
        "load_average_at_end": os.getloadavg()[0],
    }
    path = write_result("remote", results)
    for name in ("fresh_s", "keystroke_s"):
        m = measured[name]
        print(
            f"{name}: in-process p50 {m['in_process']['p50']:.3f}s p95 {m['in_process']['p95']:.3f}s; "
            f"remote p50 {m['remote']['p50']:.3f}s p95 {m['remote']['p95']:.3f}s; ratio {m['ratio_p50']} "
            f"(paired {m['paired_ratio_median']}); same suggestion {m['same_suggestion_share']:.0%}"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""The remote runtime's functional checks against a vLLM server, where one is reachable (a GPU machine).

tests/test_remote_engine.py runs these against llama-cpp-python's server and a fake vLLM; this runs
them against the real one: a suggestion arrives and is the same twice (greedy), a cancel closes the
stream and vLLM stops the request (its /metrics show nothing running), a rejected suggestion is not
shown again (the candidates asked with ``n``), an unknown model gives a clear ``remote_error``, and,
with ``--adapter FOLDER`` (a peft LoRA of the served model), publishing loads it through
``/v1/load_lora_adapter`` and requests name it. Start vLLM with ``--enable-lora`` and
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` for the last one.

With no vLLM server at ``--url``, it says so and exits 0; with one, it exits 1 if a check fails.

    python bench/vllm_check.py [--url http://127.0.0.1:8000/v1] [--model NAME] [--adapter FOLDER]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from hotfix_engine.completion import CompletionRequest  # noqa: E402
from hotfix_engine.errors import AdapterError, Cancelled  # noqa: E402
from hotfix_engine.remote_http import HttpError, Unreachable, request_json  # noqa: E402
from hotfix_engine.steering import Steer  # noqa: E402
from hotfix_engine.stopping import CancelToken  # noqa: E402

PREFIX = "def fibonacci(n):\n    "
LONG = "# The first thousand primes, one per line\nPRIMES = [\n    2,\n    3,\n    5,\n"


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


def running_requests(root: str) -> float | None:
    """vLLM's ``num_requests_running`` gauge (summed over models), or None without /metrics."""
    try:
        text = request_json("GET", root + "/metrics", connect_timeout=3, read_timeout=10)
    except (Unreachable, HttpError):
        return None
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in str(text).splitlines()
        if line.startswith("vllm:num_requests_running")
    ]
    return sum(values) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("HOTFIX_VLLM_URL", "http://127.0.0.1:8000/v1"))
    parser.add_argument("--model", help="the served model (default: the first /v1/models lists)")
    parser.add_argument("--adapter", type=Path, help="a peft LoRA folder of the served model")
    args = parser.parse_args()
    url = args.url.rstrip("/")

    try:
        listed = request_json("GET", url + "/models", connect_timeout=3, read_timeout=10)
    except (Unreachable, HttpError) as exc:
        print(f"no vLLM server reachable at {url} ({exc}): nothing to check")
        return 0
    entries = (
        [e for e in (listed.get("data") or []) if isinstance(e, dict)] if isinstance(listed, dict) else []
    )
    if not any(str(e.get("owned_by", "")).lower() == "vllm" for e in entries):
        print(f"the server at {url} is not vLLM (models: {entries[:3]}): nothing to check")
        return 0
    model = args.model or next(str(e["id"]) for e in entries if not e.get("parent"))

    from hotfix_engine.remote_engine import load_remote

    results: dict[str, Any] = {"url": url, "model": model, "checks": {}}
    checks = results["checks"]

    def check(name: str, ok: bool, detail: Any = "") -> None:
        checks[name] = {"ok": ok, "detail": str(detail)[:300]}
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    engine = load_remote(f"openai:{url}#{model}")
    try:
        check(
            "detected",
            engine.server == "vllm" and engine.adapters == "vllm",
            (engine.server, engine.adapters),
        )
        request = CompletionRequest(prefix=PREFIX, max_new_tokens=32)
        first, second = engine.complete(request), engine.complete(request)
        check("suggestion", first is not None and engine.remote_error is None, first or engine.remote_error)
        check("greedy is repeatable", (first and first.text) == (second and second.text), second)

        token = CancelAtStep(3)
        try:
            engine.submit(CompletionRequest(prefix=LONG, max_new_tokens=512), token).result(timeout=120)
            check("cancel", False, "the request was not cancelled")
        except Cancelled as exc:
            check("cancel", exc.steps_after_cancel <= 1 and token.step <= 4, f"{token.step} chunks read")
        running = running_requests(engine.remote.root)
        deadline = time.monotonic() + 10
        while running and time.monotonic() < deadline:
            time.sleep(0.2)
            running = running_requests(engine.remote.root)
        check("server stopped decoding", running in (0, None), f"num_requests_running={running}")

        if first is not None:
            steered = engine.complete(
                CompletionRequest(prefix=PREFIX, max_new_tokens=32, steer=Steer((first.text,)))
            )
            check("rejected not shown again", steered is None or steered.text != first.text, steered)

        if args.adapter is not None:
            try:
                engine.swap_adapter(args.adapter.resolve(), "check").result(timeout=300)
                adapted = engine.complete(request)
                check(
                    "adapter named per request", adapted is not None and adapted.adapter == "check", adapted
                )
                engine.swap_adapter(None, None).result(timeout=60)
            except AdapterError as exc:
                check("adapter named per request", False, exc)
        else:
            print("SKIP adapter: no --adapter FOLDER given")
    finally:
        engine.close()

    unknown = load_remote(f"openai:{url}#no-such-model-here")
    try:
        missing = unknown.complete(CompletionRequest(prefix=PREFIX, max_new_tokens=8))
        check(
            "unknown model is a clear error",
            missing is None and "404" in (unknown.remote_error or ""),
            unknown.remote_error,
        )
    finally:
        unknown.close()

    from common import write_result

    path = write_result("vllm-check", results)
    failed = [name for name, c in checks.items() if not c["ok"]]
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed; wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

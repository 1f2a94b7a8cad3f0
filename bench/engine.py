"""Completion engine benchmark (issue 2): latency and throughput against a bare ``model.generate``.

Prompts are cut at random statement starts of real Python files (the standard library's). For each
prompt the engine completes first; a bare ``generate`` call then produces exactly as many tokens on
the same prompt, so the ratio is the engine's own overhead (prompt building, stop rules, filters).
Also: cold start (GGUF conversion), warm start to first completion and peak memory, each in a fresh
process, and the gain from cache reuse when the user types on.

    python bench/engine.py [--model SPEC] [--prompts N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import cursor_prompts, summary, write_result  # noqa: E402

START_SCRIPT = """
import resource, sys, time
started = time.perf_counter()
from hotfix_engine.completion import CompletionEngine, CompletionRequest
from hotfix_engine.models import load_model
loaded = load_model(sys.argv[1])
engine = CompletionEngine(loaded)
result = engine.complete(CompletionRequest(prefix="def fibonacci(n):\\n    ", max_new_tokens=16))
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{elapsed:.3f} {peak:.0f} {loaded.load_seconds:.3f} {int(loaded.from_cache)}")
engine.close()
"""


def start_in_fresh_process(model: str, cache: str) -> dict[str, float]:
    env = dict(os.environ, HOTFIX_CACHE=cache, PYTHONWARNINGS="ignore")
    out = subprocess.run(
        [sys.executable, "-c", START_SCRIPT, model], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return {
        "to_first_completion_s": float(out[0]),
        "peak_rss_mb": float(out[1]),
        "load_s": float(out[2]),
        "from_cache": bool(int(out[3])),
    }


def bare_generate(loaded, prefix: str, new_tokens: int, budget: int) -> float:
    """The baseline: one ``generate`` call, greedy, exactly ``new_tokens`` tokens."""
    import torch

    from hotfix_engine.prompts import build_prompt

    started = time.perf_counter()
    ids = torch.tensor([build_prompt(loaded.tokenizer, prefix, "", budget, None)])
    with torch.inference_mode():
        loaded.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=loaded.tokenizer.pad_token_id,
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded:gemma3-270m")
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--quick", action="store_true", help="8 prompts, no cold start")
    args = parser.parse_args()
    if args.quick:
        args.prompts = 8

    from hotfix_engine.completion import CompletionEngine, CompletionRequest
    from hotfix_engine.models import load_model

    results: dict = {"model": args.model, "settings": vars(args)}

    # Start-up, each in a fresh process: cold converts the GGUF into an empty cache folder.
    if not args.quick:
        with tempfile.TemporaryDirectory() as empty_cache:
            results["cold_start"] = start_in_fresh_process(args.model, empty_cache)
    results["warm_start"] = start_in_fresh_process(args.model, os.environ.get("HOTFIX_CACHE", ""))

    loaded = load_model(args.model)
    engine = CompletionEngine(loaded)
    budget = CompletionRequest(prefix="").context_tokens
    engine_s, bare_s, ratios, tokens_per_s = [], [], [], []
    shown = 0
    for _name, prefix, suffix in cursor_prompts(args.prompts, seed=1):
        engine._cache = None  # every prompt cold, like the baseline
        request = CompletionRequest(prefix=prefix, suffix=suffix, max_new_tokens=args.max_new_tokens)
        started = time.perf_counter()
        result = engine.complete(request)
        took = time.perf_counter() - started
        tokens = result.tokens if result else args.max_new_tokens
        shown += result is not None
        baseline = bare_generate(loaded, prefix, max(tokens, 1), budget)
        engine_s.append(took)
        bare_s.append(baseline)
        ratios.append(took / baseline)
        tokens_per_s.append(tokens / took)
    results["latency"] = {
        "engine_s": summary(engine_s),
        "bare_generate_s": summary(bare_s),
        "overhead_ratio": summary(ratios),
        "engine_tokens_per_s": summary(tokens_per_s),
        "suggestions_shown": shown,
        "goal_overhead_ratio_max": 1.10,
    }

    # Typing on: a 500+ token prefix, then the user types a few more characters.
    long_prompts = cursor_prompts(10, seed=7, min_prefix_chars=2500)
    warm_s, cold_s, cached = [], [], []
    for _name, prefix, _suffix in long_prompts[: 6 if args.quick else 10]:
        base = prefix + "result = "
        typed = base + "compute("
        engine._cache = None
        engine.complete(CompletionRequest(prefix=base, max_new_tokens=8))
        started = time.perf_counter()
        warm = engine.complete(CompletionRequest(prefix=typed, max_new_tokens=8))
        warm_s.append(time.perf_counter() - started)
        cached.append(warm.cached_tokens if warm else -1)
        engine._cache = None
        started = time.perf_counter()
        engine.complete(CompletionRequest(prefix=typed, max_new_tokens=8))
        cold_s.append(time.perf_counter() - started)
    prompt_tokens = [len(loaded.tokenizer(p[1]).input_ids) for p in long_prompts[: len(warm_s)]]
    results["typing_on"] = {
        "prompt_tokens": summary([float(t) for t in prompt_tokens]),
        "warm_s": summary(warm_s),
        "cold_s": summary(cold_s),
        "speedup": round(statistics.median(c / w for c, w in zip(cold_s, warm_s, strict=True)), 2),
        "cached_tokens": cached,
        "goal_speedup_min": 2.0,
    }
    engine.close()
    path = write_result("engine", results)
    latency = results["latency"]
    print(
        f"engine p50 {latency['engine_s']['p50']:.2f}s p95 {latency['engine_s']['p95']:.2f}s; "
        f"bare p50 {latency['bare_generate_s']['p50']:.2f}s; overhead x{latency['overhead_ratio']['p50']:.3f}; "
        f"{latency['engine_tokens_per_s']['p50']:.1f} tok/s"
    )
    print(
        f"warm start to first completion {results['warm_start']['to_first_completion_s']:.1f}s, "
        f"peak {results['warm_start']['peak_rss_mb']:.0f} MB; typing-on speedup x{results['typing_on']['speedup']}"
    )
    if "cold_start" in results:
        print(f"cold start {results['cold_start']['to_first_completion_s']:.1f}s")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

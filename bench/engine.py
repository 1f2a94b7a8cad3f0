"""Engine benchmark (issue 13): the llama.cpp runtime against transformers, same model, same prompts.

For each runtime, in one run: warm start to the first suggestion and peak memory (a fresh process),
fresh prompts (cache emptied before each), prefill tok/s on 1,500-token prompts, decode tok/s, the
keystroke loop (a long prompt cached, then one character typed at a time, a single-line suggestion
of at most 16 tokens each time), and the adapter swap. Then the two side by side: decode ratio,
bytes read per token against the machine's measured memory bandwidth, and parity (top-1 agreement,
teacher-forced, on 200 positions of standard-library files, with and without a LoRA adapter).
Prompts are cut at statement starts of real Python files (the standard library's).

    python bench/engine.py [--model SPEC] [--prompts N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from common import cursor_prompts, stdlib_files, summary, write_result  # noqa: E402

RUNTIMES = ("llama.cpp", "transformers")

START_SCRIPT = """
import resource, sys, time
started = time.perf_counter()
from hotfix_engine.completion import CompletionRequest
from hotfix_engine.runtimes import load_engine
engine = load_engine(sys.argv[1], sys.argv[2])
result = engine.complete(CompletionRequest(prefix="def fibonacci(n):\\n    ", max_new_tokens=16))
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{elapsed:.3f} {peak:.0f} {int('torch' in sys.modules)} {int(result is not None)}")
engine.close()
"""


def start_in_fresh_process(model: str, runtime: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run(
        [sys.executable, "-c", START_SCRIPT, model, runtime],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        "to_first_completion_s": float(out[0]),
        "peak_rss_mb": float(out[1]),
        "imported_torch": bool(int(out[2])),
        "suggested": bool(int(out[3])),
    }


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - started, value


def on_engine(engine: Any, fn: Any, *args: Any) -> Any:
    """Run ``fn`` on the engine's inference thread, as the server does: llama.cpp's OpenMP workers
    belong to the thread that calls it, and a second calling thread makes two teams spin for 2 cores."""
    return engine._executor.submit(fn, *args).result()


def fresh_prompts(engine: Any, prompts: list[tuple[str, str, str]], max_new_tokens: int) -> dict[str, Any]:
    from hotfix_engine.completion import CompletionRequest

    seconds, tokens, prompt_tokens, shown = [], [], [], 0
    for _name, prefix, suffix in prompts:
        on_engine(engine, engine._reset_cache)
        took, result = timed(
            engine.complete, CompletionRequest(prefix=prefix, suffix=suffix, max_new_tokens=max_new_tokens)
        )
        seconds.append(took)
        shown += result is not None
        if result is not None:
            tokens.append(result.tokens)
            prompt_tokens.append(result.prompt_tokens)
    return {
        "latency_s": summary(seconds),
        "suggestions_shown": shown,
        "tokens": summary([float(t) for t in tokens]) if tokens else None,
        "prompt_tokens": summary([float(t) for t in prompt_tokens]) if prompt_tokens else None,
    }


def prefill_and_decode(engine: Any, long_prompts: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Prefill tok/s on 1,500-token prompts, a whole fresh 1,500-token suggestion, decode tok/s."""
    from hotfix_engine.completion import CompletionRequest

    prefill_rates, fresh_s, decode_rates = [], [], []
    for _name, prefix, suffix in long_prompts:
        request = CompletionRequest(prefix=prefix, suffix=suffix, max_new_tokens=16, context_tokens=1500)
        prompt = engine._prompt(request)
        on_engine(engine, engine._reset_cache)
        took, _ = timed(on_engine, engine, engine._fill, prompt, None)
        prefill_rates.append(len(prompt) / took)
        on_engine(engine, engine._reset_cache)
        took, _ = timed(engine.complete, request)
        fresh_s.append(took)
        decode_rates.append(on_engine(engine, decode_rate, engine, prompt[:300]))
    return {
        "prefill_tokens_per_s": summary(prefill_rates),
        "fresh_1500_token_prompt_s": summary(fresh_s),
        "decode_tokens_per_s": summary(decode_rates),
    }


def decode_rate(engine: Any, prompt: list[int], steps: int = 48) -> float:
    """Tokens a second over ``steps`` single-token steps after ``prompt``, greedy."""
    engine._reset_cache()
    _, logits = engine._fill(prompt, None)
    started = time.perf_counter()
    for _ in range(steps):
        logits = engine._forward([int(np.argmax(logits))])
    return steps / (time.perf_counter() - started)


def keystrokes(engine: Any, long_prompts: list[tuple[str, str, str]]) -> dict[str, Any]:
    """A long prompt cached, then the user types on: each character asks for a one-line suggestion."""
    from hotfix_engine.completion import CompletionRequest

    seconds, cached = [], []
    for _name, prefix, suffix in long_prompts:
        line = suffix.split("\n", 1)[0].strip()[:10] or "result = x"
        on_engine(engine, engine._reset_cache)
        engine.complete(CompletionRequest(prefix=prefix, max_new_tokens=16))
        for i in range(1, len(line) + 1):
            took, result = timed(
                engine.complete, CompletionRequest(prefix=prefix + line[:i], max_new_tokens=16)
            )
            seconds.append(took)
            if result is not None:
                cached.append(result.cached_tokens / max(result.prompt_tokens, 1))
    return {
        "latency_s": summary(seconds),
        "cached_share": summary(cached) if cached else None,
        "goal_p50_s": 0.4,
        "goal_p95_s": 0.8,
    }


def random_lora(engine: Any, folder: Path) -> Path:
    """A LoRA with non-zero random weights on the transformers model (parity does not need training)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(engine.slot.base, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.mul_(0.05)  # random A and B at peft's scale would swamp the base model entirely
    peft_model.save_pretrained(folder)
    peft_model.unload()  # put the base model's own layers back
    return folder


def teacher_forced(engine: Any, ids: list[int]) -> np.ndarray:
    """Next-token logits at every position of ``ids`` (after the first), the model reading ``ids``."""
    engine._reset_cache()
    if engine.runtime == "transformers":
        import torch

        with torch.inference_mode():
            return engine.slot.model(input_ids=torch.tensor([ids])).logits[0, :-1].float().numpy()
    return np.stack([engine._forward([token]) for token in ids[:-1]])


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def parity(engines: dict[str, Any], positions: int, adapter: Path | None) -> dict[str, Any]:
    """Top-1 agreement, teacher-forced; also where the reference is sure (its top two 0.1 apart), and KL."""
    llama, hf = engines["llama.cpp"], engines["transformers"]
    for engine in (llama, hf):
        engine.swap_adapter(adapter, "parity" if adapter else None).result()
    agree, sure, sure_agree, kl = [], 0, 0, []
    for path in stdlib_files()[:: max(1, len(stdlib_files()) // 4)][:4]:
        text = path.read_text(encoding="utf-8", errors="replace")[:4000]
        ids = llama.tokenizer(text).input_ids[: positions // 4 + 1]
        ours = log_softmax(on_engine(llama, teacher_forced, llama, ids))
        ref = log_softmax(on_engine(hf, teacher_forced, hf, ids))
        same = ours.argmax(-1) == ref.argmax(-1)
        agree.extend(same.tolist())
        top2 = np.sort(np.exp(ref), -1)[:, -2:]
        confident = top2[:, 1] - top2[:, 0] >= 0.1
        sure += int(confident.sum())
        sure_agree += int(same[confident].sum())
        kl.extend((np.exp(ref) * (ref - ours)).sum(-1).tolist())
    for engine in (llama, hf):
        engine.swap_adapter(None, None).result()
    return {
        "positions": len(agree),
        "top1_agreement": round(float(np.mean(agree)), 4),
        "top1_agreement_where_reference_is_sure": round(sure_agree / max(sure, 1), 4),
        "sure_positions": sure,
        "kl_nats_median": round(float(np.median(kl)), 4),
        "kl_nats_p95": round(float(np.percentile(kl, 95)), 4),
        "goal_min": 0.98,
    }


def memory_bandwidth_gb_s() -> float:
    """Read bandwidth with one reader per core (NumPy releases the GIL): the best of a few rounds."""
    from concurrent.futures import ThreadPoolExecutor

    cores = os.cpu_count() or 1
    arrays = [np.ones(256 * 2**20 // 8) for _ in range(cores)]
    best = 0.0
    with ThreadPoolExecutor(cores) as pool:
        for _ in range(5):
            started = time.perf_counter()
            list(pool.map(np.sum, arrays))
            best = max(best, sum(a.nbytes for a in arrays) / (time.perf_counter() - started))
    return best / 1e9


def adapter_swap(engine: Any, adapter: Path) -> dict[str, Any]:
    seconds = []
    for _ in range(5):
        engine.swap_adapter(None, None).result()
        took, _ = timed(lambda: engine.swap_adapter(adapter, "swap").result())
        seconds.append(took)
    engine.swap_adapter(None, None).result()
    return {"swap_s": summary(seconds), "goal_s": 0.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded:gemma3-270m")
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument(
        "--quick", action="store_true", help="4 prompts, 2 long prompts, 100 parity positions"
    )
    args = parser.parse_args()
    long_count, positions = (2, 100) if args.quick else (4, 200)
    if args.quick:
        args.prompts = 4

    from hotfix_engine.gguf_lora import GGUF_LORA_FILE, export_gguf_lora
    from hotfix_engine.models import gguf_file
    from hotfix_engine.runtimes import load_engine

    results: dict[str, Any] = {"model": args.model, "settings": vars(args), "runtimes": {}}
    prompts = cursor_prompts(args.prompts, seed=1)
    long_prompts = cursor_prompts(long_count, seed=7, min_prefix_chars=8000)
    engines = {}
    for runtime in RUNTIMES:
        print(f"{runtime}: warm start...", flush=True)
        section: dict[str, Any] = {"warm_start": start_in_fresh_process(args.model, runtime)}
        engine = engines[runtime] = load_engine(args.model, runtime)
        print(f"{runtime}: fresh prompts...", flush=True)
        section["fresh_prompts"] = fresh_prompts(engine, prompts, args.max_new_tokens)
        print(f"{runtime}: prefill and decode...", flush=True)
        section.update(prefill_and_decode(engine, long_prompts))
        print(f"{runtime}: keystrokes...", flush=True)
        section["keystrokes"] = keystrokes(engine, long_prompts)
        results["runtimes"][runtime] = section
        print(f"{runtime}: {section}", flush=True)

    with tempfile.TemporaryDirectory(prefix="hotfix-bench-lora-") as scratch:
        adapter = random_lora(engines["transformers"], Path(scratch) / "lora")
        base = gguf_file(args.model)
        assert base is not None
        export_gguf_lora(adapter, base, adapter / GGUF_LORA_FILE)
        for runtime in RUNTIMES:
            results["runtimes"][runtime]["adapter_swap"] = adapter_swap(engines[runtime], adapter)
        print("parity...", flush=True)
        results["parity"] = {
            "base": parity(engines, positions, None),
            "lora": parity(engines, positions, adapter),
        }

    llama, hf = results["runtimes"]["llama.cpp"], results["runtimes"]["transformers"]
    decode_ratio = llama["decode_tokens_per_s"]["p50"] / hf["decode_tokens_per_s"]["p50"]
    bandwidth = memory_bandwidth_gb_s()
    model_bytes = Path(gguf_file(args.model) or "").stat().st_size
    results["comparison"] = {
        "decode_ratio_llama_over_transformers": round(decode_ratio, 2),
        "goal_decode_ratio_min": 2.5,
        "memory_bandwidth_gb_s": round(bandwidth, 2),
        # Every weight is read once per generated token (the tied output layer included).
        "llama_bytes_per_token_mb": round(model_bytes / 2**20, 1),
        "llama_share_of_bandwidth": round(
            model_bytes * llama["decode_tokens_per_s"]["p50"] / (bandwidth * 1e9), 3
        ),
        "keystroke_p50_s": llama["keystrokes"]["latency_s"]["p50"],
        "fresh_1500_p50_s": llama["fresh_1500_token_prompt_s"]["p50"],
        "warm_start_s": llama["warm_start"]["to_first_completion_s"],
    }
    for engine in engines.values():
        engine.close()
    path = write_result("engine", results)
    for runtime in RUNTIMES:
        section = results["runtimes"][runtime]
        print(
            f"{runtime}: fresh p50 {section['fresh_prompts']['latency_s']['p50']:.2f}s; prefill "
            f"{section['prefill_tokens_per_s']['p50']:.0f} tok/s; decode {section['decode_tokens_per_s']['p50']:.1f} tok/s; "
            f"keystroke p50 {section['keystrokes']['latency_s']['p50']:.3f}s p95 {section['keystrokes']['latency_s']['p95']:.3f}s; "
            f"warm start {section['warm_start']['to_first_completion_s']:.1f}s, {section['warm_start']['peak_rss_mb']:.0f} MB"
        )
    print(f"comparison: {results['comparison']}\nparity: {results['parity']}\nwrote {path}")


if __name__ == "__main__":
    main()

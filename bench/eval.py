"""Evaluation benchmark (issue 6): the base embedded model measured with ``hotfix eval``'s own code.

Measures, in one run and on one machine: samples per second of batched generation against one
sample at a time (the goal is at least 3x), the buggy and fixed rates on the shared pairs
(QuixBugs + BugsInPy) with the paper's protocol, HumanEval pass@1 (greedy, whole functions), the
line-level functional metric on HumanEval's reference solutions, and perplexity on ordinary code,
with the time each took.

    python bench/eval.py [--model SPEC] [--quick]

``--quick`` keeps the run to a few minutes on a contended 2-core CPU: 4 samples a pair instead of
10, the first 40 HumanEval problems and 60 lines instead of all, and 3 pairs for the speed ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import write_result  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pairs"


def speed(model, tokenizer, prompts, samples: int, max_new_tokens: int) -> dict[str, float]:
    """Samples per second, batched against one sample at a time (each then re-reads its prompt)."""
    from hotfix_engine.evaluation import Sampling, sample_completions

    runs = {}
    for name, batch_size in (("batched", None), ("unbatched", 1)):
        started = time.perf_counter()
        sampling = Sampling(samples=samples, max_new_tokens=max_new_tokens, batch_size=batch_size)
        sample_completions(model, tokenizer, prompts, sampling)
        runs[name] = len(prompts) * samples / (time.perf_counter() - started)
    return {
        "prompts": len(prompts),
        "samples_per_prompt": samples,
        "max_new_tokens": max_new_tokens,
        "batched_samples_per_s": round(runs["batched"], 3),
        "unbatched_samples_per_s": round(runs["unbatched"], 3),
        "ratio": round(runs["batched"] / runs["unbatched"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded:gemma3-270m")
    parser.add_argument(
        "--quick", action="store_true", help="a smaller run of a few minutes (see the docstring)"
    )
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--humaneval", type=int, default=None)
    parser.add_argument("--lines", type=int, default=None)
    parser.add_argument("--humaneval-tokens", type=int, default=256, help="new tokens per HumanEval function")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    samples = args.samples or (4 if args.quick else 10)
    n_humaneval = args.humaneval if args.humaneval is not None else (40 if args.quick else 164)
    n_lines = args.lines if args.lines is not None else (60 if args.quick else 164)

    from hotfix_engine.evaluation.evaluate import EvalConfig, evaluate
    from hotfix_engine.evaluation.lines import line_tasks
    from hotfix_engine.evaluation.problems import humaneval_problems
    from hotfix_engine.evaluation.sampling import Sampling
    from hotfix_engine.models import load_model
    from hotfix_engine.pairs import load_pairs

    started = time.perf_counter()
    loaded = load_model(args.model, device="cpu")
    load_s = time.perf_counter() - started
    pair_sets = {name: load_pairs(DATA / f"{name}.jsonl") for name in ("quixbugs", "bugsinpy")}
    result: dict[str, object] = {"model": loaded.spec, "quick": args.quick, "load_s": round(load_s, 1)}
    config = EvalConfig(Sampling(samples=samples), humaneval_max_new_tokens=args.humaneval_tokens)
    result.update(config=config.to_json(), humaneval_problems=n_humaneval, line_tasks=n_lines)
    # One stage at a time, saving after each, so that a run cut short still reports what it measured.
    stages = [
        ("pairs", {"pair_sets": pair_sets}),
        ("lines", {"pair_sets": {}, "line_tasks": line_tasks(humaneval_problems(), limit=n_lines)}),
        ("humaneval", {"pair_sets": {}, "humaneval_problems": humaneval_problems(n_humaneval)}),
        ("perplexity", {"pair_sets": {}}),
    ]
    base: dict[str, object] = {}
    for name, inputs in stages:
        if name == "lines" and not n_lines or name == "humaneval" and not n_humaneval:
            continue
        stage_config = config if name == "perplexity" else replace(config, perplexity_texts=0)
        run = evaluate(loaded.model, loaded.tokenizer, config=stage_config, label="base", **inputs)  # type: ignore[arg-type]
        data = run.to_json()
        for pair_set in data["pair_sets"].values():  # type: ignore[union-attr]
            pair_set.pop("per_pair")
        if data.get("humaneval"):
            data["humaneval"].pop("per_problem")  # type: ignore[union-attr]
        if data.get("lines"):
            data["lines"].pop("per_task")  # type: ignore[union-attr]
        keys = {
            "pairs": ("buggy_rate", "fixed_rate", "pair_sets", "functional", "samples_per_s"),
            "lines": ("lines",),
            "humaneval": ("humaneval",),
            "perplexity": ("perplexity",),
        }[name]
        base.update({k: data[k] for k in keys})
        base["seconds"] = {**base.get("seconds", {}), **data["seconds"]}  # type: ignore[dict-item]
        result["base"] = base
        result["total_s"] = round(time.perf_counter() - started, 1)
        path = write_result("eval", result)
        print(
            f"{name}: {json.dumps({k: v for k, v in data.items() if k not in ('label',)})[:600]} -> {path}",
            flush=True,
        )
    if not args.skip_speed:
        prompts = [p.prefix for p in pair_sets["quixbugs"][: 3 if args.quick else 6]]
        result["speed"] = speed(loaded.model, loaded.tokenizer, prompts, samples=10, max_new_tokens=32)
        print(f"speed: {result['speed']}", flush=True)
        result["total_s"] = round(time.perf_counter() - started, 1)
        write_result("eval", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Discovery benchmark (issue 9): the embedded model's own bugs on MBPP, and what a hotfix does to them.

1. ``hotfix discover``'s code on MBPP problems (greedy + K samples from every line boundary):
   verified pairs per hour on this machine; the pairs go to ``results/discovered_mbpp.jsonl`` (not
   committed: they quote MBPP's code and tests, which stay in ../shared).
2. The base model's buggy and fixed rates on those pairs with the paper's protocol (10 samples,
   temperature 1.0, top-p 0.95, 64 tokens).
3. With ``--train``: ``hotfix train`` on 80% of the pairs (published with --force into a scratch data
   folder), then base against hotfix on the held-out 20% (paired statistics) and retention (HumanEval
   pass@1 greedy on the first problems, the line-level metric, perplexity) before and after.

    python bench/discover.py [--model SPEC] [--quick] [--limit N] [--samples K] [--train]
    python bench/discover.py --offset 14 --limit 10 --keep     # add pairs from 10 more problems

``--quick`` keeps each phase to a few minutes on a contended 2-core CPU: 40 problems, 4 samples per
line boundary, and (with --train) 40 HumanEval problems and 60 lines for retention.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import RESULTS, write_result  # noqa: E402

MBPP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp" / "mbpp.jsonl"
OUT = RESULTS / "discovered_mbpp.jsonl"


def rates_json(rates) -> dict[str, object]:
    return {"pairs": len(rates.per_pair), "buggy_rate": rates.buggy_rate, "fixed_rate": rates.fixed_rate}


def train_and_compare(args, loaded, pairs, result: dict) -> None:
    """Train on 80% of the discovered pairs with ``hotfix train``; compare base and hotfix."""
    from hotfix_engine.adapters import AdapterRegistry
    from hotfix_engine.adapters_slot import AdapterSlot
    from hotfix_engine.evaluation.evaluate import EvalConfig, compare, evaluate
    from hotfix_engine.evaluation.lines import line_tasks
    from hotfix_engine.evaluation.problems import humaneval_problems
    from hotfix_engine.pairs import split_pairs, write_pairs

    split = split_pairs(pairs, seed=0)
    train, held_out = split["train"], split["val"] + split["test"]
    home = Path(tempfile.mkdtemp(prefix="hotfix-bench-"))
    train_file = home / "train.jsonl"
    write_pairs(train_file, train)
    started = time.perf_counter()
    command = [sys.executable, "-m", "hotfix_engine", "train", "--pairs", str(train_file), "--force", "--json",
               "--model", args.model, "--data-dir", str(home)]  # fmt: skip
    completed = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "HOTFIX_HOME": str(home)}
    )
    train_s = time.perf_counter() - started
    result["train"] = {
        "pairs": len(train),
        "held_out": len(held_out),
        "seconds": round(train_s, 1),
        "returncode": completed.returncode,
        "stdout_tail": completed.stdout[-3000:],
        "stderr_tail": completed.stderr[-1500:],
    }
    print(f"train: rc={completed.returncode} in {train_s:.0f} s", flush=True)
    versions = AdapterRegistry(home, loaded.key).versions()
    if completed.returncode != 0 or not versions:
        return
    version = versions[-1]
    config = EvalConfig(samples=10)
    he = humaneval_problems(args.humaneval or (40 if args.quick else 164))
    tasks = line_tasks(humaneval_problems(), limit=args.lines or (60 if args.quick else 164))
    slot = AdapterSlot(loaded)
    runs = []
    for state in (None, version):
        if state is None:
            slot.unload()
        else:
            slot.load(version.path, version.version)
        runs.append(
            evaluate(
                slot.model,
                loaded.tokenizer,
                {"held_out": held_out, "trained": train},
                config,
                label=state.version if state else "base",
                humaneval_problems=he,
                line_tasks=tasks,
            )
        )
    result["hotfix"] = {
        "adapter": version.version,
        "manifest": version.manifest,
        "runs": [
            {k: v for k, v in r.to_json().items() if k != "pair_sets"}
            | {
                "pair_sets": {
                    n: {k: v for k, v in s.items() if k != "per_pair"}
                    for n, s in r.to_json()["pair_sets"].items()
                }
            }
            for r in runs
        ],  # fmt: skip
        "comparison": compare(runs[0], runs[1]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded:gemma3-270m")
    parser.add_argument("--quick", action="store_true", help="a smaller run (see the docstring)")
    parser.add_argument("--limit", type=int, default=None, help="MBPP problems to try")
    parser.add_argument(
        "--offset", type=int, default=10, help="skip the first problems (MBPP's few-shot prompts)"
    )
    parser.add_argument("--samples", type=int, default=None, help="sampled completions per line boundary")
    parser.add_argument("--train", action="store_true", help="also train on 80%% and compare on 20%%")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse results/discovered_mbpp.jsonl, skip phase 1"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="add to the pairs already in results/discovered_mbpp.jsonl (with --offset past their problems)",
    )
    parser.add_argument("--humaneval", type=int, default=None, help="HumanEval problems for retention")
    parser.add_argument("--lines", type=int, default=None, help="line-level tasks for retention")
    args = parser.parse_args()
    limit = args.limit or (40 if args.quick else 200)
    samples = args.samples if args.samples is not None else (4 if args.quick else 10)

    from hotfix_engine.discovery import DiscoveryConfig, discover, model_completer
    from hotfix_engine.evaluation import bug_rates
    from hotfix_engine.evaluation.problems import load_problems
    from hotfix_engine.models import load_model
    from hotfix_engine.pairs import load_pairs, write_pairs

    loaded = load_model(args.model, device="cpu")
    result: dict[str, object] = {"model": loaded.spec, "quick": args.quick}
    if args.reuse:
        # Comment lines stopped counting as statements after the first runs; drop any such pair found before.
        pairs = [p for p in load_pairs(OUT) if not p.buggy.strip().startswith("#")]
        previous_file = RESULTS / "discover.json"
        previous = json.loads(previous_file.read_text()) if previous_file.exists() else {}
        result.update(
            {k: previous[k] for k in ("discovery", "problems_tried", "samples_per_boundary") if k in previous}
        )
    else:
        problems = load_problems(MBPP)[args.offset : args.offset + limit]
        kept = load_pairs(OUT) if args.keep and OUT.exists() else []
        previous_file = RESULTS / "discover.json"
        before = json.loads(previous_file.read_text()) if args.keep and previous_file.exists() else {}
        earlier = before.get("discovery", {})
        complete = model_completer(loaded.model, loaded.tokenizer, max_new_tokens=96)
        config = DiscoveryConfig(samples=samples)

        def progress(done, total, stats):
            print(f"  {done}/{total} problems, {stats.pairs} pairs, {stats.elapsed_s:.0f} s", flush=True)
            # Written as the run goes, so that a run stopped early still reports what it measured.
            write_result(
                "discover",
                {
                    **result,
                    "problems_tried": done,
                    "samples_per_boundary": samples,
                    "discovery": stats.to_json(),
                },
            )

        found = discover(
            problems, complete, config, progress=progress, on_pairs=lambda p: write_pairs(OUT, kept + list(p))
        )
        pairs = kept + found.pairs
        write_pairs(OUT, pairs)
        stats = found.stats.to_json()
        if earlier:  # one account over every run that contributed pairs
            for key, value in earlier.items():
                if key != "pairs_per_hour" and isinstance(value, (int, float)) and key in stats:
                    stats[key] += value
            if stats.get("elapsed_s"):
                stats["pairs_per_hour"] = round(stats["pairs"] / stats["elapsed_s"] * 3600, 1)
        tried = len(problems) + int(before.get("problems_tried", 0))
        result.update(problems_tried=tried, samples_per_boundary=samples, discovery=stats)
        print(f"discovery: {found.stats.to_json()}", flush=True)
    if pairs:
        started = time.perf_counter()
        rates = bug_rates(loaded.model, loaded.tokenizer, pairs, samples=10)
        result["base_rates"] = {**rates_json(rates), "seconds": round(time.perf_counter() - started, 1)}
        known = [p.extra.get("buggy_rate") for p in pairs if p.extra.get("buggy_rate") is not None]
        result["discovery_time_buggy_rate"] = sum(known) / len(known) if known else None
        print(f"base rates on discovered pairs: {result['base_rates']}", flush=True)
        if args.train:
            train_and_compare(args, loaded, pairs, result)
    path = write_result("discover", result)
    stats = result.get("discovery", {})
    print(
        f"{len(pairs)} discovered pairs ({stats.get('pairs_per_hour', 0):.0f}/hour); "  # type: ignore[union-attr]
        f"base rates {result.get('base_rates')} -> {path}, {OUT}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

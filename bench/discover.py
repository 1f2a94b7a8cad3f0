"""Discovery benchmark (issue 9): the embedded model's own bugs on MBPP, and what a hotfix does to them.

1. ``hotfix discover``'s code on MBPP problems (greedy + K samples from every line boundary):
   verified pairs per hour on this machine; the pairs go to ``results/discovered_mbpp.jsonl`` (not
   committed: they quote MBPP's code and tests, which stay in ../shared). The corpus is resumable
   (``results/discovered_mbpp.jsonl.progress.jsonl``): a run cut short continues where it stopped,
   and a larger --limit adds problems; --restart starts it again.
2. The base model's buggy and fixed rates on those pairs with the paper's protocol (10 samples,
   temperature 1.0, top-p 0.95, 64 tokens).
3. With ``--train``: ``hotfix train`` on the problems of the train side of a split by problem
   (published with --force into a scratch data folder), then base against hotfix on the held-out
   problems' pairs (paired statistics) and retention (HumanEval pass@1 greedy on the first
   problems, the line-level metric, perplexity) before and after. ``bench/ablations.py`` runs the
   full experiment and the paper's ablations.

    python bench/discover.py [--model SPEC] [--quick] [--limit N] [--samples K] [--jobs N] [--train]
    python bench/discover.py --limit 300      # continue the corpus up to 300 problems after --offset

``--quick`` keeps each phase to a few minutes on a contended 2-core CPU: 40 problems, 4 samples per
line boundary, and (with --train) 40 HumanEval problems and 60 lines for retention. A quick corpus
has other settings than a full one: give it another --out.
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
    from hotfix_engine.evaluation.sampling import Sampling
    from hotfix_engine.pairs import split_by_problem, write_pairs

    split = split_by_problem(pairs, seed=0, test_fraction=0.2)
    train, held_out = split["train"], split["test"]
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
    config = EvalConfig(Sampling(samples=10))
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
    parser.add_argument("--jobs", type=int, default=1, help="worker processes, each with its own model")
    parser.add_argument("--out", default=str(OUT), help="the corpus (default results/discovered_mbpp.jsonl)")
    parser.add_argument("--restart", action="store_true", help="start the corpus again")
    parser.add_argument("--train", action="store_true", help="also train and compare on held-out problems")
    parser.add_argument("--reuse", action="store_true", help="use the corpus as it is, skip phase 1")
    parser.add_argument("--humaneval", type=int, default=None, help="HumanEval problems for retention")
    parser.add_argument("--lines", type=int, default=None, help="line-level tasks for retention")
    args = parser.parse_args()
    limit = args.limit or (40 if args.quick else 200)
    samples = args.samples if args.samples is not None else (4 if args.quick else 10)
    out = Path(args.out)

    from hotfix_engine.cli.discover import ModelCompleter, settings
    from hotfix_engine.corpus import Corpus, dedupe_pairs, load_corpus
    from hotfix_engine.discovery import DiscoveryConfig, model_completer
    from hotfix_engine.discovery_run import run_discovery
    from hotfix_engine.evaluation import Sampling, bug_rates
    from hotfix_engine.evaluation.problems import load_problems
    from hotfix_engine.models import load_model

    loaded = load_model(args.model, device="cpu")
    result: dict[str, object] = {"model": loaded.spec, "quick": args.quick}
    if not args.reuse:
        problems = load_problems(MBPP)[args.offset : args.offset + limit]
        config = DiscoveryConfig(Sampling(samples=max(samples, 1), max_new_tokens=96), sampled=samples > 0)
        corpus = Corpus(out, settings(config, loaded.spec, None), restart=args.restart)
        if args.jobs > 1:
            factory = ModelCompleter(args.model, "cpu", None, None, None, config.protocol)
        else:

            def factory():
                return model_completer(loaded.model, loaded.tokenizer)

        def progress(done, total, stats):
            print(f"  {done}/{total} problems, {stats.pairs} new pairs, {stats.elapsed_s:.0f} s", flush=True)
            # Written as the run goes, so that a run stopped early still reports what it measured.
            totals = corpus.totals()
            tried = totals.problems + totals.skipped_no_tests + totals.skipped_broken
            write_result(
                "discover",
                {**result, "problems_tried": tried, "samples_per_boundary": samples,
                 "discovery": totals.to_json()},
            )  # fmt: skip

        summary = run_discovery(problems, factory, config, corpus, jobs=args.jobs, progress=progress)
        totals = summary.totals
        tried = totals.problems + totals.skipped_no_tests + totals.skipped_broken
        result.update(problems_tried=tried, samples_per_boundary=samples, discovery=totals.to_json())
        print(f"discovery: {summary.this_run.to_json()} in {summary.wall_s:.0f} s", flush=True)
    else:
        previous_file = RESULTS / "discover.json"
        previous = json.loads(previous_file.read_text()) if previous_file.exists() else {}
        result.update(
            {k: previous[k] for k in ("discovery", "problems_tried", "samples_per_boundary") if k in previous}
        )
    pairs, _ = dedupe_pairs(load_corpus(out)) if out.exists() else ([], 0)
    if pairs:
        started = time.perf_counter()
        rates = bug_rates(loaded.model, loaded.tokenizer, pairs, Sampling(samples=10))
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
        f"base rates {result.get('base_rates')} -> {path}, {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

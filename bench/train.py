"""Benchmark: a hotfix adapter on the embedded model, trained on real bug-fix pairs.

Pairs from ../shared/data/pairs/ (QuixBugs + BugsInPy) are split 80/10/10 with a fixed seed. The
adapter trains on (up to --pairs of) the training split; buggy and fixed rates are measured on the
test split before and after with the paper's protocol (docs/architecture.md, Contracts: K samples at temperature 1.0,
top-p 0.95, 64 new tokens), plus the same on a few trained pairs (did it learn at all?), and the
retention probe (perplexity on held-out standard-library code). Goals (issue 5): 50 pairs in at most
5 minutes on 2 cores; fixed rate +100 %, buggy rate -50 % against the base; retention within 2 %.

    .venv/bin/python bench/train.py            # full setting
    .venv/bin/python bench/train.py --quick    # fewer pairs and samples, for a contended machine
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from common import machine  # noqa: E402

PAIR_FILES = [
    ROOT.parent / "shared" / "data" / "pairs" / name for name in ("quixbugs.jsonl", "bugsinpy.jsonl")
]
GOALS = {"seconds_per_50_pairs": 300.0, "fixed_change": 1.0, "buggy_change": -0.5, "retention_change": 0.02}


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    """Linux resets VmHWM when "5" is written to clear_refs, so the training peak can be read alone."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def change(before: float, after: float) -> float | None:
    return None if before == 0 else (after - before) / before


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded:gemma3-270m")
    parser.add_argument("--quick", action="store_true", help="24 pairs, 5 samples: for a contended machine")
    parser.add_argument("--pairs", type=int, default=None, help="training pairs used (default 50; quick 24)")
    parser.add_argument("--samples", type=int, default=None, help="samples a pair (default 10; quick 5)")
    parser.add_argument(
        "--trained-eval", type=int, default=None, help="trained pairs also scored (default 11; quick 6)"
    )
    parser.add_argument("--method", default="lora")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--config", default="{}", help="more TrainConfig fields as JSON, e.g. '{\"retain_batch\": 4}'"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "train.json"))
    args = parser.parse_args()
    n_pairs = args.pairs or (24 if args.quick else 50)
    samples = args.samples or (5 if args.quick else 10)
    n_trained_eval = args.trained_eval if args.trained_eval is not None else (6 if args.quick else 11)

    import torch

    from hotfix_engine.evaluation import Sampling, bug_rates, perplexity
    from hotfix_engine.models import load_model
    from hotfix_engine.pairs import load_pair_files, split_pairs
    from hotfix_engine.train_config import TrainConfig
    from hotfix_engine.train_data import build_training_data, retention_probe_texts
    from hotfix_engine.trainer import train

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    started = time.time()
    loaded = load_model(args.model, device="cpu")
    model, tok = loaded.model, loaded.tokenizer
    split = split_pairs(load_pair_files(PAIR_FILES), seed=args.seed)
    train_pairs = split["train"][:n_pairs]
    test_pairs = split["test"]
    trained_eval = train_pairs[:n_trained_eval]
    probes = retention_probe_texts()
    extra = json.loads(args.config)
    if "weights" in extra:
        extra["weights"] = tuple(extra["weights"].items())
    config = TrainConfig(
        method=args.method,
        epochs=args.epochs,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        nice=0,
        **extra,
    )

    def score(m, label: str) -> dict:
        t0 = time.monotonic()
        sampling = Sampling(samples=samples, seed=args.seed)
        test = bug_rates(m, tok, test_pairs, sampling)
        trained = bug_rates(m, tok, trained_eval, sampling) if trained_eval else None
        ppl = perplexity(m, tok, probes)
        seconds = time.monotonic() - t0
        print(
            f"{label}: test buggy {test.buggy_rate:.1%} fixed {test.fixed_rate:.1%}"
            + (f"; trained buggy {trained.buggy_rate:.1%} fixed {trained.fixed_rate:.1%}" if trained else "")
            + f"; retention ppl {ppl:.3f} ({seconds:.0f} s)",
            flush=True,
        )
        return {
            "test": {"buggy_rate": test.buggy_rate, "fixed_rate": test.fixed_rate},
            "trained": {"buggy_rate": trained.buggy_rate, "fixed_rate": trained.fixed_rate}
            if trained
            else None,
            "retention_perplexity": ppl,
            "seconds": round(seconds, 1),
        }

    model.eval()
    before = score(model, "base")

    reset_peak_rss()
    rss_before = peak_rss_mb()
    t0 = time.monotonic()
    data = build_training_data(
        tok,
        train_pairs,
        retain_windows=config.retain_windows,
        window_tokens=config.window_tokens,
        max_context=config.max_context,
        max_target=config.max_target,
        seed=args.seed,
    )
    result = train(model, tok, data, config, progress=True)
    train_seconds = time.monotonic() - t0
    peak = peak_rss_mb()
    print(
        f"trained {len(train_pairs)} pairs, {result.steps} steps in {train_seconds:.0f} s; peak RSS {peak:.0f} MB"
    )

    result.model.eval()
    after = score(result.model, "hotfix")

    per_50 = train_seconds * 50 / len(train_pairs)
    changes = {
        "fixed_change": change(before["test"]["fixed_rate"], after["test"]["fixed_rate"]),
        "buggy_change": change(before["test"]["buggy_rate"], after["test"]["buggy_rate"]),
        "retention_change": after["retention_perplexity"] / before["retention_perplexity"] - 1.0,
        "trained_fixed_change": change(before["trained"]["fixed_rate"], after["trained"]["fixed_rate"])
        if before["trained"]
        else None,
        "trained_buggy_change": change(before["trained"]["buggy_rate"], after["trained"]["buggy_rate"])
        if before["trained"]
        else None,
    }
    met = {
        "seconds_per_50_pairs": per_50 <= GOALS["seconds_per_50_pairs"],
        "fixed_change": changes["fixed_change"] is not None
        and changes["fixed_change"] >= GOALS["fixed_change"],
        "buggy_change": changes["buggy_change"] is not None
        and changes["buggy_change"] <= GOALS["buggy_change"],
        "retention_change": changes["retention_change"] <= GOALS["retention_change"],
    }
    report = {
        "benchmark": "train",
        "model": loaded.spec,
        "setting": "quick" if args.quick else "full",
        "settings": {
            "train_pairs": len(train_pairs),
            "test_pairs": len(test_pairs),
            "trained_pairs_scored": len(trained_eval),
            "samples_per_pair": samples,
            "sampling": {"temperature": 1.0, "top_p": 0.95, "max_new_tokens": 64},
            "split": f"80/10/10 of quixbugs+bugsinpy, seed {args.seed}",
            "threads": args.threads,
            "config": config.to_json(),
        },
        "machine": {
            **machine(),
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
            "note": "shared machine: other processes compete for the same 2 cores (see loadavg)",
        },
        "before": before,
        "after": after,
        "changes": changes,
        "training": {
            "seconds": round(train_seconds, 1),
            "seconds_per_50_pairs": round(per_50, 1),
            "steps": result.steps,
            "peak_rss_mb": round(peak, 0),
            "rss_at_start_mb": round(rss_before, 0),
            "losses": result.summary(),
        },
        "goals": GOALS,
        "goals_met": met,
        "wall_seconds": round(time.time() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    fmt = lambda v: "n/a (base rate 0)" if v is None else f"{v:+.0%}"  # noqa: E731
    print(
        f"fixed {fmt(changes['fixed_change'])}, buggy {fmt(changes['buggy_change'])}, "
        f"retention {changes['retention_change']:+.2%}, {per_50:.0f} s per 50 pairs; goals met: "
        + ", ".join(k for k, v in met.items() if v)
        + f" -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

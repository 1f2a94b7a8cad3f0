"""``hotfix eval``: what a hotfix did to the model, measured with the paper's protocol.

Prompts are built as suggestions are served by default (``--protocol product``), so the numbers are
about what users see; ``--protocol paper`` reproduces Yang & Lo 2024's prompts exactly.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
from pathlib import Path

from hotfix_engine.errors import ConfigError, DataError

ORDER = 50
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "eval",
        parents=[common],
        help="measure buggy/fixed rates, retention and leakage of a model and adapter",
        description=(
            "Sample completions of each pair's prefix and count how often the model writes the buggy and "
            "the fixed statement (Yang & Lo 2024's sampling; prompts as served, or as the paper built them "
            "with --protocol paper); optionally HumanEval pass@k, the line-level functional "
            "metric, perplexity on ordinary code and leakage. With --compare, both states are measured on "
            "the same pairs and seeds and the report gives paired differences with confidence intervals "
            "and p-values. Generated code runs only in a sandboxed child process."
        ),
    )
    p.add_argument("--pairs", nargs="+", default=[], metavar="FILE", help="pair files (JSON Lines)")
    p.add_argument(
        "--adapter", default="current", help="current (default), none, a version like v0003, or a folder"
    )
    p.add_argument(
        "--compare", default=None, help="also measure this state (none, current, vNNNN) and compare"
    )
    p.add_argument(
        "--protocol",
        choices=("product", "paper"),
        default="product",
        help="how prompts are built: product (default) = prompted as suggestions are served (budget, FIM "
        "form, token healing); paper = Yang & Lo 2024's protocol (the raw prefix, no healing)",
    )
    p.add_argument("--samples", type=int, default=10, help="samples per pair (default 10)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens per sample (default 64)")
    p.add_argument(
        "--split",
        choices=("all", "train", "val", "test"),
        default="all",
        help="which part of the 80/10/10 split of all pairs (the trainer's, same seed) to score (default all)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of sampling (default 0)")
    p.add_argument(
        "--humaneval", type=int, default=0, metavar="N", help="HumanEval pass@k on the first N problems"
    )
    p.add_argument(
        "--humaneval-samples", type=int, default=1, metavar="K", help="samples per problem (1: greedy pass@1)"
    )
    p.add_argument(
        "--lines",
        type=int,
        default=0,
        metavar="N",
        help="line-level metric on N lines of HumanEval references",
    )
    p.add_argument(
        "--lines-problems",
        nargs="+",
        default=[],
        metavar="FILE",
        help="also draw line tasks from these problem files (MBPP or HumanEval JSON Lines)",
    )
    p.add_argument(
        "--privacy",
        type=int,
        nargs="?",
        const=100,
        default=0,
        metavar="N",
        help="leakage on N unconditional samples",
    )
    p.add_argument("--no-perplexity", action="store_true", help="skip the perplexity probe")
    p.add_argument(
        "--no-functional", action="store_true", help="skip running the tests of pairs that have them"
    )
    p.add_argument("--batch-size", type=int, default=None, help="rows decoded together (default 40)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per sandboxed program (default 5)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument(
        "--json",
        dest="json_out",
        default=None,
        metavar="OUT",
        help="write the JSON report here (- for stdout)",
    )
    p.add_argument(
        "--report", default=None, metavar="DIR", help="write report.json, report.md and plots here"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def load_pair_sets(files: list[str], split: str, seed: int) -> dict[str, list]:
    """Pairs per file (named by file stem), restricted to one part of the split of their union."""
    from hotfix_engine.pairs import load_pairs, split_pairs

    per_file = {}
    for name in files:
        label = Path(name).stem
        while label in per_file:
            label += "'"
        per_file[label] = load_pairs(name)
    if split != "all":
        keep = {p.key for p in split_pairs([p for ps in per_file.values() for p in ps], seed=seed)[split]}
        per_file = {label: [p for p in ps if p.key in keep] for label, ps in per_file.items()}
        per_file = {label: ps for label, ps in per_file.items() if ps}
        if not per_file:
            raise DataError(f"the {split} split of the pair files is empty")
    return per_file


def run(args: argparse.Namespace) -> int:
    from hotfix_engine.evaluation.evaluate import EvalConfig, compare, evaluate
    from hotfix_engine.evaluation.sampling import Sampling

    if not (args.pairs or args.humaneval or args.lines or args.privacy):
        raise ConfigError("nothing to measure: give --pairs FILE ..., --humaneval N, --lines N or --privacy")
    try:
        config = EvalConfig(
            Sampling(
                samples=args.samples,
                temperature=args.temperature,
                top_p=args.top_p,
                max_new_tokens=args.max_new_tokens,
                seed=args.seed,
                batch_size=args.batch_size,
            ),
            functional=not args.no_functional,
            humaneval_samples=args.humaneval_samples,
            privacy_samples=args.privacy,
            perplexity_texts=0 if args.no_perplexity else EvalConfig().perplexity_texts,
            timeout_s=args.timeout,
            protocol=args.protocol,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    pair_sets = load_pair_sets(args.pairs, args.split, args.seed) if args.pairs else {}
    problems, tasks = _problems(args, config)

    import torch

    from hotfix_engine.adapter_choice import resolve_adapter
    from hotfix_engine.adapters_slot import AdapterSlot
    from hotfix_engine.models import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model, device=args.device)
    # Resolve both choices before the long work, so an unknown version fails in a second.
    states = [resolve_adapter(args.adapter, loaded.key, args.data_dir)]
    if args.compare is not None:
        baseline = resolve_adapter(args.compare, loaded.key, args.data_dir)
        if baseline != states[0]:
            states.insert(0, baseline)
    slot = AdapterSlot(loaded)
    runs = []
    for folder, version in states:
        if folder is None:
            slot.unload()
        else:
            slot.load(folder, version or folder.name)
        runs.append(
            evaluate(
                slot.model,
                loaded.tokenizer,
                pair_sets,
                config,
                label=version or "base",
                humaneval_problems=problems,
                line_tasks=tasks,
                progress=not args.no_progress,
            )
        )
    report = {
        "model": loaded.spec,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": {**config.to_json(), "split": args.split, "pair_files": args.pairs},
        "runs": [r.to_json() for r in runs],
        "comparison": compare(runs[0], runs[1], seed=args.seed) if len(runs) == 2 else None,
    }
    if args.report:
        from hotfix_engine.evaluation.report import write_report

        write_report(report, args.report)
    if args.json_out == "-":
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        if args.json_out:
            Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        sys.stdout.write(summary(report))
    return 0


def _problems(args: argparse.Namespace, config) -> tuple[list, list]:
    from hotfix_engine.evaluation.lines import line_tasks
    from hotfix_engine.evaluation.problems import check_references, humaneval_problems, load_problems

    problems = humaneval_problems(args.humaneval) if args.humaneval else []
    tasks: list = []
    if args.lines:
        pool = humaneval_problems()
        for name in args.lines_problems:
            checked = check_references(load_problems(name), config.limits)
            if checked.no_tests or checked.broken:
                log.info(
                    "%s: skipped %d problems without tests and %d with a failing reference",
                    name,
                    len(checked.no_tests),
                    len(checked.broken),
                )
            pool += checked.usable
        tasks = line_tasks(pool, limit=args.lines, seed=args.seed)
    return problems, tasks


def summary(report: dict) -> str:
    """A few lines for the terminal; the report has the rest."""
    lines = []
    for run in report["runs"]:
        parts = [f"{run['label']}:"]
        for name, s in run["pair_sets"].items():
            parts.append(
                f"{name} buggy {s['buggy_rate']:.2%} fixed {s['fixed_rate']:.2%} ({s['pairs']} pairs)"
            )
        if run.get("humaneval"):
            parts.append(
                "HumanEval " + ", ".join(f"{k} {v:.2%}" for k, v in run["humaneval"]["pass_at"].items())
            )
        if run.get("lines"):
            parts.append(f"lines {run['lines']['pass_rate']:.2%} of {run['lines']['tasks']}")
        if run.get("perplexity") is not None:
            parts.append(f"perplexity {run['perplexity']:.3f}")
        if run.get("leakage"):
            parts.append(f"leakage {run['leakage']['rate']:.2%}")
        lines.append("  ".join(parts))
    comparison = report.get("comparison")
    if comparison:
        for name, sides in comparison["pair_sets"].items():
            for side, c in sides.items():
                lines.append(
                    f"{name} {side}: {c['difference'] * 100:+.2f} pts "
                    f"[{c['ci_low'] * 100:+.2f}, {c['ci_high'] * 100:+.2f}], p={c['p_sign_flip']:.3g}"
                )
    return "\n".join(lines) + "\n"

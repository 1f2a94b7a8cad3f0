"""Reports: JSON for machines, Markdown with tables and PNG plots for people.

Plots need matplotlib (the optional extra ``plots``); without it the Markdown says so and the tables
carry the same numbers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

PROMPTING = {
    "product": "prompted as suggestions are served (token healing included)",
    "paper": "prompted as Yang & Lo 2024 did (the raw prefix, no healing)",
}


def _pct(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.2%}"  # type: ignore[arg-type]


def _ci(pair: Sequence[float]) -> str:
    low, high = pair
    return f"[{low:.2%}, {high:.2%}]"


def _p(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.3g}"  # type: ignore[arg-type]


def _signed(value: float) -> str:
    return f"{value * 100:+.2f} pts"


def _relative(value: object) -> str:
    return "n/a (base is 0)" if value is None else f"{float(value):+.1%}"  # type: ignore[arg-type]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def markdown(report: dict, plots: Sequence[str] = (), plot_note: str = "") -> str:
    """The Markdown report for a report dictionary as built by ``hotfix eval``."""
    runs: list[dict] = report["runs"]
    out = ["# hotfix evaluation", ""]
    out.append(
        f"Model `{report.get('model')}`, {report.get('created', '')}. Runs: "
        + ", ".join(r["label"] for r in runs)
        + "."
    )
    config = report.get("config", {})
    protocol = str(config.get("protocol", "paper"))  # reports from before the option used the paper's
    out.append(
        f"Protocol `{protocol}`: {PROMPTING.get(protocol, 'unknown prompts')}; {config.get('samples')} samples "
        f"a pair, temperature {config.get('temperature')}, top-p {config.get('top_p')}, "
        f"{config.get('max_new_tokens')} new tokens, seed {config.get('seed')}. "
        "A sample is buggy (fixed) when one of its whole lines is the buggy (fixed) statement, whitespace aside."
    )
    out.append("")
    out += ["## Bug rates", ""]
    rows = []
    for run in runs:
        for name, s in run["pair_sets"].items():
            rows.append(
                [name, run["label"], str(s["pairs"]), str(s["samples"]), _pct(s["buggy_rate"]), _ci(s["buggy_ci"]),
                 _pct(s["fixed_rate"]), _ci(s["fixed_ci"])]
            )  # fmt: skip
    out += _table(
        ["pairs", "run", "n pairs", "samples", "buggy", "buggy 95% CI", "fixed", "fixed 95% CI"], rows
    )
    comparison = report.get("comparison")
    if comparison:
        out += [f"## Change: {comparison['after']} against {comparison['before']}", ""]
        rows = []
        for name, sides in comparison["pair_sets"].items():
            for side, c in sides.items():
                rows.append(
                    [name, side, _pct(c["before"]), _pct(c["after"]),
                     f"{_signed(c['difference'])} [{c['ci_low'] * 100:+.2f}, {c['ci_high'] * 100:+.2f}]",
                     _relative(c["relative"]), _p(c["p_sign_flip"]), _p(c["p_wilcoxon"])]
                )  # fmt: skip
        out += _table(
            [
                "pairs",
                "rate",
                "before",
                "after",
                "difference [95% CI]",
                "relative",
                "p (sign flip)",
                "p (Wilcoxon)",
            ],
            rows,
        )
        out.append(
            "Paired over pairs (same pairs, same seeds); a p-value above 0.05 means the change is within noise."
        )
        out.append("")
    for field_name, title in (("by_source", "source"), ("by_pattern", "pattern")):
        rows = []
        for run in runs:
            for name, s in run["pair_sets"].items():
                for group, g in s[field_name].items():
                    rows.append(
                        [
                            name,
                            group,
                            run["label"],
                            str(g["pairs"]),
                            _pct(g["buggy_rate"]),
                            _pct(g["fixed_rate"]),
                        ]
                    )
        if rows:
            out += [f"### By {title}", ""]
            out += _table(["pairs", title, "run", "n pairs", "buggy", "fixed"], rows)
    functional_rows = [
        [name, run["label"], str(f["pairs"]), _pct(f["pass_rate"])]
        for run in runs
        for name, f in run["functional"].items()
    ]
    if functional_rows:
        out += ["## Functional check (pairs with tests)", ""]
        out += _table(["pairs", "run", "pairs with tests", "samples passing"], functional_rows)
    out += _retention(runs, comparison)
    leak_rows = [
        [run["label"], str(run["leakage"]["samples"]), _pct(run["leakage"]["rate"]), _pct(run["leakage"]["email_rate"]),
         _pct(run["leakage"]["ip_rate"]), _pct(run["leakage"]["secret_rate"])]
        for run in runs
        if run.get("leakage")
    ]  # fmt: skip
    if leak_rows:
        out += ["## Leakage (unconditional samples)", ""]
        out += _table(["run", "samples", "any", "e-mail", "IP", "secret"], leak_rows)
        if comparison and "leakage" in comparison:
            out += [f"McNemar p = {_p(comparison['leakage']['p_mcnemar'])}.", ""]
    out += ["## Time", ""]
    out += _table(
        ["run", "stage", "seconds"],
        [[run["label"], stage, f"{sec:.1f}"] for run in runs for stage, sec in run["seconds"].items()],
    )
    if plots:
        out += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    elif plot_note:
        out += [plot_note, ""]
    return "\n".join(out)


def _retention(runs: list[dict], comparison: dict | None) -> list[str]:
    out: list[str] = []
    rows = []
    for run in runs:
        he, lines = run.get("humaneval"), run.get("lines")
        if he or lines or run.get("perplexity") is not None:
            pass_at = he["pass_at"] if he else {}
            rows.append(
                [run["label"], ", ".join(f"{k} {_pct(v)}" for k, v in pass_at.items()) or "not run",
                 f"{_pct(lines['pass_rate'])} of {lines['tasks']}" if lines else "not run",
                 f"{_pct(lines['exact_rate'])}" if lines else "n/a",
                 f"{run['perplexity']:.3f}" if run.get("perplexity") is not None else "not run"]
            )  # fmt: skip
    if rows:
        out += ["## Retention", ""]
        out += _table(
            ["run", "HumanEval", "one line completed, tests pass", "line exact", "perplexity"], rows
        )
    if comparison:
        notes = []
        if "humaneval" in comparison:
            notes.append(f"HumanEval pass@1 paired McNemar p = {_p(comparison['humaneval']['p_mcnemar'])}")
        if "lines" in comparison:
            c = comparison["lines"]
            notes.append(
                f"line-level pass rate {_signed(c['pass_rate']['difference'])}, McNemar p = {_p(c['p_mcnemar'])}"
            )
        if "perplexity" in comparison:
            notes.append(f"perplexity change {_relative(comparison['perplexity']['relative'])}")
        if notes:
            out += ["; ".join(notes) + ".", ""]
    return out


def plot(report: dict, folder: Path) -> tuple[list[str], str]:
    """PNG plots (rates per pattern per run, pass@k); returns their paths, or a note why there are none."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "Plots skipped: matplotlib is not installed (pip install 'hotfix[plots]')."
    runs: list[dict] = report["runs"]
    written = []
    groups = sorted({g for run in runs for s in run["pair_sets"].values() for g in s["by_pattern"]})
    if groups:
        fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.2 * len(groups) + 3), 4), squeeze=False)
        width = 0.8 / len(runs)
        for axis, side in zip(axes[0], ("buggy", "fixed"), strict=True):
            for index, run in enumerate(runs):
                values = []
                for group in groups:
                    pairs = samples = hits = 0
                    for s in run["pair_sets"].values():
                        g = s["by_pattern"].get(group)
                        if g:
                            pairs += g["pairs"]
                            samples += g["samples"]
                            hits += g[f"{side}_rate"] * g["samples"]
                    values.append(100 * hits / samples if samples else 0.0)
                axis.bar([i + index * width for i in range(len(groups))], values, width, label=run["label"])
            axis.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(groups))])
            axis.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
            axis.set_ylabel(f"{side} rate (% of samples)")
            axis.set_title(f"{side} rate by pattern")
            axis.legend(fontsize=8)
        fig.tight_layout()
        path = folder / "rates_by_pattern.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    retention = [(run["label"], run.get("humaneval"), run.get("lines")) for run in runs]
    if any(he or lines for _, he, lines in retention):
        fig, axis = plt.subplots(figsize=(6, 4))
        names = sorted({k for _, he, _ in retention if he for k in he["pass_at"]}) + (
            ["line-level"] if any(lines for _, _, lines in retention) else []
        )
        width = 0.8 / len(runs)
        for index, (label, he, lines) in enumerate(retention):
            values = [100 * (he["pass_at"].get(n, 0.0) if he else 0.0) for n in names if n != "line-level"]
            if "line-level" in names:
                values.append(100 * (lines["pass_rate"] if lines else 0.0))
            axis.bar([i + index * width for i in range(len(names))], values, width, label=label)
        axis.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(names))])
        axis.set_xticklabels(names)
        axis.set_ylabel("% passing")
        axis.set_title("Retention: HumanEval pass@k and line-level")
        axis.legend(fontsize=8)
        fig.tight_layout()
        path = folder / "retention.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written, ""


def write_report(report: dict, folder: str | Path) -> list[Path]:
    """Write ``report.json``, ``report.md`` and the plots into ``folder``; returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plots, note = plot(report, folder)
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (folder / "report.md").write_text(markdown(report, plots, note) + "\n", encoding="utf-8")
    log.info("report written to %s", folder)
    return [folder / "report.json", folder / "report.md", *map(Path, plots)]

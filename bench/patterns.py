"""Patterns benchmark: the cost of checking one suggestion, and mining throughput on git histories.

Matcher: a catalogue with every rule plus the shared QuixBugs and BugsInPy pairs checks suggestions
cut from real code (the standard library, at random statement starts, one to three lines each, with
the whole file before the cursor as prefix) and the shared pairs' own buggy lines in their context
(every one of those hits the index). Goal: under 1 ms median; reported as a ratio to that goal and
to a baseline in the same run, a linear scan over the pairs (what the index saves), and again with
the catalogue grown a hundredfold (the cost must not grow with the number of pairs).

Store: the latency of recording a matching suggestion (one WAL transaction, synchronous=FULL).

Mining: commits walked per second on the real git histories found on this machine (this project's
own, and any other repository with history), and, as a recall check, a history replayed from the
shared pairs (one commit writing each buggy file, one "Fix" commit replacing the buggy line): how
many of those single-statement fixes the miner recovers. The replay is a constructed history, not a
real one, and is reported as such.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cursor_prompts, summary, write_result  # noqa: E402

from hotfix_engine.pairs import BugFixPair, load_pair_files, normalize_statement  # noqa: E402
from hotfix_engine.patterns import Catalogue  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pairs"
GOAL_MS = 1.0


def suggestions(count: int, pairs: list[BugFixPair], seed: int = 0) -> list[tuple[str, str, str]]:
    """(kind, prefix, text): real code continuations, and known buggy lines in their own context."""
    rng = random.Random(seed)
    found: list[tuple[str, str, str]] = []
    for _, prefix, suffix in cursor_prompts(count, seed=seed):
        lines = suffix.split("\n")
        found.append(("real-code", prefix, "\n".join(lines[: rng.randint(1, 3)])))
    for pair in pairs:
        indent = len(pair.buggy) - len(pair.buggy.lstrip())
        prefix = pair.prefix + pair.buggy[:indent]
        found.append(
            ("known-bug", prefix, pair.buggy[indent:] + "\n" + "\n".join(pair.suffix.split("\n")[:2]))
        )
    return found


def time_checks(catalogue: Catalogue, cases: list[tuple[str, str, str]], repeats: int) -> dict[str, object]:
    """Whole checks (rules and pairs) by kind of suggestion, and the pair lookup alone."""
    times: dict[str, list[float]] = {}
    lookups = []
    for _ in range(repeats):
        for kind, prefix, text in cases:
            start = time.perf_counter()
            catalogue.check(prefix, text)
            times.setdefault(kind, []).append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            catalogue.index.match(prefix, text)
            lookups.append((time.perf_counter() - start) * 1000)
    every = [t for values in times.values() for t in values]
    return {
        "all_ms": summary(every),
        **{f"{kind}_ms": summary(values) for kind, values in times.items()},
        "pair_lookup_only_ms": summary(lookups),
    }


def linear_scan(pairs: list[BugFixPair], cases: list[tuple[str, str, str]]) -> dict[str, float]:
    """Baseline: compare each suggestion line with every pair, as a naive matcher would."""
    known = [(normalize_statement(p.buggy), normalize_statement(p.fixed)) for p in pairs]
    times = []
    for _, prefix, text in cases:
        start = time.perf_counter()
        head = prefix[prefix.rfind("\n") + 1 :]
        for line in (head + text).split("\n"):
            statement = normalize_statement(line)
            _ = [b for b, f in known if statement in (b, f)]
        times.append((time.perf_counter() - start) * 1000)
    return summary(times)


def match_rates(catalogue: Catalogue, cases: list[tuple[str, str, str]]) -> dict[str, float]:
    rates: dict[str, list[int]] = {}
    for kind, prefix, text in cases:
        matches = catalogue.check(prefix, text)
        rates.setdefault(f"{kind}_any", []).append(bool(matches))
        rates.setdefault(f"{kind}_pair", []).append(any(m.source != "rule" for m in matches))
    return {key: round(sum(values) / len(values), 4) for key, values in rates.items()}


SVEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "sven" / "python_security_fixes.jsonl"
SVEN_RULES = {"cwe-089": ("sql-injection",), "cwe-078": ("shell-injection", "os-system-injection")}


def security_rules_on_sven() -> dict[str, object]:
    """The injection rules on real security fixes: how often they flag the vulnerable function, and
    (a false-positive proxy) how often they still flag its fixed version."""
    import json

    from hotfix_engine.patterns import scan_source

    results: dict[str, object] = {}
    rows = [json.loads(line) for line in SVEN.read_text(encoding="utf-8").splitlines() if line.strip()]
    for cwe, rule_ids in SVEN_RULES.items():
        chosen = [row for row in rows if row["vul_type"] == cwe]

        def flagged(source: str, rule_ids: tuple[str, ...] = rule_ids) -> bool:
            return any(f.pattern_id in rule_ids for f in scan_source(source.replace("\r\n", "\n")))

        before = sum(flagged(row["func_src_before"]) for row in chosen)
        after = sum(flagged(row["func_src_after"]) for row in chosen)
        results[cwe] = {
            "rules": list(rule_ids),
            "functions": len(chosen),
            "vulnerable_flagged": before,
            "fixed_flagged": after,
            "detection_rate": round(before / len(chosen), 4),
            "fixed_flag_rate": round(after / len(chosen), 4),
        }
    return results


def store_latency(count: int) -> dict[str, float]:
    from hotfix_engine.patterns import PatternMatch
    from hotfix_engine.store import Store
    from hotfix_engine.store_records import OutcomeRecord, SuggestionRecord

    match = (PatternMatch("none-comparison", "rule", "buggy", 0, "m", "    if x is None:"),)
    times, outcome_times = [], []
    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder)) as store:
        for i in range(count):
            rec = SuggestionRecord(
                f"s{i}",
                time.time(),
                "python",
                "file:///x.py",
                "def f(x):\n" * 50,
                "",
                "if x == None:",
                "m",
                None,
                match,
            )
            start = time.perf_counter()
            store.record_suggestion(rec)
            times.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            store.record_outcome(OutcomeRecord(f"s{i}", "rejected", "dismissed"))
            outcome_times.append((time.perf_counter() - start) * 1000)
    return {"record_suggestion_ms": summary(times), "record_outcome_ms": summary(outcome_times)}  # type: ignore[dict-item]


def real_histories() -> list[Path]:
    """This project's repository and every other git repository within four levels of ``/``."""
    found = subprocess.run(
        ["find", "/", "-maxdepth", "4", "-name", ".git", "-type", "d", "-not", "-path", "/proc/*"],
        capture_output=True,
        text=True,
    ).stdout.split()
    candidates = [Path(__file__).resolve().parents[1], *(Path(p).parent for p in found)]
    unique: list[Path] = []
    for path in candidates:
        if path.resolve() not in unique:
            unique.append(path.resolve())
    return unique


def mine_repo(path: Path) -> dict[str, object]:
    from hotfix_engine.mining import mine

    total = int(
        subprocess.run(
            ["git", "-C", str(path), "rev-list", "--count", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or 0
    )
    result = mine(path)
    return {
        "repo": str(path),
        "commits_total": total,
        "commits_walked_with_python": result.commits,
        "fix_commits": result.fix_commits,
        "pairs": len(result.pairs),
        "elapsed_s": round(result.elapsed_s, 3),
        "commits_per_s": round(result.commits / result.elapsed_s, 1) if result.elapsed_s else None,
        "skipped": result.skipped,
        "examples": [
            {"id": p.id, "pattern": p.pattern, "buggy": p.buggy.strip(), "fixed": p.fixed.strip()}
            for p in result.pairs[:5]
        ],
    }


def replay(pairs: list[BugFixPair], folder: Path) -> dict[str, object]:
    """A history built from the shared pairs: per pair, write the buggy file, then fix the line."""
    from hotfix_engine.mining import mine

    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@example.org", "-c", "commit.gpgsign=false"]

    def git(*args: str, stdin: str | None = None) -> None:
        subprocess.run(
            ["git", *ident, *args],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
            input=stdin,
            text=True,
        )

    git("init", "-q")
    # fast-import writes the whole history in one process: building it is not what is measured.
    stream, mark = [], 0
    for pair in pairs:
        name = f"src/{pair.key.replace('/', '_')}.py"
        for message, line in ((f"Add {pair.key}", pair.buggy), (f"Fix {pair.key}", pair.fixed)):
            mark += 1
            content = pair.prefix + line + "\n" + pair.suffix + "\n"
            data = content.encode("utf-8")
            stream.append(
                f"commit refs/heads/main\nmark :{mark}\ncommitter bench <bench@example.org> {1700000000 + mark} +0000\n"
            )
            stream.append(f"data {len(message.encode())}\n{message}\n")
            if mark > 1:
                stream.append(f"from :{mark - 1}\n")
            stream.append(f"M 100644 inline {name}\ndata {len(data)}\n{content}\n")
    git("fast-import", "--quiet", stdin="".join(stream))
    git("checkout", "-q", "main")
    result = mine(folder)
    by_path = {f"src/{pair.key.replace('/', '_')}.py": pair for pair in pairs}
    exact = sum(
        1
        for mined in result.pairs
        if normalize_statement(mined.buggy) == normalize_statement(by_path[str(mined.extra["path"])].buggy)
        and normalize_statement(mined.fixed) == normalize_statement(by_path[str(mined.extra["path"])].fixed)
    )
    return {
        "history": "replayed from ../shared/data/pairs (constructed, not a real history)",
        "fix_commits": result.fix_commits,
        "commits_walked": result.commits,
        "elapsed_s": round(result.elapsed_s, 3),
        "commits_per_s": round(result.commits / result.elapsed_s, 1) if result.elapsed_s else None,
        "pairs_total": len(pairs),
        "pairs_recovered": len(result.pairs),
        "recovered_exactly": exact,
        "recall": round(exact / len(pairs), 4),
        "skipped": result.skipped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer suggestions and repeats")
    args = parser.parse_args()
    count, repeats = (150, 2) if args.quick else (600, 5)

    pairs = load_pair_files(sorted(SHARED.glob("*.jsonl")))
    catalogue = Catalogue()
    for pair in pairs:
        catalogue.add_pair(pair, "pair")
    cases = suggestions(count, pairs)
    catalogue.check(cases[0][1], cases[0][2])  # warm caches (regexes, imports)
    matcher = time_checks(catalogue, cases, repeats)
    baseline = linear_scan(pairs, cases)

    grown = Catalogue()
    for copy in range(100):
        for pair in pairs:
            grown.add_pair(
                BugFixPair(pair.prefix, pair.buggy, pair.fixed, pair.suffix, id=f"{pair.key}#{copy}"), "pair"
            )
    grown_timing = time_checks(grown, cases, 1)
    grown_baseline = linear_scan([p for p in pairs for _ in range(100)], cases)

    median = matcher["all_ms"]["p50"]  # type: ignore[index]
    results: dict[str, object] = {
        "matcher": {
            "catalogue": catalogue.counts(),
            "suggestions": len(cases),
            "repeats": repeats,
            **matcher,
            "goal_ms": GOAL_MS,
            "median_over_goal": round(median / GOAL_MS, 4),
            "baseline_linear_scan_ms": baseline,
            "match_rates": match_rates(catalogue, cases),
            "grown_100x": {
                "catalogue": grown.counts(),
                **grown_timing,
                "baseline_linear_scan_ms": grown_baseline,
            },
        },
        "store": store_latency(50 if args.quick else 200),
        "security_rules_on_sven": security_rules_on_sven(),
    }

    mining = {"real_histories": [mine_repo(path) for path in real_histories()]}
    with tempfile.TemporaryDirectory() as folder:
        mining["replay"] = replay(pairs, Path(folder))
    results["mining"] = mining
    results["quick"] = args.quick

    path = write_result("patterns", results)
    lookup = matcher["pair_lookup_only_ms"]["p50"]  # type: ignore[index]
    grown_lookup = grown_timing["pair_lookup_only_ms"]["p50"]  # type: ignore[index]
    print(
        f"matcher: median {median:.3f} ms, p95 {matcher['all_ms']['p95']:.3f} ms per suggestion, rules and pairs "
        f"({median / GOAL_MS:.2f}x the 1 ms goal)"
    )
    print(
        f"pair lookup alone: median {lookup * 1000:.1f} us against {baseline['p50'] * 1000:.1f} us for a linear scan; "
        f"with 100x the pairs {grown_lookup * 1000:.1f} us against {grown_baseline['p50'] * 1000:.1f} us"
    )
    print(f"store: record_suggestion median {results['store']['record_suggestion_ms']['p50']:.2f} ms")  # type: ignore[index]
    for cwe, row in results["security_rules_on_sven"].items():  # type: ignore[attr-defined]
        print(
            f"SVEN {cwe}: flags {row['vulnerable_flagged']}/{row['functions']} vulnerable functions, "
            f"{row['fixed_flagged']}/{row['functions']} of their fixed versions"
        )
    for repo in mining["real_histories"]:
        print(
            f"mining {repo['repo']}: {repo['commits_walked_with_python']} commits in {repo['elapsed_s']} s "
            f"({repo['commits_per_s']} commits/s), {repo['fix_commits']} fix commits, {repo['pairs']} pairs"
        )
    rep = mining["replay"]
    print(
        f"replayed shared pairs: {rep['commits_walked']} commits at {rep['commits_per_s']} commits/s, "
        f"recovered {rep['recovered_exactly']} of {rep['pairs_total']} fixes exactly"
    )
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

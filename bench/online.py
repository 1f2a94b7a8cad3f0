"""Online hotfixing benchmark (issue 14): a rejection takes effect on the next request, elsewhere nothing changes.

On the embedded model, served as the server serves it (llama.cpp by default): at ``--sites`` places in
real code (the standard library), the greedy suggestion is shown, then rejected (a suppression is
recorded in a fresh store, as the server does on ``hotfix.reject``), and the same place is asked
again. Measured: how often the rejected statement comes back (goal: never), how often another
suggestion takes its place, whether suggestions at ``--others`` unrelated places change while all
those suppressions exist (goal: the same text at >= 99 %), and what a suppression costs a request:
the store lookup on every request, and the decoding at a place with a ban against the same request
without one (goal: < 5 ms a request for the lookup; decoding costs what the next-best path costs).

    python bench/online.py [--model SPEC] [--runtime auto] [--sites 30] [--others 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import cursor_prompts, summary, write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded:gemma3-270m")
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--sites", type=int, default=30)
    parser.add_argument("--others", type=int, default=30)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()

    from hotfix_engine.completion import CompletionRequest
    from hotfix_engine.runtimes import load_engine
    from hotfix_engine.steering import Steer, first_statement
    from hotfix_engine.store import Store
    from hotfix_engine.suppressions import Suppressions

    engine = load_engine(args.model, args.runtime)
    sites = cursor_prompts(args.sites, seed=11)
    others = cursor_prompts(args.others, seed=12)

    def ask(prefix: str, suffix: str, steer: Steer | None = None) -> tuple[str | None, float]:
        request = CompletionRequest(
            prefix=prefix, suffix=suffix, max_new_tokens=args.max_new_tokens, steer=steer or Steer()
        )
        started = time.perf_counter()
        done = engine.complete(request)
        return (done.text if done else None), time.perf_counter() - started

    ask(*sites[0][1:])  # warm up
    baseline_others = [ask(prefix, suffix)[0] for _, prefix, suffix in others]

    store = Store.open(Path(tempfile.mkdtemp(prefix="hotfix-bench-online-")))
    suppressions = Suppressions(store)
    rejected, replaced, none_after, lookups = 0, 0, 0, []
    plain_s, steered_s = [], []
    for _, prefix, suffix in sites:
        first, _ = ask(prefix, suffix)
        if first is None or first_statement(first) is None:
            continue
        suppressions.add("", prefix, first, reason="dismissed")  # what the server does on hotfix.reject
        rejected += 1
        started = time.perf_counter()
        steer = suppressions.steer("", prefix, suffix)
        lookups.append(time.perf_counter() - started)
        again, took = ask(prefix, suffix, steer)
        _, plain = ask(prefix, suffix)
        steered_s.append(took)
        plain_s.append(plain)
        if again is None:
            none_after += 1
        elif first_statement(again) != first_statement(first):
            replaced += 1
    came_back = rejected - replaced - none_after

    unchanged, other_lookups = 0, []
    for (_, prefix, suffix), before in zip(others, baseline_others, strict=True):
        started = time.perf_counter()
        steer = suppressions.steer("", prefix, suffix)
        other_lookups.append(time.perf_counter() - started)
        after, _ = ask(prefix, suffix, steer)
        unchanged += after == before
    store.close()
    engine.close()

    results = {
        "model": args.model,
        "runtime": engine.runtime,
        "settings": vars(args),
        "rejected": rejected,
        "rejected_came_back": came_back,
        "goal_came_back_max": 0,
        "replaced_by_another_suggestion": replaced,
        "no_suggestion_after": none_after,
        "unrelated_sites": len(others),
        "unrelated_unchanged": unchanged,
        "unrelated_unchanged_share": round(unchanged / len(others), 3) if others else None,
        "goal_unchanged_share_min": 0.99,
        "suppressions_in_store": rejected,
        "lookup_ms": summary([1000 * s for s in lookups + other_lookups]),
        "goal_lookup_ms_max": 5,
        "request_s_at_banned_site": summary(steered_s),
        "request_s_same_site_unsteered": summary(plain_s),
        "banned_site_ratio": round(statistics.median(steered_s) / statistics.median(plain_s), 2),
        "effect": "next request (the suppression is read on every request; the LSP test checks it end to end)",
    }
    path = write_result("online", results)
    print(
        f"{rejected} rejected: {came_back} came back, {replaced} replaced, {none_after} left empty; "
        f"unrelated unchanged {unchanged}/{len(others)}; lookup p95 {results['lookup_ms']['p95']:.2f} ms; "
        f"banned site x{results['banned_site_ratio']} of unsteered"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

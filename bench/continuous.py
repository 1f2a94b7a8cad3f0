"""Continuous hotfixing benchmark (issue 7): feedback to a swapped adapter, and completion under training.

On the embedded model: 20 bug-fix pairs from ../shared/data/pairs/ are written to a fresh store as the
user's edit pairs (the last one is "the last needed feedback event"); the real ``hotfix daemon`` picks
them up and trains in its own low-priority process; this process plays the server: it completes code
the whole time (so completion latency while training is measured against the same prompts before),
and when the daemon publishes it hot-swaps the new version into its engine and times the swap and the
first completion served by it. While the daemon works, this process asks for a completion, then pauses
``--pause`` seconds (a user reading the suggestion and typing on); ``--pause 0`` asks back to back,
which starves the low-priority trainer and measures the worst case instead.

The daemon's runs get ``--force``: the gate's verdict is recorded in the result, but the version is
published either way so the swap can be timed.

    python bench/continuous.py [--model SPEC] [--pairs 20] [--quick]
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

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pairs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded:gemma3-270m")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--pause", type=float, default=2.0, help="seconds between completions while the daemon works"
    )
    parser.add_argument("--quick", action="store_true", help="8 pairs")
    args = parser.parse_args()
    if args.quick:
        args.pairs = 8

    from hotfix_engine.adapters import AdapterRegistry
    from hotfix_engine.completion import CompletionEngine, CompletionRequest
    from hotfix_engine.models import load_model
    from hotfix_engine.pairs import load_pair_files, split_pairs
    from hotfix_engine.store import Store
    from hotfix_engine.trainer_status import read_status

    pairs = split_pairs(load_pair_files(sorted(SHARED.glob("*.jsonl"))), seed=0)["train"][: args.pairs]
    loaded = load_model(args.model)
    engine = CompletionEngine(loaded)
    prompts = [prefix for _name, prefix, _suffix in cursor_prompts(6, seed=3)]

    def complete_round(chosen: list[str]) -> list[float]:
        times = []
        for prefix in chosen:
            engine._cache = None
            started = time.perf_counter()
            engine.complete(CompletionRequest(prefix=prefix, max_new_tokens=16))
            times.append(time.perf_counter() - started)
        return times

    idle = complete_round(prompts) + complete_round(prompts)

    data = Path(tempfile.mkdtemp(prefix="hotfix-bench-continuous-"))
    registry = AdapterRegistry(data, loaded.key)
    env = dict(os.environ, HOTFIX_TRAIN_ARGS="--force", HOTFIX_HOME=str(data))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "hotfix_engine", "daemon", "--model", args.model, "--data-dir", str(data)]
        + [
            "--min-records",
            "1",
            "--idle",
            "2",
            "--min-interval",
            "0",
            "--log-file",
            str(data / "daemon.log"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)  # the daemon is watching
        store = Store.open(data)
        store.add_pairs(pairs, origin="edit")
        store.close()
        last_feedback = time.monotonic()
        busy: list[float] = []
        states: set[str] = set()
        while registry.current() is None:
            if time.monotonic() - last_feedback > args.timeout:
                raise SystemExit(f"no version published within {args.timeout} s; see {data}/logs")
            state = read_status(data)["state"]
            states.add(state)
            if state in ("training", "evaluating"):
                busy.extend(complete_round([prompts[len(busy) % len(prompts)]]))
                time.sleep(args.pause)
            else:
                time.sleep(0.5)
        published = time.monotonic()
        version = registry.current()
        assert version is not None
        swap_started = time.perf_counter()
        engine.swap_adapter(version.path, version.version).result()
        swap_s = time.perf_counter() - swap_started
        result = engine.complete(CompletionRequest(prefix=prompts[0], max_new_tokens=16))
        serving = time.monotonic()
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        engine.close()

    manifest = version.manifest
    ratio = statistics.median(busy) / statistics.median(idle) if busy else float("nan")
    results = {
        "model": args.model,
        "settings": vars(args),
        "pairs": len(pairs),
        "feedback_to_serving_s": round(serving - last_feedback, 1),
        "feedback_to_published_s": round(published - last_feedback, 1),
        "goal_feedback_to_serving_s_max": 180,
        "swap_s": round(swap_s, 3),
        "goal_swap_s_max": 1.0,
        "completion_idle_s": summary(idle),
        "completion_while_training_s": summary(busy) if busy else None,
        "latency_ratio_while_training": round(ratio, 2),
        "goal_latency_ratio_max": 1.5,
        "served_by": result.adapter if result else version.version,
        "gate": manifest.get("gate"),
        "time_s": manifest.get("time_s"),
        "states_seen": sorted(states),
    }
    # A user who stops typing (the daemon's idle policy) is the other case worth its own file.
    path = write_result("continuous" if args.pause < 10 else "continuous-idle-user", results)
    print(
        f"{len(pairs)} pairs: feedback -> serving {results['feedback_to_serving_s']} s "
        f"(train {manifest.get('time_s', {}).get('train')} s); swap {swap_s:.2f} s; "
        f"completion while training x{ratio:.2f} of idle"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

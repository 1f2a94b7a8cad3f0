"""kill -9 matrix, many rounds (issue 18): the trials of tests/test_kill_matrix.py repeated, plus a store
writer killed at a random acknowledged event.

Each round kills `hotfix train` at every kill point (training, staged, renamed, before marking), the
daemon mid-run, and the server after a random number of acknowledged typed acceptances with a
random number still in flight; and it kills a process writing suggestions and outcomes after a
random number of acknowledged events. Every trial then checks ``PRAGMA integrity_check``, counts the
acknowledged records lost, and loads ``current``. Runs on the tiny test model, on CPU.

    python bench/kill_matrix.py [--rounds 5] [--writer-trials 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import write_result  # noqa: E402

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from hotfix_engine.store import Store
    from hotfix_engine.store_records import OutcomeRecord, SuggestionRecord

    store = Store.open(Path(sys.argv[1]), record="all")
    for i in range(100000):
        store.record_suggestion(SuggestionRecord(f"s{i}", time.time(), "python", "u", "p", "", "x = 1", "m", None))
        store.record_outcome(OutcomeRecord(f"s{i}", "accepted", "typed"))
        print(i, flush=True)  # acknowledged: both writes have committed
    """
)


def writer_trial(home: Path, rng: random.Random) -> dict[str, Any]:
    from test_kill_matrix import child_env, integrity

    stop_after = rng.randint(1, 200)
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(home)], stdout=subprocess.PIPE, text=True, env=child_env()
    )
    assert child.stdout is not None
    acked = -1
    try:
        while acked + 1 < stop_after:
            acked = int(child.stdout.readline())
        os.kill(child.pid, signal.SIGKILL)  # while it writes the next event
    finally:
        child.wait(timeout=30)
    from hotfix_engine.store import Store

    with Store.open(home) as store:  # and a kill is no damage: the WAL check must stay quiet
        kept = {row["suggestion_id"] for row in store.query("SELECT suggestion_id FROM outcomes")}
        wal_loss = store.wal_loss
    lost = sum(f"s{i}" not in kept for i in range(acked + 1))
    return {
        "acknowledged": acked + 1,
        "acknowledged_lost": lost,
        "integrity": integrity(home),
        "wal_loss": wal_loss,
    }


def printable_model(folder: Path) -> Path:
    from tiny_model import save_tiny_model, silence_unprintable
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tiny = save_tiny_model(folder / "tiny")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny), AutoTokenizer.from_pretrained(tiny)
    silence_unprintable(model, tokenizer)
    model.save_pretrained(folder / "printable")
    tokenizer.save_pretrained(folder / "printable")
    return folder / "printable"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writer-trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one round, 5 writer trials")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.writer_trials = 1, 5
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    from test_kill_matrix import KILL_POINTS, daemon_trial, server_trial, trainer_trial

    rng = random.Random(args.seed)
    trials: dict[str, list[dict[str, Any]]] = {"trainer": [], "daemon": [], "server": [], "writer": []}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hotfix-kill-") as scratch:
        root = Path(scratch)
        model = printable_model(root / "model")
        tiny = root / "model" / "tiny"
        for round_ in range(args.rounds):
            for point in KILL_POINTS:
                trials["trainer"].append(trainer_trial(point, tiny, root / f"train-{round_}-{point}"))
            trials["daemon"].append(daemon_trial(tiny, root / f"daemon-{round_}"))
            acknowledged, in_flight = rng.randint(1, 4), rng.randint(1, 3)
            home = root / f"server-{round_}"
            home.mkdir()
            trials["server"].append(asyncio.run(server_trial(model, home, acknowledged, in_flight)))
            print(f"round {round_ + 1}/{args.rounds} done ({time.monotonic() - started:.0f} s)", flush=True)
        for n in range(args.writer_trials):
            home = root / f"writer-{n}"
            home.mkdir()
            trials["writer"].append(writer_trial(home, rng))
    every = [t for group in trials.values() for t in group]
    summary = {
        "trials": len(every),
        "integrity_failures": sum(
            t.get("integrity", "ok") != "ok" or t.get("integrity_after_rerun", "ok") != "ok" for t in every
        ),
        "acknowledged_lost": sum(t.get("acknowledged_lost", 0) for t in every),
        "acknowledged": sum(t.get("acknowledged", 0) for t in every),
        "server_in_flight_kept": f"{sum(t['in_flight_kept'] for t in trials['server'])}/"
        f"{sum(t['in_flight'] for t in trials['server'])}",
        "trainer_retrained_after_mark": sum(
            t["retrained"] for t in trials["trainer"] if t["point"] == "mark"
        ),
        "trainer_records_left": sum(t["records_left"] for t in trials["trainer"]),
        "daemon_current": sorted({str(t["current"]) for t in trials["daemon"]}),
        "writer_wal_reports": [t["wal_loss"] for t in trials["writer"] if t["wal_loss"]],
        "seconds": round(time.monotonic() - started),
    }
    print(summary)
    write_result("kill-matrix", {"summary": summary, "trials": trials, "args": vars(args)})


if __name__ == "__main__":
    main()

"""A team on one PostgreSQL store (issue 17): 20 simulated users record while a trainer reads.

Each user is a process with its own connection, as a server on a teammate's machine is: it records
suggestions cut from real code (the standard library), redacted on its side, and what became of
them (rejected buggy code, accepted lines, edits into fixes), as fast as the store takes them, for
``--events`` each or ``--seconds``, whichever ends first. Meanwhile the trainer reads the team's
training records over and over. Reported: records written per second (suggestions and outcomes),
each write's latency, the trainer's reads, and the check that every acknowledged record is there
exactly once. A throw-away cluster (tests/pg_cluster.py) on loopback, durable (fsync on).

    python bench/team_store.py [--users 20] [--events 200] [--seconds 60] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import cursor_prompts, summary, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def writer(url: str, user: str, events: int, seconds: float, seed: int) -> None:
    """One user's server: wait for the start, record, report what was acknowledged (one JSON line)."""
    from hotfix_engine.patterns import Catalogue
    from hotfix_engine.store import Store
    from hotfix_engine.store_records import OutcomeRecord, SuggestionRecord

    catalogue = Catalogue()
    prompts = cursor_prompts(min(events, 50), seed=seed)
    expected: list[str] = []
    latencies: list[float] = []
    with Store.open(Path("unused"), record="all", url=url) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        deadline = time.monotonic() + seconds
        for i in range(events):
            if time.monotonic() > deadline:
                break
            name, prefix, suffix = prompts[i % len(prompts)]
            sid = f"{user}-{i}"
            kind = i % 3
            text = "if x == None:\n        return {}" if kind == 0 else "result = compute(value)"
            rec = SuggestionRecord(
                sid, time.time(), "python", f"file:///{user}/{name}", prefix, suffix, text, "bench", None,
                tuple(catalogue.check(prefix, text)),
            )  # fmt: skip
            outcomes = (
                [OutcomeRecord(sid, "rejected", "dismissed")]
                if kind == 0
                else [OutcomeRecord(sid, "accepted", "typed")]
                + (
                    [OutcomeRecord(sid, "edited", "edited", final_text="result = compute(values)")]
                    if kind == 2
                    else []
                )
            )
            start = time.perf_counter()
            store.record_suggestion(rec)
            latencies.append((time.perf_counter() - start) * 1000)
            for outcome in outcomes:
                start = time.perf_counter()
                store.record_outcome(outcome)
                latencies.append((time.perf_counter() - start) * 1000)
            expected.append(sid)
    print(json.dumps({"user": user, "suggestions": expected, "latencies_ms": latencies}), flush=True)


def run(users: int, events: int, seconds: float) -> dict[str, Any]:
    import pg_cluster

    from hotfix_engine.store import Store

    cluster = pg_cluster.Cluster(durable=True).start()
    try:
        url = cluster.new_database_url()
        Store.open(Path("unused"), url=url).close()  # migrated once, before the clock starts
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--writer",
                    url,
                    f"user{k:02d}",
                    str(events),
                    str(seconds),
                    str(k),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO), "HOTFIX_USER": f"user{k:02d}"},
            )
            for k in range(users)
        ]
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        read_ms: list[float] = []
        duplicated = 0
        with Store.open(Path("unused"), url=url, scope="team") as trainer:
            started = time.perf_counter()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            while any(proc.poll() is None for proc in procs) or not read_ms:
                start = time.perf_counter()
                records = trainer.training_records()
                read_ms.append((time.perf_counter() - start) * 1000)
                ids = [p.record_id for p in records.pairs] + [t.record_id for t in records.unlearn_only]
                ids += [t.record_id for t in records.retain]
                duplicated = max(duplicated, len(ids) - len(set(ids)))
            reports = [
                json.loads(proc.communicate(timeout=600)[0].strip().splitlines()[-1]) for proc in procs
            ]
            elapsed = time.perf_counter() - started
            counts = trainer.counts()
            final = trainer.training_records()
        acknowledged = [sid for report in reports for sid in report["suggestions"]]
        latencies = [ms for report in reports for ms in report["latencies_ms"]]
        found = {p.record_id for p in final.pairs} | {t.record_id for t in final.retain}
        found |= {t.record_id for t in final.unlearn_only}
        expected = {
            (f"pair:edit-{sid}" if int(sid.rsplit("-", 1)[1]) % 3 == 2 else f"suggestion:{sid}")
            for sid in acknowledged
        }
        lost = len(expected - found) + (len(acknowledged) - counts["suggestions"])
        return {
            "users": users,
            "events_per_user_max": events,
            "seconds_max": seconds,
            "elapsed_s": round(elapsed, 2),
            "suggestions": counts["suggestions"],
            "outcomes": counts["outcomes"],
            "records_per_s": round((counts["suggestions"] + counts["outcomes"]) / elapsed, 1),
            "write_ms": summary(latencies),
            "trainer_reads": len(read_ms),
            "trainer_read_ms": summary(read_ms),
            "lost": lost,
            "duplicated_in_a_read": duplicated,
            "durable": True,
        }
    finally:
        cluster.stop()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        url, user, events, seconds, seed = sys.argv[2:7]
        writer(url, user, int(events), float(seconds), int(seed))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--events", type=int, default=200, help="suggestions each user records at most")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each user records at most")
    parser.add_argument("--quick", action="store_true", help="20 users, 15 events each, 20 s at most")
    args = parser.parse_args()
    if args.quick:
        args.events, args.seconds = 15, 20.0
    import pg_cluster

    try:
        pg_cluster.check()
    except pg_cluster.Unavailable as exc:
        print(f"team-store: skipped: {exc}", file=sys.stderr)
        return 0
    result = run(args.users, args.events, args.seconds)
    result["quick"] = bool(args.quick)
    path = write_result("team-store", result)
    print(json.dumps(result, indent=2))
    print(f"written to {path}", file=sys.stderr)
    return 1 if result["lost"] or result["duplicated_in_a_read"] else 0


if __name__ == "__main__":
    raise SystemExit(main())

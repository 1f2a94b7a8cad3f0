"""The LSP fuzzer at a small size against the real server over stdio (bench/fuzz.py runs 10,000).

Seeded mutations of valid messages (wrong types, missing fields, huge positions, unknown methods and
documents, bad JSON and headers, lone surrogates, duplicate ids, notifications with ids...). Before
issue 18's fixes, 2,000 of them gave 73 internal errors (-32603), an absurd Content-Length killed the
server and a framing error lost every message after it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import fuzz  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MESSAGES = 300


async def test_mutated_messages_get_no_internal_error_crash_or_hang(
    printable_model: Path, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"  # the server's stderr, for a failure's tracebacks
    wire = await fuzz.start_session(fuzz.server_env(tmp_path), str(printable_model), log)
    try:
        result = await fuzz.fuzz(wire, MESSAGES, seed=0)
        assert not result["crashed"], log.read_text()[-3000:]
        assert result["internal_errors"] == 0, result["internal_error_classes"]
        assert result["hangs"] == 0, result["hang_examples"]
        assert result["stray_stdout_lines"] == 0
        assert set(result["kinds"]) >= {
            "bad_header",
            "bad_json",
            "surrogate",
            "position",
            "notification_with_id",
        }
        answer = await fuzz.final_completion(wire)
        assert answer is not None and answer["result"]["items"], answer
    finally:
        assert await wire.close() == 0

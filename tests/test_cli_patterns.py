"""`hotfix patterns`, `hotfix data` and `hotfix mine` through the real command line entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hotfix_engine.cli import main
from hotfix_engine.pairs import BugFixPair, load_pairs
from hotfix_engine.store import Store

SAMPLE = """import sqlite3
import yaml


def load(path, cache={}):
    if path == None:
        return None
    try:
        conf = yaml.load(open(path))
    except:
        conf = {}
    db = sqlite3.connect("app.db")
    db.execute(f"SELECT * FROM settings WHERE name = '{path}'")
    return conf
"""


def test_patterns_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["patterns", "list"]) == 0
    out = capsys.readouterr().out
    assert "none-comparison" in out and "hardcoded-secret" in out
    assert "22 rules; 0 known pairs" in out
    assert main(["patterns", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["rules"]) >= 15 and {"id", "description", "fix"} <= set(data["rules"][0])


def test_patterns_list_counts_pair_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(json.dumps({"prefix": "", "buggy": "a < b", "fixed": "a <= b"}) + "\n")
    assert main(["patterns", "list", "--pairs", str(pairs)]) == 0
    assert "1 known pairs from files" in capsys.readouterr().out


def test_patterns_scan_reports_lines_ids_and_fixes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sample.py"
    path.write_text(SAMPLE)
    assert main(["patterns", "scan", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"{path}:5:22: mutable-default" in out[0]
    assert out[1] == "    fix: def load(path, cache=None):"
    assert out[2].startswith(f"{path}:6:8: none-comparison") and out[3] == "    fix: if path is None:"
    assert (
        f"{path}:9:16: yaml-unsafe-load" in out[4] and out[5] == "    fix: conf = yaml.safe_load(open(path))"
    )
    assert f"{path}:10:5: bare-except" in out[6] and out[7] == "    fix: except Exception:"
    assert out[9] == '    fix: db.execute("SELECT * FROM settings WHERE name = ?", (path,))'
    assert main(["patterns", "scan", "--fail-on-findings", str(path)]) == 1


def test_patterns_scan_json_and_a_clean_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "clean.py"
    path.write_text("def f(x):\n    return x is None\n")
    assert main(["patterns", "scan", "--json", "--fail-on-findings", str(path)]) == 0
    assert capsys.readouterr().out == ""
    path.write_text("if x == None:\n    pass\n")
    assert main(["patterns", "scan", "--json", str(path)]) == 0
    finding = json.loads(capsys.readouterr().out)
    assert (finding["line"], finding["pattern_id"], finding["fix"]) == (1, "none-comparison", "if x is None:")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"\x00\x01binary", "a binary file"),
        ("caf\xe9 = 1\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_patterns_scan_bad_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    path = tmp_path / "bad.py"
    if content is not None:
        path.write_bytes(content)
    assert main(["patterns", "scan", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hotfix: error: ") and message in err and "Traceback" not in err


def test_patterns_scan_walks_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("if x == None:\n    pass\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "b.py").write_text("if y == None:\n    pass\n")
    (tmp_path / "notes.txt").write_text("x == None")
    assert main(["patterns", "scan", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith(f"{tmp_path / 'pkg' / 'a.py'}:1:4: none-comparison")
    assert "1 finding in 1 file(s)" in captured.err


def test_patterns_scan_survives_syntax_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def broken(:\n    pass\n\nif ready == True:\n    go()\n")
    assert main(["patterns", "scan", str(path)]) == 0
    assert f"{path}:4:4: bool-comparison" in capsys.readouterr().out


def test_data_export_and_purge(
    isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(isolated_home) as store:
        store.add_pairs([BugFixPair(prefix="", buggy="a < b", fixed="a <= b", id="one")], origin="mined")
    out = tmp_path / "export.jsonl"
    assert main(["data", "export", "--out", str(out)]) == 0
    assert [p.id for p in load_pairs(out)] == ["one"]
    assert main(["data", "export"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "one"
    # Tests do not run on a terminal: without --yes nothing is deleted.
    assert main(["data", "purge"]) == 1
    assert "pass --yes" in capsys.readouterr().err
    assert main(["data", "purge", "--yes"]) == 0
    assert "purged 0 suggestions, 0 outcomes and 1 pairs" in capsys.readouterr().err
    with Store.open(isolated_home) as store:
        assert store.counts()["pairs"] == 0


def test_data_commands_on_a_missing_or_corrupt_store(
    isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "export"]) == 1
    assert "no store at" in capsys.readouterr().err
    assert main(["data", "purge", "--yes"]) == 0
    isolated_home.mkdir(parents=True)
    (isolated_home / "store.sqlite3").write_bytes(b"not a database" * 300)
    assert main(["data", "export"]) == 1
    assert "corrupt" in capsys.readouterr().err
    assert main(["data", "purge", "--yes"]) == 0
    assert not (isolated_home / "store.sqlite3").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")
def test_mine_to_a_file_and_to_the_store(
    isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    ident = ["-c", "user.name=T", "-c", "user.email=t@example.org"]

    def commit(text: str, message: str) -> None:
        (repo / "m.py").write_text(text)
        subprocess.run(["git", *ident, "add", "-A"], cwd=repo, env=env, check=True)
        subprocess.run(["git", *ident, "commit", "-q", "-m", message], cwd=repo, env=env, check=True)

    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)
    commit("def f(a, b):\n    return a - b\n", "start")
    commit("def f(a, b):\n    return a + b\n", "Fix the sign bug in f")
    out = tmp_path / "mined.jsonl"
    assert main(["mine", str(repo), "--out", str(out)]) == 0
    (pair,) = load_pairs(out)
    assert (pair.buggy, pair.fixed, pair.pattern) == (
        "    return a - b",
        "    return a + b",
        "change_operator",
    )
    assert "1 pairs from 1 fix commits of 2 walked" in capsys.readouterr().err

    assert main(["mine", str(repo)]) == 0
    with Store.open(isolated_home) as store:
        assert [p.origin for p in store.pairs()] == ["mined"]
    commit("def f(a, b):\n    return a + b + 0\n", "Fix again")
    assert main(["mine", str(repo), "--since-last"]) == 0
    assert "of 1 walked" in capsys.readouterr().err.splitlines()[-1]


def test_mine_rejects_a_folder_that_is_not_a_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ["GIT_CEILING_DIRECTORIES"] = str(tmp_path)
    try:
        assert main(["mine", str(tmp_path)]) == 1
    finally:
        del os.environ["GIT_CEILING_DIRECTORIES"]
    assert "is not a git repository" in capsys.readouterr().err

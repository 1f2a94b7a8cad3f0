"""Mining single-statement fixes from a git history the test builds itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hotfix_engine.errors import DataError
from hotfix_engine.mining import extract_pair, last_mined, mine, remember

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")

BASE = '''"""Small numeric helpers."""


def pascal(n):
    rows = [[1]]
    for r in range(1, n):
        row = []
        for c in range(0, r):
            upleft = rows[r - 1][c - 1] if c > 0 else 0
            upright = rows[r - 1][c] if c < r else 0
            row.append(upleft + upright)
        rows.append(row)
    return rows


def clamp(value, low, high):
    # keep value inside the range
    if value < low:
        return low
    return min(value, high)


def find(items, target):
    for index, item in enumerate(items):
        if item == target:
            return index
    return -1
'''


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.env = {
            **os.environ,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.org",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.org",
        }
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.path, env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def commit(self, message: str, files: dict[str, str | bytes]) -> str:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "project")
    repo.commit(
        "Initial version",
        {"mathutil.py": BASE, "blob.py": b"x = 1\n\x00\x01", "latin.py": "s = 'caf\xe9'\n".encode("latin-1")},
    )
    return repo


def test_mines_single_statement_fixes_and_skips_the_rest(repo: Repo) -> None:
    fixed_pascal = BASE.replace("for c in range(0, r):", "for c in range(0, r + 1):")
    sha = repo.commit("Fix off-by-one in pascal rows", {"mathutil.py": fixed_pascal})
    repo.commit("Add a helper", {"mathutil.py": fixed_pascal + "\n\ndef double(x):\n    return x * 3\n"})
    v3 = fixed_pascal + "\n\ndef double(x):\n    return x * 2\n"
    repo.commit("Correct the double helper", {"mathutil.py": v3})
    v4 = v3.replace("# keep value inside the range", "# keep the value inside [low, high]")
    repo.commit("fix typo in comment", {"mathutil.py": v4})
    v5 = v4.replace("if value < low:", "if value <= low:").replace("return -1", "return None")
    repo.commit("Fix two bugs at once", {"mathutil.py": v5})
    repo.commit(
        "fix binary and latin-1 files",
        {"blob.py": b"x = 2\n\x00\x02", "latin.py": "s = 'cafe\xe9'\n".encode("latin-1")},
    )
    repo.commit(
        "fix: break the syntax",
        {"mathutil.py": v5.replace("def find(items, target):", "def find(items, target)")},
    )
    repo.commit("fix: restore the syntax", {"mathutil.py": v5})

    result = mine(repo.path)
    assert result.commits == 9
    assert result.fix_commits == 7
    assert [(p.buggy, p.fixed, p.pattern) for p in result.pairs] == [
        ("    return x * 3", "    return x * 2", "change_numeric_literal"),
        ("        for c in range(0, r):", "        for c in range(0, r + 1):", "extend_expression"),
    ]
    pascal = result.pairs[1]
    assert pascal.prefix.startswith("def pascal(n):\n") and pascal.prefix.endswith("        row = []\n")
    assert pascal.suffix.startswith("            upleft = ")
    assert pascal.id == f"project@{sha[:10]}:mathutil.py:8"
    assert pascal.source == "mined:project"
    assert pascal.extra["message"] == "Fix off-by-one in pascal rows"
    # The comment edit and the two-bug commit change no single statement.
    assert result.skipped == {
        "not-single-statement": 2,
        "binary-or-not-utf8": 2,
        "syntax-error": 2,
    }


def test_incremental_runs_only_see_new_commits(repo: Repo, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    clamped = BASE.replace("return min(value, high)", "return min(value, high, 10)")
    repo.commit("Fix clamp", {"mathutil.py": clamped})
    first = mine(repo.path, since=last_mined(repo.path, state))
    assert len(first.pairs) == 1
    remember(repo.path, state, first)
    assert mine(repo.path, since=last_mined(repo.path, state)).commits == 0
    repo.commit("Fix find", {"mathutil.py": clamped.replace("if item == target:", "if item is target:")})
    second = mine(repo.path, since=last_mined(repo.path, state))
    assert (second.commits, [p.pattern for p in second.pairs]) == (1, ["change_operator"])


def test_rewritten_history_falls_back_to_a_full_run(repo: Repo, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    repo.commit("Fix clamp", {"mathutil.py": BASE.replace("if value < low:", "if value <= low:")})
    remember(repo.path, state, mine(repo.path))
    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.commit("Other work", {"other.py": "y = 1\n"})
    assert last_mined(repo.path, state) is None


def test_not_a_repository_and_missing_folder(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    env_ceiling = os.environ.get("GIT_CEILING_DIRECTORIES")
    os.environ["GIT_CEILING_DIRECTORIES"] = str(tmp_path)
    try:
        with pytest.raises(DataError, match="is not a git repository"):
            mine(plain)
    finally:
        if env_ceiling is None:
            del os.environ["GIT_CEILING_DIRECTORIES"]
        else:
            os.environ["GIT_CEILING_DIRECTORIES"] = env_ceiling
    with pytest.raises(DataError, match="no such folder"):
        mine(tmp_path / "missing")


def test_empty_repository_yields_nothing(tmp_path: Path) -> None:
    empty = Repo(tmp_path / "empty")
    result = mine(empty.path)
    assert (result.commits, result.pairs, result.head) == (0, [], None)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Python 2 elsewhere in the file: the one changed line still parses alone.
        ('print "x"\nif a < b:\n    go()\n', 'print "x"\nif a <= b:\n    go()\n', "if a < b:"),
        ('print "x"\ny = f(a\n', 'print "x"\ny = f(b\n', "syntax-error"),
        ("a = 1\nb = 2\n", "a = 1\nb = 2\nc = 3\n", "not-a-replacement"),
        ("x = f(a,b)\n", "x = f(a, b)  # spaced\n", "layout-only"),
        # ``else:`` is part of its ``if``, not a statement of its own.
        (
            "if x:\n    y = 1\nelse:\n    y = 2\n",
            "if x:\n    y = 1\nelif z:\n    y = 2\n",
            "not-single-statement",
        ),
        ("f(a,\n  b)\n", "f(a,\n  c)\n", "f(a,\n  b)"),
    ],
)
def test_extract_pair(old: str, new: str, expected: str) -> None:
    found = extract_pair(old, new)
    assert (found[0].buggy if not isinstance(found, str) else found) == expected

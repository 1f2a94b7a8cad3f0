"""Single-statement bug fixes mined from a git history, as bug-fix pairs.

A commit qualifies when its message says it fixes something (the SStuB keyword list: fix, bug,
error, issue, mistake, incorrect, fault, defect, flaw, and a few more) and it changes few Python
files; a file counts when the change replaces exactly one statement (one simple statement, or the
header of one compound statement) and is more than a change of layout or comments. The pattern is
classified (:func:`~hotfix_engine.patterns.classify_pair`) and the code around it kept as context.

History is read with the ``git`` executable itself: one ``git log --raw`` for the walk and one
``git cat-file --batch`` for the file contents, so a large history costs two processes, not two
per commit. Python is parsed with the standard ``ast``. Runs can be incremental: a state file
remembers the last commit mined in each repository.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hotfix_engine.errors import DataError
from hotfix_engine.pairs import BugFixPair
from hotfix_engine.patterns.classify import classify_pair
from hotfix_engine.patterns.fragments import parse_module, parse_statement

log = logging.getLogger(__name__)

FIX_MESSAGE = re.compile(
    r"(?i)\b(?:fix(?:e[sd]|ing)?|bug(?:s|fix(?:es)?)?|hotfix|errors?|issues?|mistakes?|incorrect(?:ly)?|faults?|"
    r"defects?|flaws?|(?:in)?correct(?:s|ed|ion|ly)?|wrong|broken|crash(?:es|ed)?|typos?|regressions?)\b"
)
# Commits touching more Python files than this are refactorings or features, not fixes.
MAX_FILES_PER_COMMIT = 6
# A "single statement" longer than this is a block rewrite in disguise.
MAX_STATEMENT_LINES = 6
# Lines of code kept before (at most, back to the enclosing function) and after the statement.
PREFIX_LINES = 40
SUFFIX_LINES = 10
_ZERO = "0" * 40


@dataclass(frozen=True)
class MiningResult:
    """The pairs found, what was walked, and why files were passed over (reason -> count)."""

    pairs: list[BugFixPair]
    commits: int
    fix_commits: int
    head: str | None
    elapsed_s: float
    skipped: dict[str, int] = field(default_factory=dict)


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            check=check,
        )
    except FileNotFoundError:
        raise DataError("mining needs the git executable, and it is not on PATH") from None
    except subprocess.CalledProcessError as exc:
        raise DataError(f"git {' '.join(args)} failed in {repo}: {exc.stderr.strip() or exc}") from None


def repository_root(path: Path) -> Path:
    """The top folder of the git repository at ``path``; DataError when it is not one."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: no such folder")
    result = _git(path, "rev-parse", "--show-toplevel", check=False)
    if result.returncode != 0:
        raise DataError(f"{path} is not a git repository")
    return Path(result.stdout.strip())


def _head(repo: Path) -> str | None:
    result = _git(repo, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    return result.stdout.strip() or None


@dataclass(frozen=True)
class _Change:
    old: str
    new: str
    path: str


@dataclass(frozen=True)
class _Commit:
    sha: str
    subject: str
    body: str
    changes: list[_Change]


def _commits(repo: Path, revisions: str) -> Iterator[_Commit]:
    """Non-merge commits of ``revisions`` that touch Python files, with their modified .py blobs."""
    command = [
        "git", "-C", str(repo), "-c", "core.quotePath=false", "log", "--no-merges", "--no-renames",
        "--raw", "--no-abbrev", "--format=%x1e%H%x1f%s%x1f%b%x1f", revisions, "--", "*.py",
    ]  # fmt: skip
    # stderr goes to a file: an undrained pipe could block git while we read its stdout.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, text=True, encoding="utf-8", errors="replace"
        )
        assert process.stdout is not None
        buffer = ""
        try:
            for chunk in iter(lambda: process.stdout.read(1 << 16), ""):  # type: ignore[union-attr]
                buffer += chunk
                records = buffer.split("\x1e")
                buffer = records.pop()
                for record in records:
                    if record.strip():
                        yield _parse_record(record)
            if buffer.strip():
                yield _parse_record(buffer)
        finally:
            process.stdout.close()
            returncode = process.wait()
            errors.seek(0)
            stderr = errors.read().decode("utf-8", errors="replace").strip()
        if returncode != 0 and stderr:
            raise DataError(f"git log failed in {repo}: {stderr}")


def _parse_record(record: str) -> _Commit:
    sha, subject, body, raw = record.split("\x1f", 3)
    changes = []
    for line in raw.splitlines():
        # :100644 100644 <old> <new> M<TAB>path
        if not line.startswith(":") or "\t" not in line:
            continue
        meta, path = line.split("\t", 1)
        fields = meta.split()
        if len(fields) >= 5 and fields[4] == "M" and path.endswith(".py"):
            changes.append(_Change(fields[2], fields[3], path))
    return _Commit(sha.strip(), subject, body, changes)


class _Blobs:
    """File contents through one long-running ``git cat-file --batch``."""

    def __init__(self, repo: Path) -> None:
        self._process = subprocess.Popen(
            ["git", "-C", str(repo), "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def get(self, sha: str) -> bytes | None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(sha.encode() + b"\n")
        self._process.stdin.flush()
        header = self._process.stdout.readline().split()
        if len(header) < 3 or header[1] != b"blob":
            return None
        data = self._process.stdout.read(int(header[2]) + 1)
        return data[:-1]

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()


_BLOCKS = {"body", "orelse", "finalbody", "handlers", "cases", "decorator_list"}


def _own_span(node: ast.stmt) -> tuple[int, int]:
    """The lines (1-based, inclusive) a statement occupies by itself: a compound statement's
    header (up to the end of its test, target, arguments...), never the comments before its body."""
    if not isinstance(getattr(node, "body", None), list):
        return node.lineno, node.end_lineno or node.lineno
    end = node.lineno
    for name, value in ast.iter_fields(node):
        if name in _BLOCKS:
            continue
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, ast.AST):
                end = max(end, getattr(child, "end_lineno", None) or end)
    return node.lineno, end


def _statement_at(tree: ast.Module, first: int, last: int) -> tuple[int, int, list[ast.stmt]] | None:
    """The smallest statement whose own span covers lines ``first..last``, and the enclosing ones."""
    best: tuple[int, int, list[ast.stmt]] | None = None

    def visit(nodes: list[ast.stmt], parents: list[ast.stmt]) -> None:
        nonlocal best
        for node in nodes:
            start, end = _own_span(node)
            if start <= first and last <= end and (best is None or end - start < best[1] - best[0]):
                best = (start, end, parents)
            for name in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, name, None)
                if isinstance(children, list):
                    inner = [c for c in children if isinstance(c, ast.stmt)]
                    inner += [s for h in children if isinstance(h, ast.ExceptHandler) for s in h.body]
                    visit(inner, [*parents, node])

    visit(tree.body, [])
    return best


def _single_statement(old: str, new: str) -> tuple[int, int, int, int, list[ast.stmt]] | str:
    """(old start, old end, new start, new end, enclosing statements) or the reason it is not one."""
    a, b = old.split("\n"), new.split("\n")
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    first_a, last_a = head + 1, len(a) - tail
    first_b, last_b = head + 1, len(b) - tail
    if last_a < first_a or last_b < first_b:
        return "not-a-replacement"
    if last_a - first_a >= MAX_STATEMENT_LINES or last_b - first_b >= MAX_STATEMENT_LINES:
        return "not-single-statement"
    tree_a, tree_b = parse_module(old), parse_module(new)
    if tree_a is None or tree_b is None:
        # Files that do not parse (Python 2, a broken revision) still yield a one-line change
        # whose two lines each parse as a statement on their own.
        one_line = first_a == last_a and first_b == last_b
        if one_line and parse_statement(a[first_a - 1]) and parse_statement(b[first_b - 1]):
            return first_a, last_a, first_b, last_b, []
        return "syntax-error"
    span_a, span_b = _statement_at(tree_a, first_a, last_a), _statement_at(tree_b, first_b, last_b)
    if span_a is None or span_b is None:
        return "not-single-statement"
    # The statement must begin and end at corresponding lines: nothing else around it changed.
    if span_a[0] != span_b[0] or len(a) - span_a[1] != len(b) - span_b[1]:
        return "not-single-statement"
    if span_a[1] - span_a[0] >= MAX_STATEMENT_LINES or span_b[1] - span_b[0] >= MAX_STATEMENT_LINES:
        return "not-single-statement"
    return span_a[0], span_a[1], span_b[0], span_b[1], span_a[2]


def _decode(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError:
        return None


def extract_pair(old: str, new: str) -> tuple[BugFixPair, int] | str:
    """The single-statement pair between two versions of a file and its 1-based line, or the
    reason there is none."""
    span = _single_statement(old, new)
    if isinstance(span, str):
        return span
    start_a, end_a, start_b, end_b, parents = span
    a, b = old.split("\n"), new.split("\n")
    buggy, fixed = "\n".join(a[start_a - 1 : end_a]), "\n".join(b[start_b - 1 : end_b])
    pattern = classify_pair(buggy, fixed)
    if pattern == "same":
        return "layout-only"
    functions = [p for p in parents if isinstance(p, ast.FunctionDef | ast.AsyncFunctionDef)]
    context_start = max(functions[-1].lineno - 1 if functions else 0, start_a - 1 - PREFIX_LINES)
    prefix = "".join(line + "\n" for line in a[context_start : start_a - 1])
    suffix = "\n".join(a[end_a : end_a + SUFFIX_LINES])
    return BugFixPair(prefix=prefix, buggy=buggy, fixed=fixed, suffix=suffix, pattern=pattern), start_a


def mine(
    repo: Path,
    *,
    since: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> MiningResult:
    """Mine ``repo``'s history (only commits after ``since`` when given) for single-statement fixes."""
    started = time.perf_counter()
    root = repository_root(repo)
    head = _head(root)
    if head is None:
        return MiningResult([], 0, 0, None, time.perf_counter() - started)
    revisions = f"{since}..{head}" if since else head
    name = root.name
    pairs: list[BugFixPair] = []
    skipped: Counter[str] = Counter()
    commits = fix_commits = 0
    blobs = _Blobs(root)
    try:
        for commit in _commits(root, revisions):
            commits += 1
            if progress:
                progress(1)
            if not commit.changes or not FIX_MESSAGE.search(f"{commit.subject}\n{commit.body}"):
                continue
            fix_commits += 1
            if len(commit.changes) > MAX_FILES_PER_COMMIT:
                skipped["too-many-files"] += len(commit.changes)
                continue
            for change in commit.changes:
                old_data, new_data = blobs.get(change.old), blobs.get(change.new)
                if old_data is None or new_data is None:
                    skipped["missing-object"] += 1
                    continue
                old, new = _decode(old_data), _decode(new_data)
                if old is None or new is None:
                    skipped["binary-or-not-utf8"] += 1
                    continue
                found = extract_pair(old, new)
                if isinstance(found, str):
                    skipped[found] += 1
                    continue
                pair, line = found
                pairs.append(
                    BugFixPair(
                        prefix=pair.prefix,
                        buggy=pair.buggy,
                        fixed=pair.fixed,
                        suffix=pair.suffix,
                        id=f"{name}@{commit.sha[:10]}:{change.path}:{line}",
                        source=f"mined:{name}",
                        pattern=pair.pattern,
                        extra={
                            "commit": commit.sha,
                            "path": change.path,
                            "line": line,
                            "message": commit.subject,
                        },
                    )
                )
    finally:
        blobs.close()
    return MiningResult(pairs, commits, fix_commits, head, time.perf_counter() - started, dict(skipped))


def count_commits(repo: Path, since: str | None = None) -> int:
    """How many commits :func:`mine` will walk (for a progress bar)."""
    root = repository_root(repo)
    head = _head(root)
    if head is None:
        return 0
    revisions = f"{since}..{head}" if since else head
    out = _git(root, "rev-list", "--count", "--no-merges", revisions, "--", "*.py").stdout
    return int(out.strip() or 0)


def load_state(state_file: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(Path(state_file).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable mining state %s (%s): mining everything again", state_file, exc)
        return {}
    return data if isinstance(data, dict) else {}


def save_state(state_file: Path, state: dict[str, dict[str, object]]) -> None:
    """Write the state atomically, so an interrupted run never leaves it half-written."""
    state_file = Path(state_file)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_name(state_file.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(state_file)


def last_mined(repo: Path, state_file: Path) -> str | None:
    """The commit the previous run stopped at, if it is still in the current history."""
    root = repository_root(repo)
    entry = load_state(state_file).get(str(root.resolve()), {})
    last = entry.get("head") if isinstance(entry, dict) else None
    if not isinstance(last, str) or not last:
        return None
    if _git(root, "merge-base", "--is-ancestor", last, "HEAD", check=False).returncode != 0:
        log.warning(
            "%s: the last mined commit %s is no longer in the history; mining everything", root, last[:10]
        )
        return None
    return last


def remember(repo: Path, state_file: Path, result: MiningResult) -> None:
    if result.head is None:
        return
    root = repository_root(repo)
    state = load_state(state_file)
    state[str(root.resolve())] = {"head": result.head, "mined_at": time.time(), "pairs": len(result.pairs)}
    save_state(state_file, state)

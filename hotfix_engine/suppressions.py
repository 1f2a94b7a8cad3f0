"""Suppressions: what the user rejected, kept in the store and turned into a :class:`Steer` per request.

A suppression is one rejected statement at one *site*: the last non-blank line above the cursor and
the text of the cursor's line before it, both without indentation. A request at the same site gets
the statement banned; one at the same site a few characters further on (the user typing towards the
same line) gets the rest of it banned. When the user fixed the statement, the fix is preferred there.

Suppressions belong to a workspace (the folder the document is in), so a rejection in one project
does not change another's suggestions, and they stop applying once an adapter that learnt them is
current (``learned_by``): the adapter now carries the lesson. Rolling back below that version brings
them back. ``hotfix suppressions`` and the editor's command list and remove them.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from hotfix_engine.redact import redact_parts
from hotfix_engine.steering import Steer, first_statement
from hotfix_engine.store import Store
from hotfix_engine.store_schema import SUPPRESSIONS_TABLE

log = logging.getLogger(__name__)

# Rejections that are a verdict on the suggestion; "superseded" and "expired" only mean the user
# moved on or looked away.
SUPPRESSING_REASONS = ("dismissed", "diverged")
# Oldest suppressions are forgotten beyond this many (diverging is common while typing fast).
MAX_SUPPRESSIONS = 5000
# Code before the cursor read with a suggestion when redacting it (a private key block's BEGIN line).
REDACT_CONTEXT_CHARS = 16384


@dataclass(frozen=True)
class Site:
    """Where a suggestion starts: the nearest non-blank line above and the cursor's line so far."""

    context: str
    line_prefix: str


def site_of(prefix: str) -> Site:
    head, _, line = prefix.rpartition("\n")
    context = ""
    for above in reversed(head.split("\n")[-50:]):
        if above.strip():
            context = above.strip()
            break
    return Site(context, line.lstrip())


@dataclass(frozen=True)
class Suppression:
    id: str
    created: float
    workspace: str
    site: Site
    text: str  # the rejected completion, as it continued the line at the site
    fix: str | None  # the user's fixed completion at the same site, if they fixed it
    suggestion_id: str | None
    reason: str
    learned_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        found = first_statement(self.text)
        return {
            "id": self.id,
            "created": self.created,
            "workspace": self.workspace,
            "context": self.site.context,
            "line": self.site.line_prefix + self.text.split("\n")[0]
            if not self.text.startswith("\n")
            else "",
            "statement": found[0][1] if found else "",
            "fix": self.fix,
            "reason": self.reason,
            "learnedBy": self.learned_by,
        }

    def active(self, adapter: str | None) -> bool:
        """Applies unless the current adapter is the version that learnt it, or a later one."""
        return self.learned_by is None or adapter is None or adapter < self.learned_by

    def steer(self, site: Site, line_suffix: str) -> tuple[str | None, str | None]:
        """(banned, preferred) completions for a request at ``site``; (None, None) if it is elsewhere."""
        if site.context != self.site.context:
            return None, None
        if site.line_prefix == self.site.line_prefix:
            return self.text, self.fix
        typed = site.line_prefix[len(self.site.line_prefix) :]
        if not site.line_prefix.startswith(self.site.line_prefix) or self.text.startswith("\n"):
            return None, None
        banned = (
            self.text[len(typed) :] if self.text.startswith(typed) and len(self.text) > len(typed) else None
        )
        fix = self.fix[len(typed) :] if self.fix and self.fix.startswith(typed) else None
        if fix is not None and line_suffix and fix.rstrip("\n").endswith(line_suffix):
            fix = fix.rstrip("\n")[: -len(line_suffix)]
        return banned, fix or None


def fixed_completion(line_prefix: str, fixed_line: str, rejected: str) -> str | None:
    """The user's fixed statement as a completion at the rejected suggestion's site, if it is one.

    Only a fix that keeps the text before the cursor can be offered there; a fix that ends its line
    (as the rejected suggestion did) ends it here too.
    """
    fixed = fixed_line.strip("\n").lstrip()
    if not fixed.startswith(line_prefix) or len(fixed) == len(line_prefix):
        return None
    rest = fixed[len(line_prefix) :]
    return rest + "\n" if rejected.rstrip(" \t").endswith("\n") or "\n" not in rejected else rest


class Suppressions:
    """The store's suppressions, with an in-memory index for the request path.

    The index is reloaded when this or another process changed the table (the store's data version:
    SQLite's ``data_version``), so ``hotfix suppressions remove`` takes effect on the next request of a
    running server (within a second on a shared store, which is asked at most once a second).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._index: dict[tuple[str, str], list[Suppression]] | None = None
        self._version: object = None
        # The store's plumbing is shared on purpose: one store, one connection, one write discipline.
        # Statements take ``?`` placeholders on every backend; a shared (PostgreSQL) store made this
        # table in its own migrations, and shows each user only their own suppressions.
        store.ensure_table(SUPPRESSIONS_TABLE)

    # -- writing --------------------------------------------------------------------------

    def add(
        self,
        workspace: str,
        prefix: str,
        text: str,
        *,
        fix: str | None = None,
        suggestion_id: str | None = None,
        reason: str = "dismissed",
    ) -> Suppression | None:
        """Suppress ``text`` where ``prefix`` ends; None for a blank suggestion (nothing to ban)."""
        if first_statement(text) is None:
            return None
        # Redacted with the code before it, so a secret that began above (a key block) is found.
        head, text = redact_parts(prefix[-REDACT_CONTEXT_CHARS:], text)
        if fix:
            fix = redact_parts(prefix[-REDACT_CONTEXT_CHARS:], fix)[1]
        site = site_of(head)
        item = Suppression(
            id=uuid.uuid4().hex[:12],
            created=time.time(),
            workspace=workspace,
            site=site,
            text=text,
            fix=fix or None,
            suggestion_id=suggestion_id,
            reason=reason,
        )
        with self.store.transaction() as db:
            # One suppression a statement and site: a newer verdict (a fix) replaces an older one.
            db.execute(
                "DELETE FROM suppressions WHERE workspace = ? AND context = ? AND line_prefix = ? AND text = ?",
                (workspace, site.context, site.line_prefix, item.text),
            )
            db.execute(
                "INSERT INTO suppressions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    item.id,
                    item.created,
                    workspace,
                    site.context,
                    site.line_prefix,
                    item.text,
                    item.fix,
                    suggestion_id,
                    reason,
                ),
            )
            db.execute(
                "DELETE FROM suppressions WHERE id NOT IN "
                "(SELECT id FROM suppressions ORDER BY created DESC LIMIT ?)",
                (MAX_SUPPRESSIONS,),
            )
        self._invalidate()
        log.info("suppressed a rejected suggestion (%s)", reason)
        return item

    def remove(self, ids: list[str]) -> int:
        """Delete suppressions by id (or a unique start of one); the number removed."""
        removed = 0
        with self.store.transaction() as db:
            for ident in ids:
                rows = db.execute("SELECT id FROM suppressions WHERE id LIKE ?", (ident + "%",)).fetchall()
                if len(rows) == 1:
                    removed += db.execute("DELETE FROM suppressions WHERE id = ?", (rows[0][0],)).rowcount
        self._invalidate()
        return removed

    def clear(self, workspace: str | None = None) -> int:
        """Delete every suppression (of one workspace); the number removed."""
        with self.store.transaction() as db:
            if workspace is None:
                count = db.execute("DELETE FROM suppressions").rowcount
            else:
                count = db.execute("DELETE FROM suppressions WHERE workspace = ?", (workspace,)).rowcount
        self._invalidate()
        return int(count)

    def mark_learned(self, version: str) -> int:
        """Suppressions whose suggestion ``version`` trained on now expire while it (or later) is current."""
        with self.store.transaction() as db:
            count = db.execute(
                """UPDATE suppressions SET learned_by = ? WHERE learned_by IS NULL AND suggestion_id IN (
                       SELECT substr(record_id, 12) FROM consumed
                        WHERE adapter_version = ? AND record_id LIKE 'suggestion:%'
                       UNION SELECT p.suggestion_id FROM pairs p JOIN consumed c
                        ON c.record_id = 'pair:' || p.id WHERE c.adapter_version = ?)""",
                (version, version, version),
            ).rowcount
        self._invalidate()
        return int(count)

    # -- reading --------------------------------------------------------------------------

    def items(self, workspace: str | None = None) -> list[Suppression]:
        sql = "SELECT * FROM suppressions"
        params: tuple[object, ...] = ()
        if workspace is not None:
            sql += " WHERE workspace = ?"
            params = (workspace,)
        return [_from_row(row) for row in self.store.query(sql + " ORDER BY created DESC", params)]

    def steer(
        self, workspace: str | None, prefix: str, suffix: str = "", adapter: str | None = None
    ) -> Steer:
        """Banned and preferred completions for a request at the end of ``prefix``.

        ``workspace`` None applies every workspace's suppressions (the "everywhere" scope).
        """
        site = site_of(prefix)
        line_suffix = suffix.split("\n", 1)[0].strip()
        banned: list[str] = []
        preferred: list[str] = []
        for item in self._candidates(workspace, site.context):
            if not item.active(adapter):
                continue
            ban, fix = item.steer(site, line_suffix)
            if ban:
                banned.append(ban)
            if fix and fix not in preferred:
                preferred.append(fix)
        # A statement the user fixed is never also banned (an older rejection of the fix itself).
        fixed = {_key(p) for p in preferred}
        banned = [b for b in banned if _key(b) not in fixed]
        return Steer(tuple(banned), tuple(preferred))

    def _candidates(self, workspace: str | None, context: str) -> list[Suppression]:
        with self._lock:
            version = self.store.data_version()
            if self._index is None or version != self._version:
                index: dict[tuple[str, str], list[Suppression]] = defaultdict(list)
                for item in self.items():
                    index[(item.workspace, item.site.context)].append(item)
                    index[("*", item.site.context)].append(item)
                self._index, self._version = index, version
            return list(self._index.get((workspace if workspace is not None else "*", context), ()))

    def _invalidate(self) -> None:
        with self._lock:
            self._index = None


def _key(completion: str) -> tuple[bool, str] | None:
    found = first_statement(completion)
    return found[0] if found else None


def _from_row(row: dict[str, Any]) -> Suppression:
    return Suppression(
        id=row["id"],
        created=row["created"],
        workspace=row["workspace"],
        site=Site(row["context"], row["line_prefix"]),
        text=row["text"],
        fix=row["fix"],
        suggestion_id=row["suggestion_id"],
        reason=row["reason"],
        learned_by=row["learned_by"],
    )

"""Suppressions in the store: where they apply, what they ban and prefer, expiry, listing and removal."""

from __future__ import annotations

import json

import pytest

from hotfix_engine.cli import main
from hotfix_engine.store import Store
from hotfix_engine.suppressions import Suppressions, fixed_completion, site_of

WS = "file:///home/me/project"
PREFIX = "import os\n\n\ndef append(x, lst="


@pytest.fixture()
def suppressions(tmp_path):
    with Store.open(tmp_path) as store:
        yield Suppressions(store)


def test_site_is_the_line_above_and_the_line_so_far():
    site = site_of("a = 1\n\n    def f(x, y=")
    assert (site.context, site.line_prefix) == ("a = 1", "def f(x, y=")
    assert site_of("x = ").context == ""


def test_a_rejection_bans_its_statement_at_its_site_only(suppressions):
    suppressions.add(WS, PREFIX, "[]):\n", suggestion_id="s1", reason="dismissed")
    assert suppressions.steer(WS, PREFIX).banned == ("[]):\n",)
    # Indented differently, or a file away in the same workspace: the same site.
    assert suppressions.steer(WS, "import os\n    def append(x, lst=").banned == ("[]):\n",)
    # Another line above, another line so far, another workspace: untouched.
    assert not suppressions.steer(WS, "import sys\n\ndef append(x, lst=")
    assert not suppressions.steer(WS, "import os\n\ndef extend(x, lst=")
    assert not suppressions.steer("file:///other", PREFIX)
    # The "everywhere" scope (workspace None) sees every workspace's.
    assert suppressions.steer(None, PREFIX).banned == ("[]):\n",)


def test_typing_on_towards_the_same_statement_bans_its_rest(suppressions):
    suppressions.add(WS, PREFIX, "[]):\n")
    assert suppressions.steer(WS, PREFIX + "[").banned == ("]):\n",)
    assert not suppressions.steer(WS, PREFIX + "N")  # typing something else: nothing to ban


def test_a_users_fix_is_preferred_and_never_banned(suppressions):
    fix = fixed_completion(site_of(PREFIX).line_prefix, "def append(x, lst=None):", "[]):\n")
    assert fix == "None):\n"
    suppressions.add(WS, PREFIX, "None):\n", reason="dismissed")  # rejected earlier, fixed to later
    suppressions.add(WS, PREFIX, "[]):\n", fix=fix, suggestion_id="s2", reason="edited")
    steer = suppressions.steer(WS, PREFIX)
    assert steer.preferred == ("None):\n",)
    assert steer.banned == ("[]):\n",)


def test_a_fix_that_changes_the_text_before_the_cursor_is_not_offered_there():
    assert fixed_completion("def append(x, lst=", "def append(x, items=None):", "[]):\n") is None


def test_they_expire_while_an_adapter_that_learnt_them_is_current(tmp_path):
    with Store.open(tmp_path) as store:
        suppressions = Suppressions(store)
        suppressions.add(WS, PREFIX, "[]):\n", suggestion_id="s1")
        suppressions.add(WS, PREFIX, "list()):\n", suggestion_id="s9")
        store.mark_consumed("v0002", ["suggestion:s1"])
        assert suppressions.mark_learned("v0002") == 1
        assert suppressions.steer(WS, PREFIX, adapter="v0002").banned == ("list()):\n",)
        assert suppressions.steer(WS, PREFIX, adapter="v0003").banned == ("list()):\n",)
        # Rolled back below the version that learnt it: the suppression applies again.
        assert set(suppressions.steer(WS, PREFIX, adapter="v0001").banned) == {"[]):\n", "list()):\n"}
        assert set(suppressions.steer(WS, PREFIX, adapter=None).banned) == {"[]):\n", "list()):\n"}


def test_another_connection_sees_changes_at_once(tmp_path):
    with Store.open(tmp_path) as serving, Store.open(tmp_path) as cli:
        server_side = Suppressions(serving)
        assert not server_side.steer(WS, PREFIX)
        item = Suppressions(cli).add(WS, PREFIX, "[]):\n")
        assert server_side.steer(WS, PREFIX).banned == ("[]):\n",)
        assert item is not None and Suppressions(cli).remove([item.id[:6]]) == 1
        assert not server_side.steer(WS, PREFIX)


def test_blank_suggestions_are_not_suppressed(suppressions):
    assert suppressions.add(WS, PREFIX, "  \n") is None
    assert suppressions.items() == []


def test_secrets_in_a_suppression_are_redacted(suppressions):
    suppressions.add(WS, "mail = ", "'someone@example.com'\n")
    assert "someone@example.com" not in json.dumps([s.to_json() for s in suppressions.items()])


def test_cli_lists_removes_and_clears(tmp_path, capsys):
    with Store.open(tmp_path) as store:
        first = Suppressions(store).add(WS, PREFIX, "[]):\n", reason="dismissed")
        Suppressions(store).add("file:///elsewhere", PREFIX, "{}):\n", reason="diverged")
    assert first is not None
    assert main(["suppressions", "list", "--data-dir", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["statement"] for s in listed] == ["{}):", "[]):"]
    assert main(["suppressions", "--data-dir", str(tmp_path)]) == 0
    assert "'[]):'" in capsys.readouterr().out
    assert main(["suppressions", "remove", first.id, "--data-dir", str(tmp_path)]) == 0
    assert main(["suppressions", "remove", "nosuchid", "--data-dir", str(tmp_path)]) == 1
    assert "matched none" in capsys.readouterr().err
    assert main(["suppressions", "clear", "--data-dir", str(tmp_path)]) == 0
    assert "1 suppressions would be removed" in capsys.readouterr().out
    assert main(["suppressions", "clear", "--yes", "--data-dir", str(tmp_path)]) == 0
    with Store.open(tmp_path) as store:
        assert Suppressions(store).items() == []

"""Client settings: camelCase on the wire, defaults for everything, bad values never fatal."""

from __future__ import annotations

import dataclasses

import pytest

from hotfix_engine.errors import ConfigError
from hotfix_server.config import CompletionConfig, OutcomeConfig, ServerConfig, parse_config, wire_keys


def test_defaults() -> None:
    config = ServerConfig()
    assert config.model is None and config.data_dir is None
    assert config.record == "patterns" and config.continuous_hotfixing is False
    assert config.completion == CompletionConfig(
        max_new_tokens=64, temperature=0.0, context_tokens=1536, debounce_ms=75
    )
    assert config.outcomes == OutcomeConfig()


def test_camel_case_keys_fill_the_tree() -> None:
    raw = {
        "model": "/models/tiny",
        "dataDir": "/data",
        "continuousHotfixing": True,
        "record": "all",
        "maxNewTokens": 8,
        "temperature": 0.5,
        "contextTokens": 256,
        "debounceMs": 0,
        "predictBudgetMs": 250,
        "runtime": "transformers",
        "suggestionExpirySeconds": 5,
        "editWindowSeconds": 2.5,
        "suppressions": "everywhere",
    }
    config, problems = parse_config(raw)
    assert problems == []
    assert config.suppressions == "everywhere"
    assert config.model == "/models/tiny" and config.data_dir == "/data"
    assert config.continuous_hotfixing is True and config.record == "all"
    assert config.runtime == "transformers"
    assert config.completion == CompletionConfig(8, 0.5, 256, 0, 250)
    assert config.outcomes == OutcomeConfig(5.0, 2.5)
    assert sorted(wire_keys()) == sorted(raw)


def test_a_bad_suppressions_scope_keeps_the_one_in_force() -> None:
    config, problems = parse_config({"suppressions": "nowhere"})
    assert config.suppressions == "workspace"
    assert problems and "suppressions must be one of workspace, everywhere, off" in problems[0]


def test_unknown_keys_are_ignored_and_vscode_nesting_is_understood() -> None:
    config, problems = parse_config({"hotfix": {"maxNewTokens": 12, "somethingNew": 1}})
    assert problems == [] and config.completion.max_new_tokens == 12


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"record": "everything"}, "record must be one of patterns, all, off"),
        ({"maxNewTokens": 0}, "maxNewTokens must be between 1 and 1024"),
        ({"maxNewTokens": "many"}, "maxNewTokens must be a whole number"),
        ({"maxNewTokens": True}, "maxNewTokens must be a whole number"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"continuousHotfixing": "yes"}, "continuousHotfixing must be true or false"),
        ({"model": ""}, "model must not be empty"),
        ({"model": 3}, "model must be a string or null"),
        ({"debounceMs": -1}, "debounceMs must be between 0 and 10000"),
    ],
)
def test_a_bad_value_keeps_the_previous_one_and_says_why(raw: dict, fragment: str) -> None:
    base = ServerConfig(completion=CompletionConfig(max_new_tokens=16))
    config, problems = parse_config({**raw, "contextTokens": 512}, base)
    assert len(problems) == 1 and fragment in problems[0]
    assert "keeping" in problems[0]
    # The bad value keeps the base's; the good value beside it still applies.
    assert config == dataclasses.replace(
        base, completion=dataclasses.replace(base.completion, context_tokens=512)
    )


def test_a_change_of_settings_reads_over_the_initial_options_not_the_last_change() -> None:
    initial, _ = parse_config({"model": "/models/tiny", "maxNewTokens": 16})
    changed, _ = parse_config({"temperature": 0.5, "contextTokens": 512}, initial)
    assert changed.completion.temperature == 0.5 and changed.model == "/models/tiny"
    # The user removed temperature (absent) and cleared contextTokens (null): both return to the
    # value before any change, while the initial options stay.
    again, problems = parse_config({"hotfix": {"contextTokens": None}}, initial, changed)
    assert problems == [] and again == initial
    # A bad value keeps the value in force, not the initial one.
    bad, problems = parse_config({"temperature": "hot"}, initial, changed)
    assert bad.completion.temperature == 0.5 and "keeping 0.5" in problems[0]


def test_not_an_object() -> None:
    config, problems = parse_config(["maxNewTokens", 3])
    assert config == ServerConfig() and len(problems) == 1
    assert parse_config(None) == (ServerConfig(), [])


def test_whole_floats_are_accepted_for_integers() -> None:
    config, problems = parse_config({"maxNewTokens": 32.0})
    assert problems == [] and config.completion.max_new_tokens == 32


def test_dataclasses_validate_on_their_own() -> None:
    with pytest.raises(ConfigError, match="record must be one of"):
        ServerConfig(record="some")
    with pytest.raises(ConfigError, match="contextTokens"):
        CompletionConfig(context_tokens=8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ServerConfig().record = "all"  # type: ignore[misc]


def test_a_bad_runtime_keeps_the_one_in_force() -> None:
    config, problems = parse_config({"runtime": "vllm"})
    assert config.runtime == "auto"
    assert problems and "runtime must be one of auto, llama.cpp, transformers" in problems[0]


def test_command_line_defaults_survive_initialization_options(tmp_path) -> None:
    """``hotfix serve --model X`` under a client that sends initializationOptions without a model.

    The README's Neovim snippet sends ``init_options``; the options used to be read over a blank
    config, so the command line's --model and --data-dir were silently dropped.
    """
    import asyncio

    from lsprotocol import types

    from hotfix_server.server import create_server

    server = create_server(ServerConfig(model="/models/from-cli", data_dir=str(tmp_path)))

    async def initialize() -> None:
        server.on_initialize(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(), initialization_options={"record": "all"}
            )
        )

    asyncio.run(initialize())
    config = server.runtime.config
    assert (config.model, config.data_dir, config.record) == ("/models/from-cli", str(tmp_path), "all")
    # A later change of settings without a model keeps the command line's, too.
    assert server._configure({"maxNewTokens": 9}).model == "/models/from-cli"


def test_every_server_setting_is_a_vscode_setting_and_back() -> None:
    """The VS Code settings are the server's keys (README): a key on one side only is a setting users
    cannot reach, or one the server ignores."""
    import json
    from pathlib import Path

    manifest = json.loads((Path(__file__).parent.parent / "vscode-client" / "package.json").read_text())
    properties = manifest["contributes"]["configuration"]["properties"]
    client_only = {
        "enabledLanguages",
        "completionItems",
        "server.command",
        "server.pythonPath",
        "trace.server",
    }
    vscode = {key.removeprefix("hotfix.") for key in properties} - client_only
    assert vscode == set(wire_keys())


def test_a_pause_prefills_the_prompt_after_the_last_edit() -> None:
    """The prefill after a pause computes the prompt that ends where the last edit ended."""
    from types import SimpleNamespace

    from lsprotocol import types
    from pygls.workspace import TextDocument

    from hotfix_server.server import create_server

    server = create_server()
    document = TextDocument("file:///w/a.py", "def f(x):\n    return x\n", language_id="python")
    server._document = lambda uri: document  # type: ignore[method-assign]
    asked: list = []
    engine = SimpleNamespace(prefill=asked.append, loaded=SimpleNamespace(fim=None))

    server._prefill(document.uri, (types.Position(1, 11), 1))  # the model is not ready: kept for later
    assert asked == [] and server._prefill_waiting == (document.uri, (types.Position(1, 11), 1))
    server.runtime.backend = SimpleNamespace(engine=engine)  # type: ignore[assignment]
    server._prefill(*server._prefill_waiting)
    server._prefill(document.uri, None)  # on opening: the end of the file
    server._prefill(document.uri, (types.Position(9, 0), 1))  # past the end: nothing to compute
    assert [request.prefix for request in asked] == ["def f(x):\n    return x", document.source]

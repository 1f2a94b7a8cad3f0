"""``hotfix demo``: the whole hotfix loop in a terminal, through the real server over LSP.

The demo is an LSP client like an editor: it starts ``python -m hotfix_server`` over stdio, opens
documents, asks for inline completions, accepts, edits and rejects them as a user would, runs
``hotfix.train``, waits for ``hotfix/adapterChanged`` and asks again. The model, store, trainer,
gate and hot-swap are the product's own; nothing is simulated but the keystrokes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from hotfix_engine.patterns import Catalogue, PatternMatch
from hotfix_server.cli.demo_client import DemoClient
from hotfix_server.cli.screen import Screen

# Prompts where the embedded Gemma 3 270M writes a mutable default argument (probed: it does for
# add_*/append names, and writes None for most others): the user fixes the first by hand, rejects
# the next two, and the held-out one shows whether the fix generalises to a prompt never trained on.
TRAIN_PROMPTS = ("def add_item(item, items=", "def add_to_list(value, values=", "def append(x, lst=")
HELD_OUT_PROMPT = "def add_user(user, users="
# Three pairs are little data: several passes over them. The gate is the product's own, and the demo
# publishes only what it accepts.
DEMO_TRAIN_ARGS = "--epochs 10"
TRAIN_TIMEOUT_S = 1200.0


def describe(matches: list[PatternMatch]) -> str:
    buggy = [m for m in matches if m.side == "buggy"]
    if not buggy:
        return "no known bug pattern"
    first = buggy[0]
    return f"{first.pattern_id}: {first.message}" + (f" (fix: {first.fix.strip()})" if first.fix else "")


async def _run(model: str | None, data: Path, screen: Screen) -> int:
    catalogue = Catalogue.load()
    env = dict(os.environ, HOTFIX_HOME=str(data), HOTFIX_TRAIN_ARGS=DEMO_TRAIN_ARGS)
    options: dict[str, Any] = {
        "dataDir": str(data),
        "record": "patterns",
        "maxNewTokens": 48,
        "debounceMs": 0,
    }
    if model:
        options["model"] = model
    total = 6
    demo = DemoClient(screen)
    screen.step(1, total, "Start the language server and load the model")
    started = time.monotonic()
    await demo.start(options, env)
    try:
        status = await demo.wait_ready()
        if status["modelError"]:
            screen.line(f"the model could not be loaded: {status['modelError']}")
            return 1
        screen.line(
            f"  hotfix serve --stdio: {status['model']} on {status['runtime']} ({status['device']}), "
            f"adapter {status['adapter'] or 'none'}"
            f" ({time.monotonic() - started:.0f} s)"
        )

        screen.step(2, total, "The model suggests known bugs; you fix one and reject the others")
        # One prompt at a time, as a user works: asking elsewhere would supersede a shown suggestion.
        before: dict[str, str] = {}
        fixes: dict[str, str] = {}  # the fixed line the user expects, from the cursor on
        wanted: dict[str, int] = {}  # store counts that show every outcome was recorded
        for index, prompt in enumerate(TRAIN_PROMPTS):
            uri = demo.open(prompt)
            suggestion = await demo.suggest(uri, prompt)
            text = suggestion.text if suggestion else ""
            before[prompt] = text
            screen.code(prompt, text)
            matches = [m for m in catalogue.check(prompt, text) if m.side == "buggy"]
            screen.line("      -> " + describe(matches))
            if suggestion is None or not matches:
                screen.line("      (nothing to correct: moving on)")
                continue
            first_line = text.split("\n", 1)[0]
            fixes[prompt] = _fixed_line(matches, prompt)
            if index == 0:
                demo.change(uri, 2, 0, len(prompt), len(prompt), text)  # Tab: the editor inserts it
                await demo.command("hotfix.accept", suggestion.id)
                fixed = fixes[prompt]
                demo.change(uri, 3, 0, len(prompt), len(prompt) + len(first_line), fixed)
                # ... and goes on writing below it, which settles the edit as the user's own fix.
                name = re.findall(r"(\w+)=$", prompt)[-1]
                end = len(prompt) + len(fixed)
                demo.change(uri, 4, 0, end, end, f"\n    if {name} is None:\n        {name} = []")
                screen.line(f"      you accept it, then edit the line into: {prompt}{fixed}")
                wanted["edit_pairs"] = 1
            else:
                await demo.command("hotfix.reject", suggestion.id)
                screen.line("      you reject it (Escape): hotfix.reject")
                wanted["rejected"] = wanted.get("rejected", 0) + 1
                # Online hotfixing: the next request at the same place already avoids it, no training.
                again = await demo.suggest(uri, prompt)
                again_text = again.text.split("\n", 1)[0] if again else "(no suggestion)"
                screen.line(f"      asked again at once: {prompt}{screen.style(again_text, '36')}")
                screen.line("      -> " + describe(catalogue.check(prompt, again.text if again else "")))
        deadline = time.monotonic() + 30
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = (await demo.status())["store"] or {}
            if all(counts.get(key, 0) >= value for key, value in wanted.items()):
                break
            await asyncio.sleep(0.5)
        screen.line(
            f"  the store holds {counts.get('suggestions', 0)} flagged suggestions, "
            f"{counts.get('rejected', 0)} rejections and {counts.get('edit_pairs', 0)} fix of yours"
        )

        # The user's fix applies at its own place at once too (it is preferred where the bug started).
        uri = demo.open(TRAIN_PROMPTS[0])
        again = await demo.suggest(uri, TRAIN_PROMPTS[0])
        again_text = again.text.split("\n", 1)[0] if again else "(no suggestion)"
        screen.line(f"  where you fixed it, asked again: {TRAIN_PROMPTS[0]}{screen.style(again_text, '36')}")

        screen.step(3, total, "A prompt the hotfix will not train on")
        uri = demo.open(HELD_OUT_PROMPT)
        suggestion = await demo.suggest(uri, HELD_OUT_PROMPT)
        before[HELD_OUT_PROMPT] = suggestion.text if suggestion else ""
        screen.code(HELD_OUT_PROMPT, before[HELD_OUT_PROMPT])
        held_matches = [
            m for m in catalogue.check(HELD_OUT_PROMPT, before[HELD_OUT_PROMPT]) if m.side == "buggy"
        ]
        screen.line("      -> " + describe(held_matches))
        if held_matches:
            fixes[HELD_OUT_PROMPT] = _fixed_line(held_matches, HELD_OUT_PROMPT)

        screen.step(
            4, total, "Train a hotfix (hotfix.train): learn the fix, unlearn the bug, retain the rest"
        )
        trained_at = time.monotonic()
        reply = await demo.command("hotfix.train")
        screen.line(f"  {reply.get('message', reply)}")
        deadline = time.monotonic() + TRAIN_TIMEOUT_S
        while time.monotonic() < deadline and not demo.adapter_changed.is_set():
            status = await demo.status()
            if not status["trainerRunning"] and status["trainer"]["state"] in ("idle", "failed"):
                break
            await asyncio.sleep(1.0)
        status = await demo.status()
        trainer = status["trainer"]
        if not demo.adapter_changed.is_set():
            try:
                await asyncio.wait_for(demo.adapter_changed.wait(), 10)
            except asyncio.TimeoutError:
                screen.line(f"  no new version was published: {trainer['message']}")
                result = trainer.get("last_result") or {}
                if result.get("version"):
                    _print_gate(screen, data, status["modelKey"], result["version"])
                return 1

        screen.step(5, total, "Hot-swap: the server loads the new adapter without a restart")
        screen.line(
            f"  hotfix/adapterChanged -> {demo.adapter_version} "
            f"({time.monotonic() - trained_at:.0f} s after the train command)"
        )
        _print_gate(screen, data, status["modelKey"], demo.adapter_version)

        screen.step(6, total, "The same prompts, completed again by the hotfixed model")
        fixed_count = 0
        for prompt in (*TRAIN_PROMPTS, HELD_OUT_PROMPT):
            uri = demo.open(prompt)
            suggestion = await demo.suggest(uri, prompt)
            text = suggestion.text if suggestion else ""
            screen.code(prompt, text)
            label = "   [held out]" if prompt == HELD_OUT_PROMPT else ""
            screen.line(f"      before: {prompt}{before[prompt].split(chr(10), 1)[0]}{label}")
            screen.line("      now:    -> " + describe(catalogue.check(prompt, text)))
            fixed_count += prompt in fixes and _shows_fix(prompt, text, fixes[prompt])
        screen.line(
            f"\n{fixed_count} of {len(fixes)} prompts that showed the bug now show the fix, cleanly. "
            f"Done in {time.monotonic() - started:.0f} s.\nRoll back with: hotfix adapters rollback --data-dir {data}"
        )
        return 0 if fixed_count == len(fixes) else 1
    finally:
        screen.close_bar()
        await demo.stop()


def _fixed_line(matches: list[PatternMatch], prompt: str) -> str:
    """What the user types instead: the rule's fix for the line, from the cursor on."""
    for match in matches:
        if match.fix and match.fix.startswith(prompt.strip()):
            return match.fix.split("\n", 1)[0][len(prompt.strip()) :]
    return "None):"


def _shows_fix(prompt: str, text: str, fix: str) -> bool:
    """The suggestion writes the fixed line, and nothing the product's filters would drop."""
    from hotfix_engine.filters import clean_suggestion

    first = text.split("\n", 1)[0]
    return first.strip() == fix.strip() and clean_suggestion(text, prompt, "", language="python") is not None


def _print_gate(screen: Screen, data: Path, model_key: str, version: str | None) -> None:
    """The gate's verdict on the new version and the evidence it weighed, from the version's manifest."""
    from hotfix_engine.adapters import AdapterRegistry

    if version is None:
        return
    gate = AdapterRegistry(data, model_key).get(version).manifest.get("gate")
    if not gate:
        return
    verdict = "accepted" if gate.get("accepted") else "rejected"
    screen.line(f"  quality gate {verdict} it in {gate.get('seconds', 0):.0f} s: {gate.get('reason', '')}")
    for line in gate.get("evidence", []):
        screen.line(f"    {line}")


def run_demo(model: str | None, data: Path, out: TextIO = sys.stdout, fresh: bool = True) -> int:
    """Run the demo in its own data folder (emptied first when ``fresh``); returns an exit code."""
    if fresh and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    screen = Screen(out)
    screen.line(f"hotfix demo: the whole loop through the language server (data: {data})")
    return asyncio.run(_run(model, data, screen))

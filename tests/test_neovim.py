"""A third-party editor drives the server: headless Neovim 0.7 (classic completion) asks for a
suggestion from a GGUF model served by llama.cpp, inserts it with the item's text edit and runs the
item's accept command.

Neovim comes from Debian's ``neovim`` package; without ``nvim`` on PATH the test is skipped.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_server_e2e import server_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("nvim") is None, reason="nvim is not on PATH (apt-get install neovim)"),
]

SCRIPT = r"""
local function run()
  local out = {}
  local options = vim.fn.json_decode(os.getenv("HOTFIX_TEST_OPTIONS"))
  local id = vim.lsp.start_client({
    name = "hotfix",
    cmd = { os.getenv("HOTFIX_TEST_PYTHON"), "-m", "hotfix_server" },
    root_dir = os.getenv("HOTFIX_TEST_ROOT"),
    init_options = options,
    flags = { debounce_text_changes = 0 },
  })
  local client = vim.lsp.get_client_by_id(id)
  assert(vim.wait(60000, function() return client.initialized end, 50), "no initialize response")

  local path = os.getenv("HOTFIX_TEST_ROOT") .. "/example.py"
  vim.cmd("edit " .. path)
  local buf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "class Stack:", "    def push(self, item):", "        " })
  vim.lsp.buf_attach_client(buf, id)

  local ready = vim.wait(120000, function()
    local status = client.request_sync("hotfix/status", vim.NIL, 5000, buf)
    return status and status.result and status.result.modelReady
  end, 200)
  assert(ready, "the model never became ready")

  local uri = vim.uri_from_bufnr(buf)
  local params = {
    textDocument = { uri = uri },
    position = { line = 2, character = 8 },
    context = { triggerKind = 1 },
  }
  local response = client.request_sync("textDocument/completion", params, 30000, buf)
  assert(response and response.result, "no completion response: " .. vim.inspect(response))
  local item = response.result.items[1]
  assert(item, "no completion item: " .. vim.inspect(response.result))
  out.label = item.label
  out.new_text = item.textEdit.newText
  vim.lsp.util.apply_text_edits({ item.textEdit }, buf, "utf-16")
  out.line = vim.api.nvim_buf_get_lines(buf, 2, 3, false)[1]

  local accepted = client.request_sync("workspace/executeCommand", {
    command = item.command.command,
    arguments = item.command.arguments,
  }, 10000, buf)
  out.command = item.command.command
  out.suggestion_id = item.command.arguments[1]
  out.accepted = accepted.result
  local status = client.request_sync("hotfix/status", vim.NIL, 5000, buf)
  out.store = status.result.store
  out.runtime = status.result.runtime

  client.stop()
  vim.wait(10000, function() return client.is_stopped() end, 50)
  return out
end

local ok, result = pcall(run)
if not ok then result = { error = tostring(result) } end
vim.fn.writefile({ vim.fn.json_encode(result) }, os.getenv("HOTFIX_TEST_OUT"))
vim.cmd("qa!")
"""


def test_neovim_requests_a_completion_and_runs_the_accept_command(
    printable_gguf: Path, tmp_path: Path
) -> None:
    script = tmp_path / "drive.lua"
    script.write_text(SCRIPT, encoding="utf-8")
    out = tmp_path / "result.json"
    options = {"model": str(printable_gguf), "maxNewTokens": 8, "debounceMs": 0, "record": "all"}
    env = {
        **server_env(tmp_path),
        "HOTFIX_TEST_OPTIONS": json.dumps(options),
        "HOTFIX_TEST_PYTHON": sys.executable,
        "HOTFIX_TEST_ROOT": str(tmp_path),
        "HOTFIX_TEST_OUT": str(out),
        "XDG_STATE_HOME": str(tmp_path / "nvim-state"),  # Neovim's LSP log stays in the test folder
    }
    completed = subprocess.run(
        ["nvim", "--headless", "--clean", "-c", f"luafile {script}"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert out.exists(), completed.stderr.decode(errors="replace")[-2000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert "error" not in result, result.get("error")
    assert result["new_text"].strip() and result["label"]
    assert result["line"] == "        " + result["new_text"]
    assert result["runtime"] == "llama.cpp"
    assert result["command"] == "hotfix.accept"
    assert result["accepted"] == {"accepted": True}
    with sqlite3.connect(tmp_path / "home" / "store.sqlite3") as db:
        rows = db.execute(
            "SELECT kind, reason FROM outcomes WHERE suggestion_id = ?", (result["suggestion_id"],)
        ).fetchall()
    assert rows == [("accepted", "command")]

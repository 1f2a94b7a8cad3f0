import json

import pytest

from hotfix_engine.cli import main
from hotfix_engine.cli.complete import split_at
from hotfix_engine.errors import DataError


def test_split_at_positions(tmp_path):
    text = "a = 1\nb = 2\n"
    assert split_at(text, 1, 2, tmp_path) == ("a = 1\nb ", "= 2\n")
    with pytest.raises(DataError, match="line 5 is outside"):
        split_at(text, 5, 0, tmp_path)
    with pytest.raises(DataError, match="column 9 is outside"):
        split_at(text, 0, 9, tmp_path)


def test_complete_prints_json(tmp_path, tiny_model_dir, capsys):
    source = tmp_path / "sample.py"
    source.write_text("def add(a, b):\n    \n")
    code = main(
        ["complete", str(source), "--line", "1", "--col", "4", "--json", "--model", str(tiny_model_dir)]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["model"] == str(tiny_model_dir) and payload["adapter"] is None
    assert payload["stopReason"] in {"statement", "block", "eos", "length", "filtered"}


def test_bad_position_is_one_line_error(tmp_path, tiny_model_dir, capsys):
    source = tmp_path / "sample.py"
    source.write_text("x = 1\n")
    assert main(["complete", str(source), "--line", "7", "--col", "0", "--model", str(tiny_model_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hotfix: error:") and "Traceback" not in err


def test_missing_file_and_unknown_adapter(tmp_path, tiny_model_dir, capsys):
    assert main(["complete", str(tmp_path / "nope.py"), "--line", "0", "--col", "0"]) == 1
    assert "no such file" in capsys.readouterr().err
    source = tmp_path / "s.py"
    source.write_text("x = 1\n")
    args = ["complete", str(source), "--line", "0", "--col", "0", "--model", str(tiny_model_dir)]
    assert main([*args, "--adapter", "v0042"]) == 1
    assert "v0042" in capsys.readouterr().err

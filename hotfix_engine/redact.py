"""Finding and masking personal data and secrets in code.

The store redacts everything before it writes (we do not keep users' addresses or keys), and the
evaluation's leakage metric counts the same things in generated code, so both share these detectors.
Kinds are ``email``, ``ip`` and ``secret``. Loopback, unspecified and broadcast addresses
(``127.0.0.1``, ``0.0.0.0``, ``::1``) are not reported: they identify no one and are everywhere in code.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

KINDS = ("email", "ip", "secret")
PLACEHOLDERS = {"email": "<EMAIL>", "ip": "<IP>", "secret": "<SECRET>"}


@dataclass(frozen=True)
class Sensitive:
    """One span of ``text[start:end]`` that holds an e-mail address, an IP address or a secret."""

    kind: str
    start: int
    end: int
    text: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; valid: {', '.join(KINDS)}")


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)(?!\.\w)")
# Candidates only; ipaddress decides. At least four groups, so slices like ``a[1::2]`` never qualify.
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:{1,2}){3,7}[0-9A-Fa-f]{1,4}(?![\w:])")

# Well-known token formats (vendors publish these prefixes so that scanners can find leaked keys).
_TOKENS = re.compile(
    r"""
    (?<![A-Za-z0-9])(?:
        AKIA[0-9A-Z]{16}                                   # AWS access key id
      | gh[pousr]_[A-Za-z0-9]{36,255}                      # GitHub tokens
      | github_pat_[A-Za-z0-9_]{22,255}
      | xox[abprs]-[A-Za-z0-9-]{10,}                       # Slack
      | AIza[0-9A-Za-z_-]{35}                              # Google API key
      | (?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}           # Stripe
      | sk-(?:proj-)?[A-Za-z0-9_-]{20,}                    # OpenAI-style
      | hf_[A-Za-z0-9]{30,}                                # Hugging Face
      | glpat-[A-Za-z0-9_-]{20,}                           # GitLab
      | eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}   # JWT
    )(?![A-Za-z0-9])
    """,
    re.VERBOSE,
)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z]+ )*PRIVATE KEY-----|\Z)", re.DOTALL
)
# ``password = "hunter2"``, ``"api_key": 'abc'``, ``token=b"..."``: the quoted value is the secret.
SECRET_NAME = r"[A-Za-z_]*(?:passw(?:or)?d|passwd|pwd|secret|api_?key|apikey|access_?key|auth_?token|token|credentials?|private_?key)[A-Za-z0-9_]*"
_ASSIGNED = re.compile(
    r"(?i)(?<![A-Za-z0-9])['\"]?"
    + SECRET_NAME
    + r"['\"]?\s*(?::|=|:=)\s*[rbuRBU]{0,2}(['\"])(?P<value>(?:(?!\1)[^\\\n]|\\.){4,})\1"
)
_SECRET_WORDS = ("pass", "pwd", "secret", "key", "token", "credential")
# ``scheme://user:password@host``
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]+:(?P<value>[^\s@/'\"]{3,})@")
# Values that are obviously not secrets: placeholders, templates, environment lookups.
_NOT_A_SECRET = re.compile(
    r"(?i)^(?:x+|\*+|\.+|-+|changeme|password|secret|token|none|null|true|false|dummy|example|test|testing|"
    r"your[_-]?\w*|<[^>]*>|\$\{?\w+\}?|\{\{?[^}]*\}\}?|%\(?\w*\)?s|\{\w*\})$"
)


def _ip_ok(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified:
        return False
    return not (address.version == 4 and str(address) == "255.255.255.255")


def find_sensitive(text: str) -> list[Sensitive]:
    """Every e-mail address, IP address and secret in ``text``, sorted and not overlapping."""
    # Cheap substring tests first: this runs on every suggestion and most code holds none of these.
    found: list[Sensitive] = []
    lowered = text.lower()
    if "private key-----" in lowered:
        for match in _PRIVATE_KEY.finditer(text):
            found.append(Sensitive("secret", match.start(), match.end(), match.group()))
    for match in _TOKENS.finditer(text):
        found.append(Sensitive("secret", match.start(), match.end(), match.group()))
    assigned = any(word in lowered for word in _SECRET_WORDS)
    for pattern in (_ASSIGNED,) * assigned + (_URL_PASSWORD,) * ("://" in text):
        for match in pattern.finditer(text):
            value = match.group("value")
            # Secrets have no spaces and are not URLs; this keeps ``token_url = "https://..."`` out.
            if not _NOT_A_SECRET.match(value) and not any(c.isspace() for c in value) and "://" not in value:
                found.append(Sensitive("secret", match.start("value"), match.end("value"), value))
    if "@" in text:
        for match in _EMAIL.finditer(text):
            found.append(Sensitive("email", match.start(), match.end(), match.group()))
    for pattern in (_IPV4,) * ("." in text) + (_IPV6,) * (text.count(":") >= 3):
        for match in pattern.finditer(text):
            if _ip_ok(match.group()):
                found.append(Sensitive("ip", match.start(), match.end(), match.group()))
    # Where spans overlap, secrets win (``user:pw@host`` is a password, not an address), then the
    # longer span (a key block over the token inside it).
    priority = {"secret": 0, "email": 1, "ip": 2}
    found.sort(key=lambda s: (priority[s.kind], s.start - s.end, s.start))
    kept: list[Sensitive] = []
    for item in found:
        if not any(item.start < other.end and other.start < item.end for other in kept):
            kept.append(item)
    return sorted(kept, key=lambda s: s.start)


def contains_sensitive(text: str, kinds: tuple[str, ...] = KINDS) -> bool:
    return any(item.kind in kinds for item in find_sensitive(text))


def redact(text: str) -> str:
    """``text`` with each sensitive span replaced by ``<EMAIL>``, ``<IP>`` or ``<SECRET>``."""
    items = find_sensitive(text)
    if not items:
        return text
    parts = []
    position = 0
    for item in items:
        parts.append(text[position : item.start])
        parts.append(PLACEHOLDERS[item.kind])
        position = item.end
    parts.append(text[position:])
    return "".join(parts)

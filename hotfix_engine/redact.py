"""Finding and masking personal data and secrets in code.

The store redacts everything before it writes (we do not keep users' addresses or keys), the logs
redact every record (:mod:`hotfix_engine.log_redaction`), and the evaluation's leakage metric counts
the same things in generated code, so all share these detectors. Kinds are ``email``, ``ip`` and
``secret``. Loopback, unspecified and broadcast addresses (``127.0.0.1``, ``0.0.0.0``, ``::1``) are not
reported: they identify no one and are everywhere in code.

Secrets are found by four kinds of rule:

- token formats vendors publish so that scanners can find leaks: hotfix's own list below, plus
  gitleaks' rule set, vendored as data (``secret_rules.json``, MIT; ``tools/vendor_gitleaks_rules.py``
  regenerates it), each run only when one of its keywords is in the text;
- private key blocks, also one typed so far (a BEGIN line without its END);
- values given to a secret's name (``password = "…"``, ``DB_PASSWORD=…``, ``token: …``,
  ``Authorization: Bearer …``, ``user:password@host``), quoted or not;
- long random-looking string literals assigned to anything.

Redaction errs on the side of masking: a placeholder in a training example costs little, a leaked
key costs a lot. Text the editor typed in pieces is redacted whole (:func:`redact_parts`), so a
secret split between the code before the cursor and a suggestion is still recognised.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KINDS = ("email", "ip", "secret")
PLACEHOLDERS = {"email": "<EMAIL>", "ip": "<IP>", "secret": "<SECRET>"}
RULES_FILE = Path(__file__).with_name("secret_rules.json")


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
# Candidates only: ipaddress and _ipv6_ok decide. An IPv4 tail covers ``::ffff:10.0.0.1``.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)"
)

# Token formats; gitleaks' rules (RULES_FILE) add some 200 more.
_TOKENS = re.compile(
    r"""
    (?<![A-Za-z0-9])(?:
        (?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}      # AWS access key ids, temporary ones too
      | gh[pousr]_[A-Za-z0-9]{36,255}                      # GitHub tokens
      | github_pat_[A-Za-z0-9_]{22,255}
      | gl(?:pat|dt|ptt|rt|cbt|imt|oas|soat|ffct|agent|ft)-[A-Za-z0-9_-]{20,}  # GitLab
      | GR1348941[A-Za-z0-9_-]{20,}
      | xox[abposre]-[A-Za-z0-9-]{10,}                     # Slack
      | xapp-\d-[A-Za-z0-9-]{10,}
      | https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,}
      | https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]{20,}
      | AIza[0-9A-Za-z_-]{35}                              # Google API key
      | GOCSPX-[0-9A-Za-z_-]{20,}                          # Google OAuth client secret
      | ya29\.[0-9A-Za-z_-]{20,}                           # Google OAuth access token
      | (?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}           # Stripe
      | whsec_[0-9A-Za-z]{24,}
      | sk-(?:proj-|ant-[a-z]+\d*-)?[A-Za-z0-9_-]{20,}     # OpenAI, Anthropic
      | hf_[A-Za-z0-9]{30,}                                # Hugging Face
      | npm_[A-Za-z0-9]{36}                                # npm
      | pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}             # PyPI
      | SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}           # SendGrid
      | key-[0-9a-f]{32}                                   # Mailgun
      | dop_v1_[a-f0-9]{64}                                # DigitalOcean
      | shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}                 # Shopify
      | dapi[a-f0-9]{32}                                   # Databricks
      | hvs\.[A-Za-z0-9_-]{90,}                            # Vault
      | \d{8,10}:AA[0-9A-Za-z_-]{33}                       # Telegram bot
      | eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}   # JWT
    )(?![A-Za-z0-9])
    """,
    re.VERBOSE,
)
# The end of a text cut inside a token (code before the cursor while it is typed).
_PARTIAL_TOKEN = re.compile(
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA|gh[pousr]_|github_pat_|glpat-|xox[abposre]-|[sr]k_live_|whsec_|sk-|AIza|"
    r"GOCSPX-|ya29\.|hf_|npm_|pypi-|SG\.|dop_v1_|shpat_|eyJ)[A-Za-z0-9_.+/=-]{4,}\Z"
)
# A key block, to its END line, or (typed so far) over the key-material lines after BEGIN. Inside a
# JSON or Python string the line breaks are written ``\n``.
_KEY_BEGIN = re.compile(r"-----BEGIN[ A-Z0-9]*PRIVATE KEY[ A-Z]*-----")
_KEY_END = re.compile(r"-----END[ A-Z0-9]*PRIVATE KEY[ A-Z]*-----")
_KEY_BODY = re.compile(r"(?:(?:\r?\n|\\r?\\n)(?:[A-Za-z0-9+/=]+|[A-Za-z-]+: [^\n\\]*|[ \t]*))*")
# The lines of key material just above an END line whose BEGIN is not in the text.
_KEY_TAIL = re.compile(
    r"(?m)(?:^[ \t]*(?:[A-Za-z0-9+/=]|<SECRET>)+[ \t]*\r?\n)+-----END[ A-Z0-9]*PRIVATE KEY[ A-Z]*-----"
)
_KEY_BODY_END = re.compile(r"(?:\r?\n|\\r?\\n)?-----END[ A-Z0-9]*PRIVATE KEY[ A-Z]*-----")
# What follows a placeholder continues the secret it replaced (a key or token typed in pieces, the
# earlier pieces already redacted in the store).
_PLACEHOLDER = "<SECRET>"
_AFTER_PLACEHOLDER = re.compile(r"<SECRET>(?P<value>[A-Za-z0-9_+/=.~-]+)")
# Key material without its BEGIN line: at least two whole lines of base64 (PEM writes 64 a line),
# or one long random run of it anywhere (a line of a key, an embedded credential).
_BASE64_LINES = re.compile(r"(?m)(?:^[ \t]*[A-Za-z0-9+/]{40,76}={0,2}[ \t]*(?:\n|\Z)){2,}")
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/]{56,}={0,2}(?![A-Za-z0-9+/=_-])")


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Names whose value is a secret (the last word of ``db_password``, ``apiKey``, ``X-Api-Key``).
_SECRET_WORDS = _wordset(
    "password passwd pwd pw pass passphrase passcode secret token apikey credential credentials creds psk"
)
_SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "apikey", "secretkey", "accesskey", "privatekey")
# ``*_key`` is a secret after these words (``api_key``, ``SECRET_KEY``, ``AccountKey``).
_KEY_QUALIFIERS = _wordset(
    "api secret private access signing sign encryption encrypt crypt decryption master auth client app "
    "application service account storage subscription webhook license licence session consumer shared "
    "hmac jwt admin ssh gpg pgp aes cipher deploy root bot live prod production write"
)
# Tokens that are not credentials: a tokenizer's special tokens, paging cursors.
_NOT_SECRET_TOKENS = _wordset(
    "eos bos pad unk sep mask cls start end stop special next prev previous page continuation cursor sync "
    "first last new default image bot_start"
)
_NOT_SECRET_PASS = _wordset("first second third last next prev previous single multi one two each by sub")
# ``password_hash``, ``token_value``: the word before these carries the meaning.
_VALUE_WORDS = _wordset(
    "value str string b64 base64 hex raw enc encoded plain plaintext text data bytes hash salt old new "
    "prod dev staging live test override env"
)
# Names whose long random values are public: digests, ids, versions.
_PUBLIC_WORDS = _wordset(
    "sha sha1 sha256 sha512 md5 hash digest checksum commit revision rev etag uuid guid version fingerprint "
    "nonce image url uri path file name id ids arn color colour"
)
# Words that make a name worth a look: its value is a secret when it looks random.
_WEAK_WORDS = _wordset(
    "pass password passwd pwd secret secrets token tokens key keys cred creds credential credentials auth "
    "signature sig signing private apikey"
)
_PASSWORD_WORDS = _wordset("password passwd pwd pw pass passphrase passcode")

_NAME = r"(?P<name>[A-Za-z_][\w.-]*)"


def _named(head: str, value: str, flags: int = 0) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A rule as two patterns: ``head`` (up to the value) finds the names cheaply, and the whole
    is matched only where the name says secret, so a long line of ``a=b=c…`` stays linear."""
    return re.compile(head, flags), re.compile(head + value, flags)


# ``password = "…"``, ``"api_key": '…'``, ``token=b"…"``, ``cfg['SECRET_KEY'] = "…"``, ``password: str = "…"``,
# ``$pw = '…'``, ``password := "…"``; the value may be unterminated (typed so far).
_ASSIGNED = _named(
    r"(?<![\w$.-])\$?['\"]?" + _NAME + r"['\"]?\]?(?:[ \t]*:[ \t]*[A-Za-z_][\w\[\], .|]{0,60}?)?"
    r"[ \t]*(?::=|=>|=|:|<-)[ \t]*[rbuRBUfF]{0,2}(?P<quote>['\"`])",
    r"(?P<value>(?:(?!(?P=quote))[^\\\n]|\\.)*)(?P<end>(?P=quote)|$)",
    re.MULTILINE,
)
# ``DB_PASSWORD=…`` (env, shell, flags, query strings, connection strings), not followed by code.
_ASSIGNED_BARE = _named(
    r"(?<![\w$.])(?:--?)?" + _NAME + r"=(?!=)",
    r"(?P<value>[^\s'\"`;&,#()<>{}\[\]]+)(?=[\s;&,'\"`)#]|$)",
    re.MULTILINE,
)
# A line that is ``name = value`` or ``name: value`` (.env, YAML, INI, properties, HTTP headers).
_ASSIGNED_LINE = _named(
    r"^[ \t]*(?:(?:export|ENV|set|setenv|SetEnv|declare)[ \t]+|-[ \t]+)?['\"]?"
    + _NAME
    + r"['\"]?[ \t]*[=:][ \t]*",
    r"(?P<value>[^\s'\"`#|>][^\s'\"`]*?),?[ \t]*(?:[#;].*)?$",
    re.MULTILINE,
)
# ``X-Api-Key: …``, ``Private-Token: …``: an HTTP header, wherever it is written.
_HEADER_VALUE = _named(
    r"(?<![\w-])(?P<name>[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+):[ \t]*", r"(?P<value>[^\s'\"`,;]+)"
)
_XML_VALUE = _named(r"<" + _NAME + r">", r"(?P<value>[^<\s]{3,})</(?P=name)>")
_NETRC = re.compile(r"(?m)(?:^|\s)login\s+\S+\s+password\s+(?P<value>\S+)")
_AUTH_TUPLE = re.compile(r"\bauth\s*=\s*[(\[]\s*(['\"])[^'\"\n]*\1\s*,\s*(['\"])(?P<value>[^'\"\n]{3,})\2")
_AUTH_HEADER = re.compile(
    r"(?i)\b(?:proxy-)?authori[sz]ation\b['\"]?\]?[ \t]*(?:=>|[:=,])[ \t]*[rbf]?['\"]?[ \t]*"
    r"(?:(?P<scheme>bearer|basic|token|digest|bot|jwt|apikey|api-key|oauth|sso-key|negotiate|ntlm|hmac)[ \t]+)?"
    r"(?P<value>[A-Za-z0-9._~+/=:-]{8,})"
)
# ``curl -u user:password``, ``--user=user:password``.
_USER_PASSWORD = re.compile(r"(?<!\S)(?:-u|--user)[ =]['\"]?[^\s:'\"]+:(?P<value>[^\s'\"]{3,})")
_BEARER = re.compile(r"\b(?:Bearer|bearer|BEARER)[ \t]+(?P<value>[A-Za-z0-9._~+/-]{16,}=*)")
# ``scheme://user:password@host`` (the user may be empty: ``redis://:password@host``).
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:(?P<value>[^\s@/'\"]{3,})@")
# A string literal given to any name: secret only when it looks random (see _random_enough).
_LITERAL = re.compile(
    r"(?<![\w$.-])['\"]?" + _NAME + r"['\"]?\]?[ \t]*(?::=|=|:)[ \t]*[rbuRBU]{0,2}(?P<quote>['\"`])"
    r"(?P<value>[A-Za-z0-9+/=_~-]{24,})(?P=quote)"
)
# Values that are obviously not secrets: placeholders, templates, environment lookups.
_NOT_A_SECRET = re.compile(
    r"(?i)^(?:x+|\*+|\.+|-+|_+|#+|changeme|change_me|changeit|password|passwd|pass|pwd|pw|secret|token|none|null|nil|"
    r"true|false|yes|no|user|username|login|admin|root|guest|foo|bar|baz|"
    r"on|off|undefined|dummy|example|sample|test|testing|redacted|your[_-]?\w*|my[_-]?\w*|<[^>]*>?|\[[\w ]*\]|"
    r"\$\{?\w+\}?|\{\{?[^}]*\}?\}?|%\(?\w*\)?s|\{\w*\}|\(\w*\))$"
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NUMBER = re.compile(r"^[-+]?(?:0[xob])?[0-9_.]+[a-zA-Z]?$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_CHEAP_SECRET_HINT = ("pass", "pwd", "pw", "secret", "token", "key", "cred", "auth", "login", "psk", "sign")


def _words(name: str) -> list[str]:
    """``dbPassword`` -> [db, password]; ``X-Api-Key`` -> [x, api, key]; ``SECRET_KEY`` -> [secret, key]."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", name.lower()) if w]


def _secret_name(name: str) -> int:
    """3: a password's name; 2: another secret's; 1: it may be one (a random value then is); 0: not."""
    words = _words(name)
    if not words:
        return 0
    last, before = words[-1], words[-2] if len(words) > 1 else ""
    if last in _VALUE_WORDS and before:
        last, before = before, words[-3] if len(words) > 2 else ""
    if last == "token" and before in _NOT_SECRET_TOKENS:
        return 0
    if last == "pass":
        return 3 if before and before not in _NOT_SECRET_PASS else 1
    if last in _PASSWORD_WORDS or last.endswith(("password", "passwd")):
        return 3
    if last in _SECRET_WORDS or (last.endswith(_SECRET_SUFFIXES) and not last.startswith("no")):
        return 2
    if last == "key":
        return 2 if before in _KEY_QUALIFIERS else 1
    if last in _PUBLIC_WORDS:
        return 0
    return 1 if any(w in _WEAK_WORDS or w.endswith(_SECRET_SUFFIXES) for w in words) else 0


def entropy(text: str) -> float:
    """Shannon entropy in bits a character."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


_ALPHABETS = ("abcdef", "ABCDEF", "012345", "qwerty", "QWERTY")


def _random_enough(value: str, strict: bool) -> bool:
    """A value that looks generated rather than written: mixed classes, many distinct characters.

    ``strict`` is for literals whose name says nothing (``X = "…"``): long, upper, lower and digits.
    An alphabet written out (``"ABCDEF…xyz0123456789"``) has every character and no secret.
    """
    if any(run in value for run in _ALPHABETS):
        return False
    digits = sum(c.isdigit() for c in value)
    upper = any(c.isupper() for c in value)
    lower = any(c.islower() for c in value)
    if strict:
        words = sum(len(w) for w in re.findall(r"[a-z]{4,}", value))
        return (
            len(value) >= 24 and digits >= 3 and upper and lower
            and entropy(value) >= 4.2 and words <= len(value) * 0.3
        )  # fmt: skip
    classes = (digits > 0) + upper + lower
    words = sum(len(w) for w in re.findall(r"[a-z]{4,}", value))
    return (
        len(value) >= 12 and digits >= 2 and classes >= 2 and entropy(value) >= 3.3
        and re.fullmatch(r"[A-Za-z0-9+/=_~.-]+", value) is not None and words <= len(value) * 0.5
    )  # fmt: skip


def _plausible(value: str, strength: int, bare: bool) -> bool:
    """Could ``value``, given to a name of ``strength``, be a secret rather than code or a placeholder?"""
    if len(value) < 4 or _NOT_A_SECRET.match(value) or _NUMBER.match(value):
        return False
    if any(c.isspace() for c in value) or "://" in value or value.startswith(("/", "./", "../", "~/")):
        return False
    if (
        re.search(r"\{[^}]*\}|%\(\w+\)[sdr]", value)
        or len(re.findall(r"%[sdr]", value)) >= 2
        or value == "%s"
    ):
        return False  # a template (f-string, format string): what it holds is computed, not written
    if _ENV_NAME.match(value):
        return False  # the name of an environment variable, not its value
    if "\\" in value or re.fullmatch(r"#[0-9A-Fa-f]{3,8}", value):
        return False  # a regular expression, a path on Windows, a colour
    if (
        strength < 3
        and re.fullmatch(r"_*[A-Za-z]+(?:[_-][A-Za-z]+)*_*", value)
        and (len(_words(value)) >= 2 or value[0] == "_")
    ):
        return False  # ``"next_token"``, ``"NextToken"``, ``"__root__"``: a name, not a secret
    if strength < 3 and re.fullmatch(r"[a-z]{1,12}", value):
        return False  # a word, not a token (a password may be a word)
    if bare:
        # Unquoted: code unless it cannot be. ``password=password``, ``token = self.token``, ``f(x)``.
        if any(c in value for c in "()[]{}") or value[0] in "$%&*@!":
            return False
        if _IDENTIFIER.match(value):
            digits = any(c.isdigit() for c in value)
            mixed = any(c.isupper() for c in value) and any(c.islower() for c in value)
            if "." in value or not digits or not (mixed or len(value) >= 8) or strength < 2:
                return False
    return strength >= 2 or _random_enough(value, strict=False)


def _secret_named(
    rule: tuple[re.Pattern[str], re.Pattern[str]], text: str
) -> Iterator[tuple[re.Match[str], int]]:
    """The rule's matches whose name says (or may say) secret, with that strength."""
    head, whole = rule
    position = 0
    while (found := head.search(text, position)) is not None:
        # Past the name only: a value that is not a secret may hold an assignment that is
        # (``log: 'password = "…"'``).
        position = found.end("name")
        strength = _secret_name(found.group("name"))
        if strength and (match := whole.match(text, found.start())) is not None:
            yield match, strength
            position = max(position, match.end())


def _name_value_spans(text: str, lowered: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []

    def add(match: re.Match[str], bare: bool, strength: int | None = None) -> None:
        value = match.group("value")
        start = match.start("value")
        if not bare and match.groupdict().get("end") == "":
            # Unterminated (still being typed): the value ends at the first space.
            value = re.split(r"\s", value, maxsplit=1)[0]
            if len(value) >= 4 and not _NOT_A_SECRET.match(value) and strength != 0:
                spans.append((start, start + len(value)))
            return
        if _plausible(value, 3 if strength is None else strength, bare):
            spans.append((start, start + len(value)))

    for rule, bare in (
        (_ASSIGNED, False),
        (_ASSIGNED_BARE, True),
        (_ASSIGNED_LINE, True),
        (_HEADER_VALUE, True),
        (_XML_VALUE, True),
    ):
        for match, strength in _secret_named(rule, text):
            add(match, bare, strength)
    if "password" in lowered:
        for match in _NETRC.finditer(text):
            add(match, True)
    if "auth" in lowered:
        for match in _AUTH_TUPLE.finditer(text):
            add(match, False)
    return spans


def _auth_spans(text: str, lowered: str) -> list[tuple[int, int]]:
    spans = []
    if "authori" in lowered:
        for match in _AUTH_HEADER.finditer(text):
            value = match.group("value")
            if match.group("scheme") or not (
                re.fullmatch(r"(?i)bearer|basic|token|digest|negotiate", value)
                or (_IDENTIFIER.match(value) and not any(c.isdigit() for c in value))
                or text.startswith("(", match.end("value"))
            ):
                spans.append((match.start("value"), match.end("value")))
    if "-u" in text:
        spans += [
            (m.start("value"), m.end("value"))
            for m in _USER_PASSWORD.finditer(text)
            if not _NOT_A_SECRET.match(m.group("value"))
        ]
    if "bearer" in lowered:
        spans += [(m.start("value"), m.end("value")) for m in _BEARER.finditer(text)]
    if "://" in text:
        spans += [
            (m.start("value"), m.end("value"))
            for m in _URL_PASSWORD.finditer(text)
            if not _NOT_A_SECRET.match(m.group("value"))
        ]
    return spans


def _literal_spans(text: str) -> list[tuple[int, int]]:
    """Long random-looking literals given to any name except a digest's or an id's."""
    spans = []
    for match in _LITERAL.finditer(text):
        value = match.group("value")
        if _random_enough(value, strict=True) and not set(_words(match.group("name"))) & _PUBLIC_WORDS:
            spans.append((match.start("value"), match.end("value")))
    return spans


def _key_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    position = 0
    while (begin := _KEY_BEGIN.search(text, position)) is not None:
        end = _KEY_END.search(text, begin.end())
        nxt = _KEY_BEGIN.search(text, begin.end())
        # A whole block holds no quotes (a docstring naming both markers is not a key).
        whole = (
            end is not None
            and (nxt is None or end.start() < nxt.start())
            and not any(q in text[begin.end() : end.start()] for q in "'\"")
        )
        if end is not None and whole:
            stop = end.end()
        else:
            body = _KEY_BODY.match(text, begin.end())
            stop = body.end() if body else begin.end()
        # A BEGIN line with no key material after it (documentation, a parser) holds no secret.
        if whole or re.search(r"[A-Za-z0-9+/]{16}", text[begin.end() : stop]):
            spans.append((begin.start(), stop))
        position = max(stop, begin.end())
    if "PRIVATE KEY" in text:
        spans += [(m.start(), m.end()) for m in _KEY_TAIL.finditer(text)]
    position = 0
    while (placeholder := text.find(_PLACEHOLDER, position)) >= 0:
        start = placeholder + len(_PLACEHOLDER)
        body = _KEY_BODY.match(text, start)
        position = start
        if body and re.search(r"[A-Za-z0-9+/]{16}", body.group()):
            end = _KEY_BODY_END.match(text, body.end())
            spans.append((placeholder, end.end() if end else body.end()))
            position = max(start, body.end())
    for match in _BASE64_LINES.finditer(text):
        lines = match.group().split()
        if sum(entropy(line) >= 4.5 for line in lines) * 2 > len(lines):
            spans.append((match.start(), match.end() - match.group().endswith("\n")))
    for match in _BASE64_RUN.finditer(text):
        run = match.group()
        mixed = any(c.isupper() for c in run) and any(c.islower() for c in run)
        varied = sum(c.isdigit() for c in run) >= 2 or "+" in run or "/" in run
        if mixed and varied and entropy(run) >= 4.8 and not any(a in run for a in _ALPHABETS):
            spans.append((match.start(), match.end()))
    return spans


@dataclass(frozen=True)
class _Rule:
    id: str
    pattern: re.Pattern[str]
    keywords: tuple[str, ...]
    entropy: float
    group: int


@functools.lru_cache(maxsize=1)
def vendored_rules() -> tuple[_Rule, ...]:
    """gitleaks' token rules from RULES_FILE, compiled once, on first use."""
    data = json.loads(RULES_FILE.read_text(encoding="utf-8"))
    return tuple(
        _Rule(
            r["id"],
            re.compile(r["regex"]),
            tuple(r["keywords"]),
            float(r.get("entropy", 0)),
            int(r.get("group", 0)),
        )
        for r in data["rules"]
    )


def _vendored_spans(text: str, lowered: str) -> list[tuple[int, int]]:
    spans = []
    for rule in vendored_rules():
        if rule.keywords and not any(k in lowered for k in rule.keywords):
            continue
        for match in rule.pattern.finditer(text):
            group = rule.group or next((i for i in range(1, (match.lastindex or 0) + 1) if match.group(i)), 0)
            value = match.group(group)
            if value and entropy(value) >= rule.entropy:
                spans.append((match.start(group), match.end(group)))
    return spans


def _ip_ok(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified:
        return False
    return not (address.version == 4 and str(address) == "255.255.255.255")


def _ipv6_ok(text: str, match: re.Match[str]) -> bool:
    """Not a slice (``x[1::2]``, ``a[b::c]``) or a C++ scope: compressed forms need digits and a long group."""
    candidate = match.group()
    if candidate.endswith(":") and not candidate.endswith("::"):
        return False
    start = match.start()
    if (
        start > 0
        and text[start - 1] == "["
        and start > 1
        and (text[start - 2].isalnum() or text[start - 2] in "_)]")
    ):
        return False
    if "::" in candidate:
        groups = [g for g in re.split(r":+", candidate) if g]
        if not any(c.isdigit() for c in candidate) or not (
            len(groups) >= 3 or any(len(g) >= 3 for g in groups)
        ):
            return False
    return _ip_ok(candidate)


def find_sensitive(text: str) -> list[Sensitive]:
    """Every e-mail address, IP address and secret in ``text``, sorted and not overlapping."""
    # Cheap substring tests first: this runs on every suggestion and most code holds none of these.
    spans: list[tuple[int, int]] = []
    lowered = text.lower()
    if "private key" in lowered or _PLACEHOLDER in text or text.count("\n") >= 2:
        spans += _key_spans(text)
    spans += [(m.start(), m.end()) for m in _TOKENS.finditer(text)]
    if _PLACEHOLDER in text:
        spans += [(m.start(), m.end()) for m in _AFTER_PLACEHOLDER.finditer(text)]
    partial = _PARTIAL_TOKEN.search(text)
    if partial:
        spans.append((partial.start(), partial.end()))
    spans += _vendored_spans(text, lowered)
    if any(hint in lowered for hint in _CHEAP_SECRET_HINT):
        spans += _name_value_spans(text, lowered)
    spans += _auth_spans(text, lowered)
    spans += _literal_spans(text)
    found = [Sensitive("secret", start, end, text[start:end]) for start, end in spans if end > start]
    if "@" in text:
        for match in _EMAIL.finditer(text):
            found.append(Sensitive("email", match.start(), match.end(), match.group()))
    if "." in text:
        for match in _IPV4.finditer(text):
            if _ip_ok(match.group()):
                found.append(Sensitive("ip", match.start(), match.end(), match.group()))
    if "::" in text or text.count(":") >= 7:
        for match in _IPV6.finditer(text):
            if _ipv6_ok(text, match):
                found.append(Sensitive("ip", match.start(), match.end(), match.group()))
    return _resolve(found, text)


def _resolve(found: list[Sensitive], text: str) -> list[Sensitive]:
    """Merge overlapping spans: where they overlap, secrets win (``user:pw@host`` is a password, not an
    address), then the longer span (a key block over the token inside it). Overlapping secrets are
    joined into one, so that no piece of either is left."""
    priority = {"secret": 0, "email": 1, "ip": 2}
    found.sort(key=lambda s: (priority[s.kind], s.start - s.end, s.start))
    kept: list[Sensitive] = []
    for item in found:
        overlapping = [k for k in kept if item.start < k.end and k.start < item.end]
        if not overlapping:
            kept.append(item)
        elif item.kind == "secret" and all(k.kind == "secret" for k in overlapping):
            for k in overlapping:
                kept.remove(k)
            start = min(item.start, *(k.start for k in overlapping))
            end = max(item.end, *(k.end for k in overlapping))
            kept.append(Sensitive("secret", start, end, text[start:end]))
    return sorted(kept, key=lambda s: s.start)


_LOOSE_ASSIGNED = _named(
    r"(?<![\w$.-])" + _NAME + r"['\"]?[ \t]*[=:][ \t]*", r"(?P<value>[^\s'\"`,;#()\[\]{}<>]+)"
)


def find_loose(text: str) -> list[Sensitive]:
    """Unquoted ``name: value`` / ``name = value`` anywhere, not only as a whole line.

    For logs, where a line of code or configuration sits inside a message: there masking a little
    too much costs nothing, while in stored code it would mask ordinary code.
    """
    found = []
    for match, strength in _secret_named(_LOOSE_ASSIGNED, text):
        value = match.group("value")
        if strength >= 2 and _plausible(value, strength, bare=True):
            found.append(Sensitive("secret", match.start("value"), match.end("value"), value))
    return found


def contains_sensitive(text: str, kinds: tuple[str, ...] = KINDS) -> bool:
    return any(item.kind in kinds for item in find_sensitive(text))


def _replace(text: str, items: list[Sensitive]) -> str:
    parts = []
    position = 0
    for item in items:
        parts.append(text[position : item.start])
        parts.append(PLACEHOLDERS[item.kind])
        position = item.end
    parts.append(text[position:])
    return "".join(parts)


def redact(text: str) -> str:
    """``text`` with each sensitive span replaced by ``<EMAIL>``, ``<IP>`` or ``<SECRET>``."""
    items = find_sensitive(text)
    return _replace(text, items) if items else text


def redact_parts(*parts: str) -> list[str]:
    """Redact consecutive pieces of one text (before the cursor, the suggestion, after it) together.

    A secret split between pieces is found in the whole and masked in each piece it touches; the
    end of each piece is also checked for a token cut there (a secret still being typed).
    """
    whole = "".join(parts)
    items = find_sensitive(whole)
    offset = 0
    for part in parts[:-1]:
        partial = _PARTIAL_TOKEN.search(part)
        if partial:
            items.append(
                Sensitive("secret", offset + partial.start(), offset + partial.end(), partial.group())
            )
        offset += len(part)
    items = _resolve(items, whole)
    out = []
    offset = 0
    for part in parts:
        end = offset + len(part)
        inside = [
            Sensitive(i.kind, max(i.start, offset) - offset, min(i.end, end) - offset, "")
            for i in items
            if i.start < end and offset < i.end
        ]
        out.append(_replace(part, inside) if inside else part)
        offset = end
    return out

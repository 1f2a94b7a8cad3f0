"""A corpus of realistic FAKE secrets in realistic code, for the redaction tests.

Every value is drawn from a seeded generator in the format its vendor publishes (prefix, length,
alphabet), so the corpus is the same on every run and holds no real credential. Each case is a
snippet as a user would type it (Python, .env, HTTP, YAML, JSON, shell, docstrings) and the values
that must never reach the store, the logs or an export. ``pieces`` cases are a secret typed in several
edits: each piece is what one suggestion (or keystroke burst) added to the document.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass

SEED = 18
ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
BASE32 = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class Case:
    """``text`` holds every value in ``secrets``; ``pieces`` (if any) splits ``text`` into typed edits."""

    category: str
    text: str
    secrets: tuple[str, ...]
    pieces: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for secret in self.secrets:
            assert secret in self.text, (self.category, secret)
        if self.pieces:
            assert "".join(self.pieces) == self.text


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def chars(self, alphabet: str, n: int) -> str:
        while True:
            value = "".join(self.rng.choice(alphabet) for _ in range(n))
            # Real keys mix classes; a draw without a digit or a letter reads as a word, not a key.
            mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
            if (
                n < 8
                or mixed
                or not (set(alphabet) & set(string.ascii_letters) and set(alphabet) & set(string.digits))
            ):
                return value

    def password(self) -> str:
        """Passwords people pick: random ones and word-digit-symbol ones (never quotes or spaces)."""
        if self.rng.random() < 0.5:
            return self.rng.choice(string.ascii_letters) + self.chars(
                ALNUM + "!$%^*-_+=~", self.rng.randint(11, 19)
            )
        word = self.rng.choice(["Summer", "Falcon", "Orchid", "Tundra", "Copper", "Maple", "Zephyr"])
        return f"{word}{self.rng.randint(10, 9999)}{self.rng.choice('!$%*-_')}{self.chars(ALNUM, 4)}"

    def url_password(self) -> str:
        return self.chars(ALNUM + "-_~", self.rng.randint(12, 20))

    def ipv6_groups(self, n: int) -> list[str]:
        first = self.rng.choice(["2001", "2a00", "2a01", "2a02", "2600", "2604", "2406", "2c0f"])
        return [first] + [f"{self.rng.randint(1, 0xFFFF):x}" for _ in range(n - 1)]

    def jwt(self) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {
            "sub": self.chars(HEX, 12),
            "iat": self.rng.randint(1_600_000_000, 1_800_000_000),
            "role": "admin",
        }
        return f"{header}.{b64(json.dumps(claims).encode())}.{self.chars(B64URL, 43)}"

    def pem_body(self, lines: int) -> list[str]:
        return [self.chars(B64, 64) for _ in range(lines)] + [self.chars(B64, 24) + "=="]


def _vendor_tokens(g: _Gen) -> list[tuple[str, str]]:
    """(category, token) in each vendor's published format."""
    digits = string.digits
    return [
        ("github", "ghp_" + g.chars(ALNUM, 36)),
        ("github", "gho_" + g.chars(ALNUM, 36)),
        ("github", "ghs_" + g.chars(ALNUM, 36)),
        ("github", "github_pat_" + g.chars(ALNUM, 22) + "_" + g.chars(ALNUM, 59)),
        ("gitlab", "glpat-" + g.chars(B64URL, 20)),
        ("gitlab", "glpat-" + g.chars(ALNUM, 20)),
        ("gitlab", "glptt-" + g.chars(HEX, 40)),
        ("gitlab", "GR1348941" + g.chars(B64URL, 20)),
        ("slack", f"xoxb-{g.chars(digits, 12)}-{g.chars(digits, 13)}-{g.chars(ALNUM, 24)}"),
        (
            "slack",
            f"xoxp-{g.chars(digits, 12)}-{g.chars(digits, 12)}-{g.chars(digits, 13)}-{g.chars(HEX, 32)}",
        ),
        ("slack", f"xapp-1-A{g.chars(UPPER_ALNUM, 10)}-{g.chars(digits, 13)}-{g.chars(HEX, 64)}"),
        (
            "slack",
            f"https://hooks.slack.com/services/T{g.chars(UPPER_ALNUM, 8)}/B{g.chars(UPPER_ALNUM, 10)}/{g.chars(ALNUM, 24)}",
        ),
        ("stripe", "sk_live_" + g.chars(ALNUM, 24)),
        ("stripe", "sk_live_51" + g.chars(ALNUM, 97)),
        ("stripe", "rk_live_" + g.chars(ALNUM, 34)),
        ("stripe", "whsec_" + g.chars(ALNUM, 32)),
        ("google", "AIza" + g.chars(B64URL, 35)),
        ("google", "GOCSPX-" + g.chars(B64URL, 28)),
        ("google", "ya29.a0" + g.chars(B64URL, 120)),
        ("openai", "sk-proj-" + g.chars(B64URL, 156)),
        ("openai", "sk-" + g.chars(ALNUM, 20) + "T3BlbkFJ" + g.chars(ALNUM, 20)),
        ("anthropic", "sk-ant-api03-" + g.chars(B64URL, 93) + "AA"),
        ("huggingface", "hf_" + g.chars(string.ascii_letters, 34)),
        ("npm", "npm_" + g.chars(ALNUM, 36)),
        ("pypi", "pypi-AgEIcHlwaS5vcmc" + g.chars(B64URL, 70)),
        ("sendgrid", "SG." + g.chars(B64URL, 22) + "." + g.chars(B64URL, 43)),
        ("twilio", "SK" + g.chars(HEX, 32)),
        ("mailgun", "key-" + g.chars(HEX, 32)),
        ("digitalocean", "dop_v1_" + g.chars(HEX, 64)),
        ("shopify", "shpat_" + g.chars("abcdef" + digits, 32)),
        ("databricks", "dapi" + g.chars(HEX, 32)),
        ("jwt", g.jwt()),
        ("jwt", g.jwt()),
        ("telegram", f"{g.chars(digits, 10)}:AA{g.chars(B64URL, 33)}"),
        ("discord", f"https://discord.com/api/webhooks/{g.chars(digits, 18)}/{g.chars(B64URL, 68)}"),
        ("aws", "AKIA" + g.chars(BASE32, 16)),
        ("aws", "ASIA" + g.chars(BASE32, 16)),
    ]


# Contexts a token is typed in; {t} is the token, {n} a name fitting the vendor.
_TOKEN_CONTEXTS = [
    '{n} = "{t}"\n',
    "{N}={t}\n",
    "    {n}: {t}\n",
    '    "{n}": "{t}",\n',
    'client = Client(api_key="{t}", timeout=30)\n',
    "export {N}='{t}'\n",
    "# staging token: {t}\n",
    'resp = requests.get(url, headers={{"X-Token": "{t}"}})\n',
    'const {c} = process.env.{N} || "{t}";\n',
    '    """Call the API.\n\n    Example::\n\n        hook("{t}")\n    """\n',
]


def _token_cases(g: _Gen) -> list[Case]:
    cases = []
    for i, (category, token) in enumerate(_vendor_tokens(g)):
        name = f"{category}_token"
        # Two contexts per token, rotating, so every context meets several vendors.
        for context in (
            _TOKEN_CONTEXTS[i % len(_TOKEN_CONTEXTS)],
            _TOKEN_CONTEXTS[(i * 3 + 1) % len(_TOKEN_CONTEXTS)],
        ):
            camel = category + "Token"
            text = context.format(t=token, n=name, N=name.upper(), c=camel)
            cases.append(Case(category, text, (token,)))
    return cases


def _password_cases(g: _Gen) -> list[Case]:
    p = g.password
    templates = [
        'password = "{p}"\n',
        "DB_PASSWORD={p}\n",
        "  password: {p}\n",
        '{{"user": "svc", "password": "{p}"}}\n',
        "conn = psycopg2.connect(host=HOST, user='app', password='{p}', dbname='shop')\n",
        '    passwd: "{p}"\n',
        "const dbPassword = '{p}';\n",
        'String adminPwd = "{p}";\n',
        'password := "{p}"\n',
        "ENV POSTGRES_PASSWORD={p}\n",
        "export MYSQL_ROOT_PASSWORD={p}\n",
        'conn_str = "Server=db01;Database=shop;User Id=sa;Password={p};"\n',
        "app.config['SECRET_KEY'] = '{p}'\n",
        '        self.password = "{p}"\n',
        "mysqldump -u root --password={p} shop > dump.sql\n",
        "PGPASSWORD={p} psql -h db.internal -U app shop\n",
        "<password>{p}</password>\n",
        "machine api.example.com login deploy password {p}\n",
        'DATABASES = {{"default": {{"ENGINE": "django.db.backends.postgresql", "PASSWORD": "{p}"}}}}\n',
        'admin_pass = "{p}"  # TODO: move to vault\n',
        'r = requests.get(url, auth=("deploy", "{p}"))\n',
        "SMTP_PASS={p}\n",
        "spring.datasource.password={p}\n",
        "$password = '{p}';\n",
        "    secret: {p}\n",
        'API_SECRET = r"{p}"\n',
    ]
    cases = []
    for template in templates:
        value = p()
        cases.append(Case("password", template.format(p=value), (value,)))
    for template in (
        'engine = create_engine("postgresql://app:{p}@db.internal:5432/shop")\n',
        "MONGO_URL=mongodb+srv://admin:{p}@cluster0.x1y2z.mongodb.net/prod\n",
        'cache = redis.from_url("redis://:{p}@cache.internal:6379/0")\n',
        "amqp://guest:{p}@rabbit:5672/\n",
    ):
        value = g.url_password()
        cases.append(Case("url-password", template.format(p=value), (value,)))
    return cases


def _auth_header_cases(g: _Gen) -> list[Case]:
    bearer, basic = g.chars(B64URL, 40), base64.b64encode(f"deploy:{g.password()}".encode()).decode()
    opaque, basic2, key = (
        g.chars(ALNUM, 32),
        base64.b64encode(f"ci:{g.password()}".encode()).decode(),
        g.chars(HEX, 32),
    )
    jwt = g.jwt()
    return [
        Case(
            "http-auth",
            f"GET /v1/items HTTP/1.1\nHost: api.example.com\nAuthorization: Bearer {bearer}\n",
            (bearer,),
        ),
        Case(
            "http-auth",
            f'headers = {{"Authorization": "Basic {basic}", "Accept": "application/json"}}\n',
            (basic,),
        ),
        Case(
            "http-auth", f'curl -s -H "Authorization: Bearer {jwt}" https://api.example.com/v1/me\n', (jwt,)
        ),
        Case("http-auth", f'xhr.setRequestHeader("Authorization", "Bearer {opaque}");\n', (opaque,)),
        Case("http-auth", f"Proxy-Authorization: Basic {basic2}\n", (basic2,)),
        Case("http-auth", f'session.headers["Authorization"] = "Token {opaque[::-1]}"\n', (opaque[::-1],)),
        Case("http-auth", f"    headers: {{ 'x-api-key': '{key}' }},\n", (key,)),
        Case("http-auth", f"X-Api-Key: {key[::-1]}\n", (key[::-1],)),
    ]


def _ipv6_cases(g: _Gen) -> list[Case]:
    full = ":".join(f"{int(x, 16):04x}" for x in g.ipv6_groups(8))
    short = ":".join(g.ipv6_groups(8))
    compressed = ":".join(g.ipv6_groups(3)) + "::" + f"{g.rng.randint(1, 0xFFFF):x}"
    two = g.ipv6_groups(1)[0] + "::" + f"{g.rng.randint(1, 0xFFFF):x}"
    link_local = f"fe80::{g.rng.randint(1, 0xFFFF):x}:{g.rng.randint(1, 0xFFFF):x}:{g.rng.randint(1, 0xFFFF):x}:{g.rng.randint(1, 0xFFFF):x}"
    net = ":".join(g.ipv6_groups(4)) + "::"
    upper = ":".join(g.ipv6_groups(6)).upper() + "::1"
    server = ":".join(g.ipv6_groups(4)) + "::" + f"{g.rng.randint(1, 0xFFFF):x}"
    mapped = f"::ffff:{g.rng.randint(11, 99)}.{g.rng.randint(0, 255)}.{g.rng.randint(0, 255)}.{g.rng.randint(1, 254)}"
    return [
        Case("ipv6", f'SERVER_V6 = "{full}"\n', (full,)),
        Case("ipv6", f"    bind: {short}\n", (short,)),
        Case("ipv6", f'sock.connect(("{compressed}", 443, 0, 0))\n', (compressed,)),
        Case("ipv6", f"ping6 {two}\n", (two,)),
        Case("ipv6", f"iface = ipaddress.ip_interface('{link_local}%eth0')\n", (link_local,)),
        Case("ipv6", f"ip6tables -A INPUT -s {net}/64 -j ACCEPT\n", (net,)),
        Case("ipv6", f"    listen [{upper}]:443 ssl;\n", (upper,)),
        Case("ipv6", f'url = "http://[{server}]:8080/health"\n', (server,)),
        Case("ipv6", f"peer = '{mapped}'\n", (mapped,)),
    ]


def _aws_cases(g: _Gen) -> list[Case]:
    key_id, temp_id = "AKIA" + g.chars(BASE32, 16), "ASIA" + g.chars(BASE32, 16)
    secret, secret2 = g.chars(B64, 40), g.chars(B64, 40)
    session = "FwoGZXIvYXdzE" + g.chars(B64, 300)
    key_id2, temp_id2 = "AKIA" + g.chars(BASE32, 16), "ASIA" + g.chars(BASE32, 16)
    return [
        Case(
            "aws",
            f"AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\nAWS_DEFAULT_REGION=eu-west-1\n",
            (key_id, secret),
        ),
        Case(
            "aws",
            f"[default]\naws_access_key_id = {temp_id}\naws_secret_access_key = {secret2}\naws_session_token = {session}\n",
            (temp_id, secret2, session),
        ),
        Case("aws", f"export AWS_ACCESS_KEY_ID={temp_id2}\n", (temp_id2,)),
        Case(
            "aws",
            f's3 = boto3.client("s3", aws_access_key_id="{key_id2}", aws_secret_access_key="{secret[::-1]}")\n',
            (key_id2, secret[::-1]),
        ),
    ]


def _private_key_cases(g: _Gen) -> list[Case]:
    cases = []
    for kind in ("RSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"):
        body = g.pem_body(6)
        block = f"-----BEGIN {kind}-----\n" + "\n".join(body) + f"\n-----END {kind}-----\n"
        cases.append(Case("private-key", f'KEY = """{block}"""\n', tuple(body)))
    body = g.pem_body(4)
    escaped = "-----BEGIN PRIVATE KEY-----\\n" + "\\n".join(body) + "\\n-----END PRIVATE KEY-----\\n"
    cases.append(
        Case(
            "private-key",
            '{\n  "type": "service_account",\n  "private_key_id": "' + g.chars(HEX, 40) + '",\n'
            f'  "private_key": "{escaped}",\n  "client_email": "svc@proj.iam.gserviceaccount.com"\n}}\n',
            tuple(body),
        )
    )
    body = g.pem_body(5)[:4]  # typed so far: no END line yet
    cases.append(
        Case("private-key", "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(body) + "\n", tuple(body))
    )
    body = g.pem_body(5)
    pgp = (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n"
        + "\n".join(body)
        + "\n-----END PGP PRIVATE KEY BLOCK-----\n"
    )
    cases.append(Case("private-key", pgp, tuple(body)))
    return cases


def _generic_cases(g: _Gen) -> list[Case]:
    values = [
        g.chars(ALNUM, 32),
        g.chars(B64, 44),
        g.chars(B64URL, 40),
        g.chars(ALNUM, 40),
        g.chars(HEX, 64),
        g.chars(B64, 88),
    ]
    return [
        Case("generic", f'SIGNING_SECRET = "{values[0]}"\n', (values[0],)),
        Case("generic", f'ENCRYPTION_KEY = b"{values[1]}"\n', (values[1],)),
        Case("generic", f'    client_secret: "{values[2]}"\n', (values[2],)),
        Case("generic", f"const config = {{ apiKey: '{values[3]}', region: 'eu' }};\n", (values[3],)),
        Case("generic", f'WEBHOOK_SECRET = "{values[4]}"\n', (values[4],)),
        Case(
            "generic",
            f'AZURE_STORAGE = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={values[5]};EndpointSuffix=core.windows.net"\n',
            (values[5],),
        ),
        Case(
            "generic",
            f'CONSUMER_KEY = "{g.chars(ALNUM, 25)}"\nCONSUMER_SECRET = "{values[0][::-1]}"\n',
            (values[0][::-1],),
        ),
        Case("generic", f'settings = {{"private_token": "{values[2][::-1]}"}}\n', (values[2][::-1],)),
    ]


def _pieces_cases(g: _Gen) -> list[Case]:
    """A secret typed over several edits: each piece alone is nothing recognisable."""
    cases = []
    token = "ghp_" + g.chars(ALNUM, 36)
    text = f'GITHUB_TOKEN = "{token}"\n'
    cut = text.index(token)
    cases.append(Case("pieces", text, (token, token[4:16], token[16:28], token[28:]),
                      (text[: cut + 4], token[4:16], token[16:28], token[28:] + '"\n')))  # fmt: skip
    pw = g.password()
    text = f"db:\n  host: db.internal\n  password: {pw}\n"
    cut = text.index(pw)
    third = len(pw) // 3
    cases.append(
        Case("pieces", text, (pw,), (text[:cut], pw[:third], pw[third : 2 * third], pw[2 * third :] + "\n"))
    )
    body = g.pem_body(3)
    text = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + "".join(line + "\n" for line in body)
        + "-----END OPENSSH PRIVATE KEY-----\n"
    )
    head = "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    cases.append(
        Case(
            "pieces",
            text,
            tuple(body),
            (head, *(line + "\n" for line in body), "-----END OPENSSH PRIVATE KEY-----\n"),
        )
    )
    key = "sk_live_" + g.chars(ALNUM, 30)
    text = f"stripe.api_key = '{key}'\n"
    cut = text.index(key)
    cases.append(
        Case("pieces", text, (key, key[8:20], key[20:]), (text[: cut + 8], key[8:20], key[20:], "'\n"))
    )
    return cases


def corpus(seed: int = SEED) -> list[Case]:
    """Every case, the same for the same seed."""
    g = _Gen(seed)
    cases = (
        _password_cases(g)
        + _auth_header_cases(g)
        + _ipv6_cases(g)
        + _aws_cases(g)
        + _token_cases(g)
        + _private_key_cases(g)
        + _generic_cases(g)
        + _pieces_cases(g)
    )
    return [case for case in cases if case.secrets]


def secrets_of(cases: list[Case]) -> list[str]:
    """Every distinct value that must not survive, longest first."""
    return sorted({s for case in cases for s in case.secrets}, key=len, reverse=True)

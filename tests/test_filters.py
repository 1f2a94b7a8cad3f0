from typing import Any

import pytest

from hotfix_engine.filters import clean_suggestion, cut_loops, is_degenerate, stuttering_name
from hotfix_engine.well_formed import breaks_syntax


def test_empty_and_whitespace_are_dropped():
    assert clean_suggestion("", "x = ", "") is None
    assert clean_suggestion("   \n\t", "x = ", "") is None


def test_repeated_chunks_are_degenerate():
    assert is_degenerate("))))))))))))))")
    assert is_degenerate("foo foo foo foo foo foo foo foo")
    assert is_degenerate("a = 1\na = 1\na = 1")
    assert not is_degenerate("return a + b")


def test_replacement_characters_are_degenerate():
    assert is_degenerate("x = '\ufffd'")


def test_repeating_the_line_above_is_dropped():
    assert clean_suggestion("x = compute()", "x = compute()\n", "") is None


def test_repeating_text_after_cursor_is_dropped():
    assert clean_suggestion("return x", "def f(x):\n    ", "return x\n") is None


def test_overlap_with_the_rest_of_the_line_is_trimmed():
    assert clean_suggestion("value)", "print(", ")\n") == "value"


def test_suggestion_stops_before_rewriting_the_line_below():
    prefix = "def f(x):\n"
    suffix = "\n    return x\n"
    assert (
        clean_suggestion("    if x:\n        x += 1\n    return x", prefix, suffix)
        == "    if x:\n        x += 1"
    )


def test_good_suggestion_passes_through():
    assert clean_suggestion("return a + b", "def add(a, b):\n    ", "") == "return a + b"


def test_deep_indentation_is_not_degenerate():
    text = "if item == target:\n            return index"
    assert clean_suggestion(text, "    for item in items:\n        ", "") == text


def test_names_that_stutter_are_dropped() -> None:
    from hotfix_engine.filters import clean_suggestion, stuttering_name

    # Seen from the demo's broken adapter and from the base model typed into real code.
    assert stuttering_name(
        "None, items_by_item=None, items_by_item_by_item=None):", "def add_item(item, items="
    )
    assert stuttering_name("InvalidRequestResponseResponseError", "class InvalidRequestResponseError:\n")
    assert stuttering_name(
        "None, timeout_seconds_per_request_timeout=None):", "def get(url, timeout_seconds_per_request="
    )
    assert clean_suggestion("None, items_by_item_by_item=None):", "def add_item(item, items=", "") is None


def test_ordinary_names_pass_even_with_repeated_words() -> None:
    from hotfix_engine.filters import stuttering_name

    assert stuttering_name("None):", "def add_item(item, items=") is None
    assert stuttering_name("user_id_to_user[name]", "user_id_to_user = {}\nname = 'a'\nx = ") is None
    assert stuttering_name("str_to_str(value)", "") is None
    assert (
        stuttering_name("self.items.append(item)", "class Stack:\n    def push(self, item):\n        ")
        is None
    )
    assert stuttering_name("getattr(obj, name)", "") is None
    # A name the user's code already has is never judged.
    assert stuttering_name("data_data.keys()", "data_data = load()\n") is None


# Ordinary suggestions, in context: none may be dropped or changed. Several only look repeated.
LONG_CLASS = (
    'class Repository:\n    """Rows kept in memory."""\n\n'
    + "".join(f"    def get_{i}(self):\n        return self.rows[{i}]\n\n" for i in range(40))
    + "    def find(self, key):\n        "
)
DOC = '"""'


def _case(name: str, prefix: str, text: str, suffix: str = "", language: str = "python") -> Any:
    return pytest.param(prefix, text, suffix, language, id=name)


def _bad(
    name: str, prefix: str, text: str, suffix: str = "", language: str = "python", cut_to: str | None = None
) -> Any:
    return pytest.param(prefix, text, suffix, language, cut_to, id=name)


GOOD = [
    _case("return-sum", "def add(a, b):\n    ", "return a + b"),
    _case("copy-index", "def copy(a, b, n):\n    for i in range(n):\n        ", "a[i] = b[i]"),
    _case(
        "init-fields",
        "class Point:\n    def __init__(self, x, y):\n        ",
        "self.x = x\n        self.y = y",
    ),
    _case(
        "init-rest",
        "class Box:\n    def __init__(self, w, h, d):\n        self.w = w\n        ",
        "self.h = h\n        self.d = d",
    ),
    _case(
        "item-by-id",
        "def index(items):\n    ",
        "item_by_id = {item.id: item for item in items}\n    return item_by_id",
    ),
    _case(
        "subclass-error",
        "class ResponseError(Exception):\n    pass\n\n\nclass ",
        "InvalidResponseError(ResponseError):\n    pass",
    ),
    _case(
        "raise-known-name",
        "class InvalidRequestResponseError(Exception):\n    pass\n\n\ndef check(r):\n    if not r.ok:\n        raise ",
        "InvalidRequestResponseError(r.status)",
    ),
    _case(
        "shorter-name",
        "class InvalidRequestResponseError(Exception):\n    pass\n\n\ndef check(r):\n    if r.status >= 500:\n        raise ",
        "ResponseError(r.status)",
    ),
    _case("prefixed-name", "timeout_seconds = 30\n", "request_timeout_seconds = timeout_seconds * 2"),
    _case(
        "docstring",
        "class Rect:\n    def area(self):\n        ",
        f"{DOC}Return the area.{DOC}\n        return self.w * self.h",
    ),
    _case(
        "comment-paragraphs",
        "def parse(text):\n    ",
        '# Split on blank lines.\n    #\n    # Each block is one record.\n    return text.split("\\n\\n")',
    ),
    _case("banner-comment", "import os\n\n", "# " + "-" * 70),
    _case("print-rule", "def report(rows):\n    ", 'print("=" * 40)'),
    _case("rule-literal", "def report(rows):\n    ", 'line = "' + "-" * 40 + '"'),
    _case("linked-list", "def skip(node):\n    ", "return node.next.next"),
    _case("user-map", "user_id_to_user = {}\nname = 'a'\nx = ", "user_id_to_user[name]"),
    _case("str-to-str", "def convert(value):\n    return ", "str_to_str(value)"),
    _case(
        "two-guards",
        "def pick(x, y):\n    ",
        "if x is None:\n        return None\n    if y is None:\n        return None\n    return x + y",
    ),
    _case(
        "else-same-return",
        "def f(a, b):\n    if a:\n        if b:\n            return None\n        ",
        "else:\n            return None",
    ),
    _case("return-one-level-out", "def f(a, x):\n    if a:\n        return x\n    ", "return x"),
    _case("asserts", "def test_pair():\n    a, b = make_pair()\n    ", "assert a == 1\n    assert b == 1"),
    _case("dict-literal", "CONFIG = {\n    ", '"host": "localhost",\n    "port": 8080,\n}'),
    _case(
        "zero-grid",
        "def empty_board():\n    return [\n        ",
        "[0, 0, 0],\n        [0, 0, 0],\n        [0, 0, 0],\n    ]",
    ),
    _case(
        "argparse",
        "def build_parser():\n    parser = argparse.ArgumentParser()\n    ",
        'parser.add_argument("--input", type=str, help="input file")\n'
        '    parser.add_argument("--output", type=str, help="output file")\n    return parser',
    ),
    _case("cache-get", "def lookup(self, key):\n    ", "return self._cache[key]"),
    _case(
        "closing-paren",
        "result = compute(\n    first(\n        1,\n    ),\n    second(\n        2,\n    )\n",
        ")",
    ),
    _case(
        "try-except",
        "def load(path):\n    ",
        "try:\n        with open(path) as f:\n            return json.load(f)\n    except FileNotFoundError:\n        return None",
    ),
    _case(
        "elif-ladder",
        "def sign(x):\n    ",
        "if x > 0:\n        return 1\n    elif x < 0:\n        return -1\n    else:\n        return 0",
    ),
    _case(
        "fib-swap",
        "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        ",
        "a, b = b, a + b\n    return a",
    ),
    _case(
        "transpose",
        "def transpose(m):\n    for i in range(len(m)):\n        for j in range(i):\n            ",
        "m[i][j], m[j][i] = m[j][i], m[i][j]",
    ),
    _case("getattr", "def read(obj, name):\n    return ", "getattr(obj, name)"),
    _case("fstring", "def show(name, value):\n    return ", 'f"{name}: {value!r}"'),
    _case(
        "raise-fstring",
        "def check(value):\n    if value < 0:\n        ",
        'raise ValueError(f"bad value: {value!r}")',
    ),
    _case(
        "property",
        "class User:\n    def __init__(self, name):\n        self._name = name\n\n    ",
        "@property\n    def name(self):\n        return self._name",
    ),
    _case("default-arg", "def get(url, timeout=", "None):"),
    _case(
        "sorted-key", "def top(items):\n    return sorted(items, ", "key=lambda item: item[1], reverse=True)"
    ),
    _case("comprehension", "def squares(xs):\n    return ", "[x * x for x in xs if x % 2 == 0]"),
    _case(
        "while-next",
        "def last(node):\n    ",
        "while node.next is not None:\n        node = node.next\n    return node",
    ),
    _case(
        "long-class",
        LONG_CLASS,
        "for row in self.rows:\n            if row.key == key:\n                return row\n        return None",
    ),
    _case("close-string", 'def greet():\n    msg = "hello ', 'world"'),
    _case(
        "super-init",
        "class Child(Base):\n    def __init__(self, x):\n        ",
        "super().__init__()\n        self.x = x",
    ),
    _case("dataclass", "@dataclass\nclass Person:\n    ", "name: str\n    age: int = 0"),
    _case("call-argument", "def run():\n    result = compute(\n        ", "alpha=1,", "\n    )\n"),
    _case("inside-parens", "def area(r):\n    return math.pi * pow(", "r, 2", ")\n"),
    _case(
        "known-attribute",
        "class Store:\n    def __init__(self):\n        self.items_by_id = {}\n\n    def add(self, item):\n        ",
        "self.items_by_id[item.id] = item",
    ),
    _case(
        "status",
        'def test_home(client):\n    response = client.get("/")\n    ',
        "assert response.status_code == 200",
    ),
    _case("round-number", "def limits():\n    return ", "1000000000000"),
    _case(
        "cut-short-line", "def total(xs):\n    ", "return sum(x.price * x.quantity for x in xs if x.price >"
    ),
    _case("open-docstring", "def total(xs):\n    ", f"{DOC}Sum the prices of the items"),
    _case("comment-body", "def f():\n    ", "# TODO: implement"),
    _case("ends-at-opener", "def f(xs):\n    ", "for x in xs:"),
    _case(
        "match",
        "def f(cmd):\n    ",
        "match cmd:\n        case 'go':\n            return 1\n        case _:\n            return 0",
    ),
    _case(
        "async-with",
        "async def f(client):\n    ",
        "async with client.get(url) as r:\n        return await r.json()",
    ),
    _case(
        "brackets-in-docstring",
        f"def f():\n    {DOC}Compute the ",
        f"total (see above.\n\n    Args:\n        x: value]\n    {DOC}",
    ),
    _case("brackets-in-comment", "def f():\n    x = 1  # ", "foo) bar]"),
    _case(
        "closes-the-call", "def f(a):\n    result = compute(\n        a,\n        ", "b)\n    return result"
    ),
    _case("tabs", "def f(x):\n\tif x:\n\t\t", "return 1\n\treturn 2"),
    _case(
        "next-method",
        "class A:\n    def f(self):\n        ",
        "return 1\n\n    def g(self):\n        return 2",
    ),
    _case("back-to-top", "class A:\n    def f(self):\n        ", "return 1\n\n\ndef g():\n    return 2"),
    _case("after-users-repeat", "def f(x):\n    print(x)\n    print(x)", "\n    return x"),
    _case("else-branch", "def f(x):\n    if x:\n        return 1\n    ", "else:\n        return 2"),
    _case("except-branch", "def f():\n    try:\n        g()\n    ", "except ValueError:\n        pass"),
    _case("short-line-twice", "def f(i):\n    ", "i += 1\n    i += 1\n    return i"),
    _case("hex-literal", "def low_bits(x):\n    return ", "x & 0xFFFF_FFFF"),
    _case(
        "locale-codes",
        "locale_alias = {\n    'pl_pl': 'pl_PL.ISO8859-2',\n    ",
        "'ro_ro': 'ro_RO.ISO8859-2',",
    ),
    _case("hash-banner", "import os\n\n", "#" * 60),
    _case(
        "in-and-out-channels",
        "def block(channels, kernel_size):\n    return nn.Conv1d(\n        ",
        "channels,\n        channels,\n        kernel_size,\n    )",
    ),
    _case(
        "prose-in-docstring",
        f"{DOC}Helpers.\n\nArguments of open() are intended to b",
        "e used as keywords.\nIt's the caller's job (not ours) to check them.",
    ),
    _case(
        "dedent-past-the-window",
        "def f(ys, xc, xe):\n    if ys:\n        if xc:\n"
        + "            total = xc + xe\n" * 70
        + "            return total\n        ",
        "if xe >= 0:\n            return xc",
    ),
    _case(
        "same-line-below-one-level-out",
        "def f(a, b):\n    for x in a:\n        ",
        "if x:\n            continue\n        b.append(x)",
        "\n    b.append(x)\n",
    ),
    _case(
        "vowels",
        'def vowels_count(s):\n    """Count the vowels."""\n',
        '    vowels = "aeiouAEIOU"',
        "    return sum(c in vowels for c in s)\n",
    ),
    _case(
        "return-before-the-same-line-out",
        "def f(x, y):\n    if x:\n        if y:\n            return True\n",
        "        return False",
        "\n    return False\n",
    ),
    _case("crlf", "def f(x):\r\n    ", "y = x + 1\r\n    return y"),
    _case("js-block", "function add(a, b) {\n  ", "return a + b;\n}", "", "javascript"),
    _case("js-call", "const total = items.reduce(", "(sum, item) => sum + item.price, 0);", "", "javascript"),
    _case(
        "rust-lifetimes",
        "fn longest<'a>(x: &'a str, y: &'a str) -> &'a str {\n    ",
        "if x.len() > y.len() { x } else { y }\n}",
        "",
        "rust",
    ),
    _case("shell-case", 'case "$1" in\n  ', "start) run ;;", "", "shellscript"),
]

# Degenerate suggestions: each is dropped (None) or cut to the clean text before the loop.
BAD = [
    _bad(
        "items-by-item",
        "def add_item(item, items=",
        "None, items_by_item=None, items_by_item_by_item=None, items_by_item_by_item_by_item=None):",
    ),
    _bad(
        "empty-docstrings",
        "def create(name, ",
        f"users=None):\n    {DOC * 2}\n    {DOC * 2}\n    {DOC * 2}\n    {DOC * 2}",
        cut_to="users=None):",
    ),
    _bad(
        "timeout-grows",
        "def get(url, timeout_seconds_per_request=",
        "None, timeout_seconds_per_request_timeout=None):",
    ),
    _bad(
        "response-response",
        "class InvalidRequestResponseError(Exception):\n    pass\n\n\ndef check(r):\n    raise ",
        "InvalidRequestResponseResponseError(r)",
    ),
    _bad(
        "request-put-in",
        "class InvalidRequestResponseError(Exception):\n    pass\n\n\ndef check(r):\n    raise ",
        "InvalidRequestResponseRequestError(r)",
    ),
    _bad(
        "error-error",
        "class InvalidRequestResponseError(Exception):\n    pass\n\n\ndef check(r):\n    raise ",
        "InvalidRequestResponseErrorError(r)",
    ),
    _bad(
        "attribute-grows",
        "class Index:\n    def __init__(self):\n        ",
        "self.items = []\n        self.items_by_item = {}\n        self.items_by_item_by_item = {}",
        cut_to="self.items = []\n        self.items_by_item = {}",
    ),
    _bad(
        "line-thrice",
        "def f(a):\n    for x in a:\n        ",
        "total = compute(x)\n        total = compute(x)\n        total = compute(x)",
        cut_to="total = compute(x)",
    ),
    _bad(
        "line-twice",
        "def total(items):\n    total = 0\n    for item in items:\n        ",
        "total += item.price\n        total += item.price",
        cut_to="total += item.price",
    ),
    _bad("short-line-thrice", "def f():\n    ", "pass\n    pass\n    pass", cut_to="pass"),
    _bad("line-above", "def f(url):\n    result = fetch(url)\n    ", "result = fetch(url)"),
    _bad("line-above-mid-line", "def f(url):\n    result = fetch(url)\n    result = ", "fetch(url)"),
    _bad(
        "line-above-then-more",
        "def f(url):\n    result = fetch(url)\n    ",
        "result = fetch(url)\n    return result",
    ),
    _bad("lines-above", "def f(url):\n    if url:\n        log(url)\n    ", "if url:\n        log(url)"),
    _bad(
        "block-twice",
        "def f(xs):\n    out = []\n    for x in xs:\n        ",
        "if x:\n            out.append(x)\n        if x:\n            out.append(x)",
        cut_to="if x:\n            out.append(x)",
    ),
    _bad(
        "three-line-block-twice",
        "def f(path):\n    ",
        "with open(path) as fh:\n        data = fh.read()\n    print(data)\n"
        "    with open(path) as fh:\n        data = fh.read()\n    print(data)",
        cut_to="with open(path) as fh:\n        data = fh.read()\n    print(data)",
    ),
    _bad(
        "blank-between",
        "def f():\n    ",
        "x = load_config()\n\n    x = load_config()",
        cut_to="x = load_config()",
    ),
    _bad("line-end-loop", "let = 1\nfoo = ", "bar = bar = bar = bar = bar = bar = bar ="),
    _bad(
        "long-piece-loop",
        "def f():\n    ",
        "x = 1\n    values = [make(item), make(item), make(item), make(item), make(item)",
        cut_to="x = 1",
    ),
    _bad(
        "digits-loop",
        "large = 1000000\nvery_large = ",
        "1000000000\nsuper_large = 1000000000000000000000000000000000000000000000",
        cut_to="1000000000",
    ),
    _bad(
        "empty-comments",
        "def parse(text):\n    ",
        "# Parse the input.\n    #\n    #\n    #\n    #",
        cut_to="# Parse the input.",
    ),
    _bad("empty-comment-at-end", "def f():\n    ", "x = 1\n    #", cut_to="x = 1"),
    _bad("spaced-docstrings", "def f():\n    ", f"{DOC} {DOC}\n    {DOC} {DOC}\n    {DOC} {DOC}"),
    _bad("single-quoted-docstrings", "def f():\n    ", "x = 1\n    ''''''\n    ''''''", cut_to="x = 1"),
    _bad("empty-strings", "def f():\n    ", 'return 1\n    ""\n    ""', cut_to="return 1"),
    _bad("docstrings-on-one-line", "def f():\n    ", DOC * 8),
    _bad("dedents-into-nothing", "def f(x):\n    if x:\n        y = 1\n", "      z = 2\n    return y"),
    _bad("unexpected-indent", "def f(x):\n    y = x + 1\n    ", "return y\n        print(y)"),
    _bad("indented-twice", "def f(x):\n    y = x + 1\n    ", "    return y"),
    _bad("extra-paren", "def f(x, y=", "None)):"),
    _bad("closer-after-auto-close", "print(", "value))", ")\n"),
    _bad("wrong-closer", "def f(a, b):\n    result = ", "compute(a, b]"),
    _bad("broken-line", "def f(x):\n    ", "if x == :\n        return x"),
    _bad("body-not-indented", "def f(x):\n", "return x"),
    _bad("wrong-closer-in-class", LONG_CLASS, "return self.rows[key]]"),
    _bad("js-wrong-closer", "function f(a, b) {\n  return ", "compute(a, b];", "", "javascript"),
    _bad("js-closes-cursor-line", "function f(a) {\n  const xs = [a, ", "1, 2);", "", "javascript"),
]


@pytest.mark.parametrize(("prefix", "text", "suffix", "language"), GOOD)
def test_ordinary_suggestions_are_kept_as_they_are(
    prefix: str, text: str, suffix: str, language: str
) -> None:
    assert clean_suggestion(text, prefix, suffix, language=language) == text


@pytest.mark.parametrize(("prefix", "text", "suffix", "language", "cut_to"), BAD)
def test_degenerate_suggestions_are_dropped_or_cut(
    prefix: str, text: str, suffix: str, language: str, cut_to: str | None
) -> None:
    assert clean_suggestion(text, prefix, suffix, language=language) == cut_to


def test_the_sets_are_big_enough() -> None:
    assert len(GOOD) >= 40 and len(BAD) >= 20


def test_cut_loops_keeps_the_lines_before_the_loop() -> None:
    text = "x = 1\n    y = compute(x)\n    y = compute(x)\n    y = compute(x)"
    assert cut_loops(text, "def f():\n    ") == "x = 1\n    y = compute(x)"
    # A loop on the first line leaves nothing.
    assert cut_loops("None, items_by_item_by_item=None):", "def add(item, items=") == ""


def test_a_growing_name_is_one_that_puts_its_own_words_in_again() -> None:
    known = "def get(url, timeout_seconds_per_request="
    assert stuttering_name("timeout_seconds_per_request_timeout", known)
    assert stuttering_name("InvalidRequestResponseRequestError", "class InvalidRequestResponseError:\n")
    # A name that grows by words it did not have is an ordinary new name.
    assert stuttering_name("request_timeout_seconds", "timeout_seconds = 1\n") is None
    assert stuttering_name("InvalidResponseError", "class ResponseError:\n") is None
    assert stuttering_name("image_64_64", "") is None  # numbers repeat in real names
    # Names below the cursor are the user's too.
    assert stuttering_name("items_by_item_by_item", "x = ", "\nitems_by_item_by_item = {}\n") is None


def test_separators_and_round_numbers_are_not_degenerate() -> None:
    assert not is_degenerate("# " + "-" * 70)
    assert not is_degenerate('print("' + "=" * 40 + '")')
    assert not is_degenerate("x = 1000000000000")
    assert is_degenerate("x = " + "0" * 30)
    assert is_degenerate("<<<<<<<<<<<<<<<<")


def test_syntax_is_judged_only_where_the_suggestion_is_to_blame() -> None:
    # The user's own broken line is not held against the suggestion.
    assert not breaks_syntax("1", "def f(x):\n    y = = ", "", "python")
    # Incomplete is not invalid: an open bracket or block may be finished by the next suggestion.
    assert not breaks_syntax("compute(a,", "def f(a):\n    return ", "", "python")
    assert not breaks_syntax("if x:", "def f(x):\n    ", "", "python")
    # A window that starts inside a string cannot be judged, so nothing is dropped.
    prefix = 'def f():\n    sql = """\nSELECT *\nFROM t\n"""\n    return '
    assert not breaks_syntax("run(sql))", prefix, "", "python")
    assert breaks_syntax("run(sql))", "def f(sql):\n    return ", "", "python")


def test_other_languages_only_check_brackets() -> None:
    assert breaks_syntax("compute(a, b];", "function f(a, b) {\n  return ", "", "javascript")
    # A closer whose opener may lie above the window is not judged.
    prefix = "class A {\n" + "  x = 1;\n" * 100 + "  f() {\n    return 1;\n  "
    assert not breaks_syntax("}\n}\n}", prefix, "", "typescript")
    assert breaks_syntax("}\n}\n}", "class A {\n  f() {\n    return 1;\n  ", "", "typescript")
    assert not breaks_syntax("1) first item", "Steps:\n", "", "markdown")


def test_without_a_language_only_brackets_are_checked() -> None:
    # A Python syntax error is judged only when the request says the file is Python.
    assert clean_suggestion("if x == :\n        return x", "def f(x):\n    ", "") is not None
    assert clean_suggestion("if x == :\n        return x", "def f(x):\n    ", "", language="python") is None
    assert clean_suggestion("compute(a, b]", "result = ", "") is None

from hotfix_engine.stopping import CancelToken, LineScanner, StopRule


def cut(prefix: str, text: str, suffix: str = "", language: str = "python") -> str | None:
    decision = StopRule(prefix, suffix, language).check(text)
    return None if decision is None else text[: decision.cut]


def test_mid_line_statement_ends_at_its_newline():
    assert cut("x = foo(", "a, b)\ny = 2\n") == "a, b)"


def test_incomplete_line_keeps_generating():
    assert cut("x = ", "compute(1,") is None


def test_open_bracket_in_prefix_continues_statement_across_lines():
    prefix = "result = call(\n    first,\n    "
    assert cut(prefix, "second,\n)\nnext_statement()\n") == "second,\n)"


def test_brackets_inside_strings_and_comments_do_not_count():
    assert cut("msg = ", "'(' + \"[\"  # {\nother()\n") == "'(' + \"[\"  # {"


def test_block_opener_continues_until_dedent():
    prefix = "def f(items):\n    "
    text = "for item in items:\n        print(item)\n\n        total += item\n    return total\n"
    assert cut(prefix, text) == "for item in items:\n        print(item)\n\n        total += item"


def test_block_waits_for_dedent_before_deciding():
    assert cut("def f():\n    ", "if x:\n        y()\n") is None


def test_cursor_at_end_of_block_opener_completes_its_body():
    prefix = "def add(a, b):"
    assert cut(prefix, "\n    return a + b\n\ndef other():\n") == "\n    return a + b"


def test_blank_lines_before_statement_are_skipped_at_line_start():
    assert cut("x = 1\n", "\nprint(x)\ny\n") == "\nprint(x)"


def test_code_after_cursor_limits_suggestion_to_this_line():
    assert cut("print(", "value)\n    more()\n", suffix=")\nnext()") == "value)"


def test_line_continuation_backslash():
    assert cut("total = a + \\\n    ", "b + \\\n    c\nd\n") == "b + \\\n    c"


def test_triple_quoted_string_spanning_lines():
    assert cut("doc = ", '"""first (\nsecond\n"""\nafter()\n') == '"""first (\nsecond\n"""'


def test_brace_language_block_ends_with_closing_brace():
    prefix = "function f() {\n  "
    text = "if (x) {\n    y();\n  }\n  z();\n"
    assert cut(prefix, text, language="javascript") == "if (x) {\n    y();\n  }"


def test_scanner_tracks_depth():
    scanner = LineScanner()
    scanner.feed("a = [1, (2,")
    assert scanner.depth == 2
    scanner.feed("3)]")
    assert scanner.depth == 0


def test_cancel_token_counts_steps_after_set():
    token = CancelToken()
    token.step = 5
    token.set()
    token.step = 6
    assert token.is_set() and token.steps_after_cancel == 1


def test_mid_line_suggestion_ends_with_its_line_even_inside_brackets():
    # Typed mid-line, a suggestion finishes the line: no run of invented arguments on the next lines.
    assert cut("result = compute(", "first,\n    second,\n)\n") == "first,"
    assert cut("def add_item(item, items=", "None, extra=None,\n        more=None):\n") == "None, extra=None,"


def test_mid_line_suggestion_that_opens_a_block_ends_with_the_opener():
    assert cut("for item in items", ":\n    total += item\nafter()\n") == ":"


def test_end_of_block_opener_line_takes_the_body():
    assert cut("if ready:", "\n    go()\nlater()\n") == "\n    go()"

from hotfix_engine.filters import clean_suggestion, is_degenerate


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

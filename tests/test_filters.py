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

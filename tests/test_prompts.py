from tiny_model import build_tokenizer

from hotfix_engine.models import FimTokens
from hotfix_engine.prompts import build_prompt, tail_tokens


def test_short_prefix_is_kept_whole(tiny_loaded):
    tok = tiny_loaded.tokenizer
    ids = build_prompt(tok, "def add(a, b):\n    ", "", 512, None)
    assert tok.decode(ids, skip_special_tokens=True) == "def add(a, b):\n    "


def test_long_prefix_is_cut_to_budget_at_a_line_start(tiny_loaded):
    tok = tiny_loaded.tokenizer
    prefix = "".join(f"value_{i} = compute({i})\n" for i in range(400)) + "result = "
    ids = tail_tokens(tok, prefix, 64)
    assert 0 < len(ids) <= 64
    text = tok.decode(ids)
    assert prefix.endswith(text)
    assert prefix[len(prefix) - len(text) - 1] == "\n"


def test_typing_on_keeps_the_prompt_start_stable(tiny_loaded):
    tok = tiny_loaded.tokenizer
    prefix = "".join(f"item_{i} = fetch({i})\n" for i in range(300))
    typed = "result = combine(item_1, item_2)"
    prompts = [tail_tokens(tok, prefix + typed[:n], 400) for n in range(len(typed) + 1)]
    extended = 0
    for old, new in zip(prompts, prompts[1:], strict=False):
        shared = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), len(old))
        extended += shared >= len(old) - 2
    # The start moves only when the text crosses a grid line: almost every keystroke reuses the prompt.
    assert extended >= 0.9 * (len(prompts) - 1)


def test_multi_megabyte_prefix_is_cheap_and_bounded(tiny_loaded):
    tok = tiny_loaded.tokenizer
    prefix = "x = 1\n" * 600_000
    assert len(tail_tokens(tok, prefix, 128)) <= 128


def test_fim_layout_puts_suffix_after_sentinel():
    tok = build_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]})
    fim = FimTokens("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
    ids = build_prompt(tok, "def f(x):\n    ", "\n    return y\n", 256, fim)
    text = tok.decode(ids)
    assert text.index("<fim_prefix>") < text.index("def f") < text.index("<fim_suffix>")
    assert text.index("<fim_suffix>") < text.index("return y") < text.index("<fim_middle>")
    assert text.endswith("<fim_middle>")

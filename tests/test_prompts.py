import pytest
from tiny_gguf import FIM_TOKENS
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


REPO_FIM = FimTokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>", "<|repo_name|>")
PLAIN_FIM = FimTokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
HERE = "/work/shop/app/main.py"
OTHERS = (
    ("/work/shop/app/cart.py", "class Cart:\n    def total(self):\n        return 0\n"),
    ("/work/shop/tests/test_cart.py", "from app.cart import Cart\n"),
)


def repo_tokenizer():
    tok = build_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": list(FIM_TOKENS)})
    return tok


def test_repo_form_lays_out_other_files_before_the_file_being_completed():
    tok = repo_tokenizer()
    ids = build_prompt(tok, "cart = Cart()\n", "\nprint(cart)\n", 512, REPO_FIM, HERE, OTHERS)
    text = tok.decode(ids)
    assert text.startswith(
        "<|repo_name|>shop\n"
        "<|file_sep|>tests/test_cart.py\nfrom app.cart import Cart\n\n"  # the farther file first
        "<|file_sep|>app/cart.py\nclass Cart:\n"
    )
    assert "return 0\n\n<|file_sep|>app/main.py\n<|fim_prefix|>cart = Cart()\n<|fim_suffix|>" in text
    assert text.endswith("<|fim_middle|>")


def test_prompts_without_repository_tokens_or_suffix_stay_as_before():
    tok = repo_tokenizer()
    prefix, suffix = "cart = Cart()\n", "\nprint(cart)\n"
    for fim, after in ((PLAIN_FIM, suffix), (REPO_FIM, ""), (REPO_FIM, " \n"), (None, suffix)):
        assert build_prompt(tok, prefix, after, 512, fim, HERE, OTHERS) == build_prompt(
            tok, prefix, after, 512, fim
        )
    # No path: nowhere to put the file being completed; no other files: nothing worth the form.
    for path, others in (("", OTHERS), (HERE, ())):
        assert build_prompt(tok, prefix, suffix, 512, REPO_FIM, path, others) == build_prompt(
            tok, prefix, suffix, 512, REPO_FIM
        )


def test_other_files_get_at_most_a_third_cut_at_line_ends_nearest_first():
    tok = repo_tokenizer()
    nearest = "".join(f"def helper_{i}(value):\n    return value + {i}\n" for i in range(200))
    others = (("/r/pkg/near.py", nearest), ("/r/far/far.py", "FAR = 1\n"))
    prefix = "".join(f"item_{i} = fetch({i})\n" for i in range(300))
    budget = 600
    ids = build_prompt(tok, prefix, "\nreturn items\n", budget, REPO_FIM, "/r/pkg/main.py", others)
    start = ids.index(tok.convert_tokens_to_ids("<|fim_prefix|>"))
    assert start <= budget // 3
    assert len(ids) <= budget + 3  # the three FIM sentinels are not counted, as before
    text = tok.decode(ids[:start])
    assert "far.py" not in text  # the nearest file filled the share: the farther one is left out
    kept = text.split("<|file_sep|>pkg/near.py\n", 1)[1].split("<|file_sep|>", 1)[0]
    assert 0 < len(kept) < len(nearest) and nearest.startswith(kept) and kept.endswith("\n")
    # The prefix gets what the other files and the suffix left.
    fim_suffix = ids.index(tok.convert_tokens_to_ids("<|fim_suffix|>"))
    suffix_ids = len(ids) - fim_suffix - 2
    assert ids[start + 1 : fim_suffix] == tail_tokens(tok, prefix, budget - start - suffix_ids)


def test_typing_on_keeps_the_repository_prompt_start_stable():
    tok = repo_tokenizer()
    prefix = "".join(f"item_{i} = fetch({i})\n" for i in range(300))
    typed = "result = combine(item_1, item_2)"
    suffix = "\nreturn result\n"
    prompts = [build_prompt(tok, prefix + typed[:n], suffix, 500, REPO_FIM, HERE, OTHERS) for n in range(33)]
    head = prompts[0][: prompts[0].index(tok.convert_tokens_to_ids("<|fim_prefix|>")) + 1]
    assert all(p[: len(head)] == head for p in prompts)
    extended = 0
    for old, new in zip(prompts, prompts[1:], strict=False):
        old_prefix = old[: old.index(tok.convert_tokens_to_ids("<|fim_suffix|>"))]
        extended += new[: len(old_prefix) - 2] == old_prefix[:-2]
    assert extended >= 0.9 * (len(prompts) - 1)


def test_repository_tokens_are_found_beside_qwen_fim_tokens():
    from types import SimpleNamespace

    from hotfix_engine.models import _find_fim

    model = SimpleNamespace(config=SimpleNamespace(model_type="qwen2"))
    assert _find_fim(model, repo_tokenizer()) == REPO_FIM
    tok = build_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": list(FIM_TOKENS[:3])})
    assert _find_fim(model, tok) == PLAIN_FIM


def test_llama_cpp_engine_finds_repository_tokens_and_uses_path_and_context(tiny_gguf):
    pytest.importorskip("llama_cpp")
    from hotfix_engine.completion import CompletionRequest
    from hotfix_engine.runtimes import load_engine

    engine = load_engine(str(tiny_gguf), "llama.cpp")
    try:
        assert engine.loaded.fim == REPO_FIM
        request = CompletionRequest("x = 1\n", "\ny = 2\n", path=HERE, context_files=OTHERS)
        text = engine.tokenizer.decode(engine._prompt(request), skip_special_tokens=False)
        assert text.startswith("<|repo_name|>shop\n<|file_sep|>tests/test_cart.py\n")
        assert "<|file_sep|>app/main.py\n<|fim_prefix|>x = 1\n" in text
    finally:
        engine.close()

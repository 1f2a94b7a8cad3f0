"""Naming the bug pattern of a single-statement fix, after the SStuB catalogues.

The categories follow ManySStuBs4J (Karampatsis & Sutton, MSR 2020) and PySStuBs (Kamienski et al.,
MSR 2021): the two statements are parsed and compared node by node down to the smallest subtree that
holds every difference, and that subtree (with its parent) names the change. Fragments that do not
parse fall back to comparing tokens, which still names one-token changes.
"""

from __future__ import annotations

import ast
import difflib
import io
import keyword
import tokenize
from collections.abc import Sequence

from hotfix_engine.pairs import normalize_statement
from hotfix_engine.patterns.fragments import parse_statement

CATEGORIES = (
    "change_operator",
    "change_unary_operator",
    "change_operand",
    "swap_operands",
    "extend_expression",
    "reduce_expression",
    "change_identifier",
    "change_numeric_literal",
    "change_boolean_literal",
    "change_string_literal",
    "change_attribute",
    "more_arguments",
    "fewer_arguments",
    "swap_arguments",
    "change_caller",
    "wrong_function_name",
    "add_function_around_expression",
    "remove_function_around_expression",
    "add_method_call",
    "remove_method_call",
    "more_specific_condition",
    "less_specific_condition",
    "add_elements",
    "remove_elements",
    "swap_elements",
    "same",
    "other",
)

_IGNORED_FIELDS = {"ctx", "type_comment", "kind"}
Path = list[tuple[ast.AST, str]]


def _dump(node: object) -> str:
    return ast.dump(node) if isinstance(node, ast.AST) else repr(node)


def _same(a: object, b: object) -> bool:
    return _dump(a) == _dump(b)


def _focus(a: ast.AST, b: ast.AST) -> tuple[ast.AST, ast.AST, Path] | None:
    """The smallest pair of subtrees holding every difference, and the path to them; None if equal."""
    path: Path = []
    while True:
        if type(a) is not type(b):
            return a, b, path
        differing: list[tuple[ast.AST, ast.AST, str]] = []
        for name in a._fields:
            if name in _IGNORED_FIELDS:
                continue
            left, right = getattr(a, name, None), getattr(b, name, None)
            if isinstance(left, list) and isinstance(right, list):
                if len(left) != len(right):
                    return a, b, path
                differing += [(x, y, name) for x, y in zip(left, right, strict=True) if not _same(x, y)]
            elif isinstance(left, ast.AST) and isinstance(right, ast.AST):
                if not _same(left, right):
                    differing.append((left, right, name))
            elif type(left) is not type(right) or left != right:
                return a, b, path
        if not differing:
            return None
        if len(differing) > 1 or not isinstance(differing[0][0], ast.AST):
            return a, b, path
        path.append((a, differing[0][2]))
        a, b = differing[0][0], differing[0][1]


def _contains(container: list[ast.expr], node: ast.AST) -> bool:
    return any(_same(item, node) for item in container)


def _condition(a: ast.AST, b: ast.AST) -> str | None:
    """More or less specific: a conjunct added or removed, or an alternative added or removed."""

    def values(node: ast.AST, op: type) -> list[ast.expr] | None:
        return node.values if isinstance(node, ast.BoolOp) and isinstance(node.op, op) else None

    for op, narrower in ((ast.And, True), (ast.Or, False)):
        grown, shrunk = values(b, op), values(a, op)
        if grown is not None and (
            _contains(grown, a) or (shrunk is not None and all(_contains(grown, v) for v in shrunk))
        ):
            return "more_specific_condition" if narrower else "less_specific_condition"
        if shrunk is not None and (
            _contains(shrunk, b) or (grown is not None and all(_contains(shrunk, v) for v in grown))
        ):
            return "less_specific_condition" if narrower else "more_specific_condition"
    return None


_TESTS = (
    (ast.If, "test"),
    (ast.While, "test"),
    (ast.IfExp, "test"),
    (ast.Assert, "test"),
    (ast.comprehension, "ifs"),
)


def _in_test(path: Path) -> bool:
    """Whether the change sits in a condition, where "more/less specific" applies (SStuB's if)."""
    return any(isinstance(node, kind) and name == field for node, name in path for kind, field in _TESTS)


def _sequence(a: Sequence[ast.AST], b: Sequence[ast.AST], longer: str, shorter: str, swapped: str) -> str:
    if len(b) > len(a):
        return longer
    if len(b) < len(a):
        return shorter
    return swapped if sorted(map(_dump, a)) == sorted(map(_dump, b)) else "other"


def _literal(a: ast.Constant, b: ast.Constant) -> str:
    kinds = {type(a.value), type(b.value)}
    if kinds == {bool}:
        return "change_boolean_literal"
    if bool not in kinds and kinds <= {int, float, complex}:
        return "change_numeric_literal"
    if kinds <= {str, bytes}:
        return "change_string_literal"
    return "change_operand"


def _wraps(outer: ast.AST, inner: ast.AST) -> str | None:
    """How ``outer`` is built around ``inner``: a call, a method call, an operation, a container."""
    if isinstance(outer, ast.Call):
        if isinstance(outer.func, ast.Attribute) and _same(outer.func.value, inner):
            return "method"
        if _contains(outer.args, inner) or any(_same(k.value, inner) for k in outer.keywords):
            return "function"
        if _same(outer.func, inner) and not outer.args and not outer.keywords:
            return "method"
    if isinstance(outer, ast.Attribute) and _same(outer.value, inner):
        return "attribute"
    if isinstance(outer, ast.BinOp) and (_same(outer.left, inner) or _same(outer.right, inner)):
        return "operation"
    if isinstance(outer, ast.BoolOp) and _contains(outer.values, inner):
        return "operation"
    if isinstance(outer, ast.UnaryOp) and _same(outer.operand, inner):
        return "unary"
    if isinstance(outer, ast.Tuple | ast.List | ast.Set) and _contains(outer.elts, inner):
        return "container"
    return None


_WRAP_NAMES = {
    "method": ("add_method_call", "remove_method_call"),
    "function": ("add_function_around_expression", "remove_function_around_expression"),
    "attribute": ("change_attribute", "change_attribute"),
    "operation": ("extend_expression", "reduce_expression"),
    "unary": ("change_unary_operator", "change_unary_operator"),
    "container": ("add_elements", "remove_elements"),
}


def _classify_nodes(a: ast.AST, b: ast.AST, path: Path) -> str:
    parent, field = path[-1] if path else (None, "")
    in_callee = any(isinstance(node, ast.Call) and name == "func" for node, name in path)
    if isinstance(a, ast.unaryop) and isinstance(b, ast.unaryop):
        return "change_unary_operator"
    if isinstance(a, ast.operator | ast.cmpop | ast.boolop) and isinstance(
        b, ast.operator | ast.cmpop | ast.boolop
    ):
        return "change_operator"
    if isinstance(a, ast.Constant) and isinstance(b, ast.Constant):
        return _literal(a, b)
    condition = _condition(a, b) if _in_test(path) else None
    if condition:
        return condition
    if isinstance(a, ast.Call) and isinstance(b, ast.Call) and _same(a.func, b.func):
        return _sequence(
            [*a.args, *a.keywords],
            [*b.args, *b.keywords],
            "more_arguments",
            "fewer_arguments",
            "swap_arguments",
        )
    if isinstance(a, ast.Tuple | ast.List | ast.Set) and type(a) is type(b):
        return _sequence(a.elts, b.elts, "add_elements", "remove_elements", "swap_elements")
    if isinstance(a, ast.Dict) and isinstance(b, ast.Dict) and len(a.keys) != len(b.keys):
        return "add_elements" if len(b.keys) > len(a.keys) else "remove_elements"
    same_binop = isinstance(a, ast.BinOp) and isinstance(b, ast.BinOp) and type(a.op) is type(b.op)
    if same_binop and _same(a.left, b.right) and _same(a.right, b.left):  # type: ignore[attr-defined]
        return "swap_operands"
    one_compare = isinstance(a, ast.Compare) and isinstance(b, ast.Compare) and len(a.ops) == 1 == len(b.ops)
    if one_compare and _same(a.left, b.comparators[0]) and _same(a.comparators[0], b.left):  # type: ignore[attr-defined]
        return "swap_operands"
    if in_callee or (isinstance(parent, ast.Call) and field == "func"):
        callee_is_a = isinstance(parent, ast.Call) and field == "func"
        if callee_is_a and isinstance(a, ast.Attribute) and isinstance(b, ast.Attribute) and a.attr == b.attr:
            return "change_caller"
        return "wrong_function_name" if callee_is_a else "change_caller"
    grown, shrunk = _wraps(b, a), _wraps(a, b)
    if grown:
        return _WRAP_NAMES[grown][0]
    if shrunk:
        return _WRAP_NAMES[shrunk][1]
    if isinstance(a, ast.Name) and isinstance(b, ast.Name):
        return "change_identifier"
    if isinstance(a, ast.Attribute) and isinstance(b, ast.Attribute):
        return "change_attribute" if _same(a.value, b.value) else "change_identifier"
    if isinstance(parent, ast.BinOp | ast.Compare | ast.BoolOp):
        return "change_operand"
    return "other"


_SKIPPED_TOKENS = {
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.COMMENT,
    tokenize.ENDMARKER,
}


def _tokens(text: str) -> list[tuple[int, str]]:
    tokens: list[tuple[int, str]] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text.strip() + "\n").readline):
            if token.type not in _SKIPPED_TOKENS:
                tokens.append((token.type, token.string))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # an unclosed bracket at the end of a fragment: the tokens so far still count
    return tokens


def _classify_tokens(buggy: str, fixed: str) -> str:
    a, b = _tokens(buggy), _tokens(fixed)
    if a == b:
        # Tokens can hide a change (a ``#`` inside an unterminated regex fragment starts a comment).
        return "same" if normalize_statement(buggy) == normalize_statement(fixed) else "other"
    changes = [
        op for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if op[0] != "equal"
    ]
    if len(changes) != 1 or changes[0][0] != "replace":
        return "other"
    _, i1, i2, j1, j2 = changes[0]
    if i2 - i1 != 1 or j2 - j1 != 1:
        return "other"
    (kind_a, text_a), (kind_b, text_b) = a[i1], b[j1]
    if kind_a != kind_b:
        return "other"
    if kind_a == tokenize.OP:
        return "other" if text_a in "()[]{},:;" or text_b in "()[]{},:;" else "change_operator"
    if kind_a == tokenize.NUMBER:
        return "change_numeric_literal"
    if kind_a == tokenize.STRING:
        return "change_string_literal"
    if {text_a, text_b} <= {"True", "False"}:
        return "change_boolean_literal"
    if keyword.iskeyword(text_a) or keyword.iskeyword(text_b):
        return "change_operator" if {text_a, text_b} <= {"and", "or", "is", "in", "not"} else "other"
    return "change_identifier"


def classify_pair(buggy: str, fixed: str) -> str:
    """The SStuB-style category (one of :data:`CATEGORIES`) of the change from ``buggy`` to ``fixed``."""
    tree_a, tree_b = parse_statement(buggy), parse_statement(fixed)
    if tree_a is None or tree_b is None:
        return _classify_tokens(buggy, fixed)
    focus = _focus(tree_a, tree_b)
    if focus is None:
        return "same"
    return _classify_nodes(*focus)

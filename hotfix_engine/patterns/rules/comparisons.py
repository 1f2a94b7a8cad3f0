"""Comparisons that do not test what they seem to: ``== None``, ``== True``, ``is`` with a literal,
``type(x) == T`` and equality with NaN."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator

from hotfix_engine.patterns.rules.framework import (
    Context,
    Hit,
    dotted_name,
    hit,
    is_const,
    replace_node,
    rule,
)

_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}

# What an operator of a comparison chain becomes, given it and its two sides (None: unchanged).
NewOperator = Callable[[ast.cmpop, ast.expr, ast.expr], str | None]


def _rewritten_compare(node: ast.Compare, ctx: Context, new_op: NewOperator) -> str | None:
    """``node`` rewritten with the operators ``new_op`` replaces, or None when it replaces none:
    ``a == None < b`` becomes ``a is None < b``."""
    ops = [_OPS[type(op)] for op in node.ops]
    found = False
    left = node.left
    for index, (op, right) in enumerate(zip(node.ops, node.comparators, strict=True)):
        replacement = new_op(op, left, right)
        if replacement is not None:
            ops[index] = replacement
            found = True
        left = right
    if not found:
        return None
    parts = [ctx.src(node.left)]
    for text, right in zip(ops, node.comparators, strict=True):
        parts += [text, ctx.src(right)]
    return " ".join(parts)


def _operator_rule(rule_id: str, description: str, message: str) -> Callable[[NewOperator], NewOperator]:
    """Register a rule that rewrites operators of a comparison chain: the decorated function gets one
    operator with its two sides and returns the operator to write instead, or None to keep it."""

    def register(new_op: NewOperator) -> NewOperator:
        @rule(rule_id, description, True, ast.Compare)
        def check(node: ast.AST, ctx: Context) -> Iterator[Hit]:
            assert isinstance(node, ast.Compare)
            fixed = _rewritten_compare(node, ctx, new_op)
            if fixed is not None:
                yield hit(node, message, replace_node(node, fixed))

        return new_op

    return register


@_operator_rule(
    "none-comparison",
    "`== None` / `!= None` call __eq__; compare identity with `is None`",
    "comparison to None with ==/!=; use `is None` / `is not None`",
)
def _identity_for_none(op: ast.cmpop, left: ast.expr, right: ast.expr) -> str | None:
    if isinstance(op, ast.Eq | ast.NotEq) and (is_const(left, None) or is_const(right, None)):
        return "is" if isinstance(op, ast.Eq) else "is not"
    return None


@rule(
    "bool-comparison",
    "`== True` / `== False` compares to a singleton; test the truth value",
    True,
    ast.Compare,
)
def _bool_comparison(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Compare)
    if len(node.ops) != 1 or not isinstance(node.ops[0], ast.Eq | ast.NotEq):
        return
    left, right = node.left, node.comparators[0]
    for value, other in ((right, left), (left, right)):
        if isinstance(value, ast.Constant) and isinstance(value.value, bool):
            positive = value.value == isinstance(node.ops[0], ast.Eq)
            text = ctx.src(other)
            fixed = text if positive else f"not {text}"
            yield hit(
                node, f"comparison to {value.value} with ==/!=; use `{fixed}`", replace_node(node, fixed)
            )
            return


_SINGLETONS = (type(None), bool, type(Ellipsis))


@_operator_rule(
    "is-literal",
    "`is` with a str, number or container literal tests identity, not equality",
    "`is` with a literal compares identity; use `==` / `!=`",
)
def _equality_for_literal(op: ast.cmpop, left: ast.expr, right: ast.expr) -> str | None:
    if not isinstance(op, ast.Is | ast.IsNot):
        return None
    for side in (left, right):
        literal = isinstance(side, ast.List | ast.Dict | ast.Set | ast.Tuple | ast.JoinedStr) or (
            isinstance(side, ast.Constant) and not isinstance(side.value, _SINGLETONS)
        )
        if literal:
            return "==" if isinstance(op, ast.Is) else "!="
    return None


@rule("type-comparison", "`type(x) == T` ignores subclasses; use isinstance(x, T)", True, ast.Compare)
def _type_comparison(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Compare)
    if len(node.ops) != 1 or not isinstance(node.ops[0], ast.Eq | ast.NotEq | ast.Is | ast.IsNot):
        return
    call, other = node.left, node.comparators[0]
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "type"):
        call, other = other, node.left
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "type"):
        return
    if len(call.args) != 1 or call.keywords or not dotted_name(other):
        return
    fixed = f"isinstance({ctx.src(call.args[0])}, {ctx.src(other)})"
    if isinstance(node.ops[0], ast.NotEq | ast.IsNot):
        fixed = f"not {fixed}"
    yield hit(node, f"type comparison ignores subclasses; use `{fixed}`", replace_node(node, fixed))


def _nan_module(node: ast.AST) -> str | None:
    """``math`` for float('nan') and math.nan, ``np`` for np.nan, else None."""
    if isinstance(node, ast.Call) and dotted_name(node.func) == "float" and len(node.args) == 1:
        arg = node.args[0]
        if (
            isinstance(arg, ast.Constant)
            and isinstance(arg.value, str)
            and arg.value.strip().lower() == "nan"
        ):
            return "math"
    dotted = dotted_name(node)
    if dotted.endswith(".nan") or dotted.endswith(".NaN"):
        module = dotted.rsplit(".", 1)[0]
        return "math" if module == "math" else module
    return None


@rule("nan-comparison", "NaN is never equal to anything, itself included; use isnan()", True, ast.Compare)
def _nan_comparison(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Compare)
    if len(node.ops) != 1 or not isinstance(node.ops[0], ast.Eq | ast.NotEq):
        return
    for nan, other in ((node.comparators[0], node.left), (node.left, node.comparators[0])):
        module = _nan_module(nan)
        if module:
            fixed = f"{module}.isnan({ctx.src(other)})"
            if isinstance(node.ops[0], ast.NotEq):
                fixed = f"not {fixed}"
            yield hit(
                node,
                f"comparison with NaN is always {isinstance(node.ops[0], ast.NotEq)}; use `{fixed}`",
                replace_node(node, fixed),
            )
            return

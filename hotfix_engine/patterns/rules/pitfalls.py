"""Python pitfalls: code that runs but does not do what it says (a shared mutable default, an
``except:`` that swallows Ctrl-C, an assert that is always true, an exception never raised)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from hotfix_engine.patterns.rules.framework import Context, Edit, Hit, dotted_name, hit, replace_node, rule

_MUTABLE_CALLS = {
    "list",
    "dict",
    "set",
    "collections.defaultdict",
    "defaultdict",
    "collections.OrderedDict",
    "OrderedDict",
}


@rule(
    "mutable-default",
    "a mutable default argument is shared by every call; default to None",
    True,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
)
def _mutable_default(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    args = node.args  # type: ignore[attr-defined]
    for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
        mutable = isinstance(
            default, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp
        ) or (isinstance(default, ast.Call) and dotted_name(default.func) in _MUTABLE_CALLS)
        if mutable:
            yield hit(
                default,
                f"mutable default `{ctx.src(default)}` is shared between calls; default to None and create it in the body",
                replace_node(default, "None"),
            )


@rule(
    "bare-except",
    "`except:` also catches KeyboardInterrupt and SystemExit; name the exception",
    True,
    ast.ExceptHandler,
)
def _bare_except(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.ExceptHandler)
    if node.type is None:
        edit = Edit(node.lineno, node.col_offset, node.col_offset + len("except"), "except Exception")
        yield Hit(
            node.lineno,
            node.col_offset,
            node.lineno,
            node.col_offset + len("except"),
            "bare `except:` catches KeyboardInterrupt and SystemExit; use `except Exception:`",
            (edit,),
        )


@rule(
    "assert-tuple", "`assert (cond, msg)` asserts a non-empty tuple, which is always true", True, ast.Assert
)
def _assert_tuple(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Assert)
    if isinstance(node.test, ast.Tuple) and node.test.elts:
        elts = node.test.elts
        fixed = (
            f"assert {ctx.src(elts[0])}, {ctx.src(elts[1])}" if len(elts) == 2 and node.msg is None else None
        )
        yield hit(
            node,
            "assert on a tuple is always true; write `assert cond, msg`",
            replace_node(node, fixed) if fixed else None,
        )


_ERROR_NAME = re.compile(r"^[A-Z]\w*(Error|Exception|Warning)$")


@rule("exception-not-raised", "an exception is created but not raised (missing `raise`)", True, ast.Expr)
def _not_raised(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Expr)
    call = node.value
    if isinstance(call, ast.Call) and _ERROR_NAME.match(dotted_name(call.func).rsplit(".", 1)[-1]):
        edit = Edit(node.lineno, node.col_offset, node.col_offset, "raise ")
        yield hit(node, f"`{dotted_name(call.func)}(...)` is created but never raised; add `raise`", (edit,))

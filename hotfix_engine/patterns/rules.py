"""Rule detectors: Python bugs and leaks that can be recognised from one statement, with fixes.

Each rule has an id, a one-line description and a check on AST nodes (or on the text, for the
privacy rules). A check yields :class:`Hit` objects; where a deterministic fix exists the hit carries
the edits that make it, and the finding's ``fix`` is the corrected line. Code is parsed with
:func:`~hotfix_engine.patterns.fragments.parse_pieces`, so a single completed line or a file with a
syntax error elsewhere is still checked.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hotfix_engine.patterns.fragments import Piece, parse_pieces
from hotfix_engine.redact import find_sensitive


@dataclass(frozen=True)
class Edit:
    """Replace bytes ``[start, end)`` of AST line ``lineno`` (positions as the AST gives them)."""

    lineno: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    lineno: int
    col: int
    end_lineno: int
    end_col: int
    message: str
    edits: tuple[Edit, ...] | None = None


@dataclass(frozen=True)
class Finding:
    """A rule that fired. ``line``/``col`` are 1-based (as editors print them); ``end_col`` is the
    1-based column just after the span. ``fix`` is the whole corrected line, or None."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    pattern_id: str
    message: str
    fix: str | None


class Context:
    """What a check may look at besides its node: the piece's source and the whole text."""

    def __init__(self, piece: Piece, text: str) -> None:
        self.piece = piece
        self.text = text
        self._assignments: dict[str, list[tuple[int, ast.expr, bool]]] | None = None

    def src(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.piece.source, node) or ""

    def assigned_before(self, node: ast.AST, lineno: int) -> tuple[ast.expr, bool] | None:
        """For a name, the value last assigned to it before ``lineno`` and whether it (or a later
        ``+=``) builds a string from values: ``query = "... %s" % x`` two lines above ``execute(query)``."""
        if not isinstance(node, ast.Name):
            return None
        if self._assignments is None:
            self._assignments = {}
            for child in ast.walk(self.piece.tree):
                if isinstance(child, ast.Assign) and len(child.targets) == 1:
                    target, value, augmented = child.targets[0], child.value, False
                elif isinstance(child, ast.AnnAssign) and child.value is not None:
                    target, value, augmented = child.target, child.value, False
                elif isinstance(child, ast.AugAssign) and isinstance(child.op, ast.Add):
                    target, value, augmented = child.target, child.value, True
                else:
                    continue
                if isinstance(target, ast.Name):
                    self._assignments.setdefault(target.id, []).append((child.lineno, value, augmented))
        built = False
        for line, value, augmented in sorted(self._assignments.get(node.id, []), key=lambda e: -e[0]):
            if line >= lineno:
                continue
            if augmented:
                built = built or not isinstance(value, ast.Constant) or _built_string(value)
                continue
            return value, built or _built_string(value)
        return None


Check = Callable[[ast.AST, Context], Iterator[Hit]]


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    fixable: bool
    node_types: tuple[type[ast.AST], ...]
    check: Check


RULES: list[Rule] = []
TEXT_RULES: dict[str, Rule] = {}


def rule(
    rule_id: str, description: str, fixable: bool, *node_types: type[ast.AST]
) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        RULES.append(Rule(rule_id, description, fixable, node_types, check))
        return check

    return register


def _span(node: ast.AST) -> tuple[int, int, int, int]:
    """(lineno, col, end_lineno, end_col) of a node that has a position (expressions, statements)."""
    lineno: int = getattr(node, "lineno")  # noqa: B009 - ast.AST itself declares no position
    col: int = getattr(node, "col_offset")  # noqa: B009
    return (
        lineno,
        col,
        getattr(node, "end_lineno", None) or lineno,
        getattr(node, "end_col_offset", None) or col,
    )


def _hit(node: ast.AST, message: str, edits: tuple[Edit, ...] | None = None) -> Hit:
    return Hit(*_span(node), message, edits)


def _replace(node: ast.AST, text: str) -> tuple[Edit, ...] | None:
    """An edit replacing ``node``, or None when it spans lines (fixes are single-line)."""
    lineno, col, end_lineno, end_col = _span(node)
    if lineno != end_lineno:
        return None
    return (Edit(lineno, col, end_col, text),)


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a name or attribute chain, else ""."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _keyword(call: ast.Call, name: str) -> ast.keyword | None:
    return next((kw for kw in call.keywords if kw.arg == name), None)


def _is_const(node: ast.AST | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is type(value) and node.value == value


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


def _rebuild_compare(node: ast.Compare, ctx: Context, ops: list[str]) -> str:
    parts = [ctx.src(node.left)]
    for op, right in zip(ops, node.comparators, strict=True):
        parts += [op, ctx.src(right)]
    return " ".join(parts)


def _compare_sides(node: ast.Compare) -> Iterator[tuple[int, ast.cmpop, ast.expr, ast.expr]]:
    left = node.left
    for index, (op, right) in enumerate(zip(node.ops, node.comparators, strict=True)):
        yield index, op, left, right
        left = right


@rule(
    "none-comparison", "`== None` / `!= None` call __eq__; compare identity with `is None`", True, ast.Compare
)
def _none_comparison(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Compare)
    ops = [_OPS[type(op)] for op in node.ops]
    found = False
    for index, op, left, right in _compare_sides(node):
        if isinstance(op, ast.Eq | ast.NotEq) and (_is_const(left, None) or _is_const(right, None)):
            ops[index] = "is" if isinstance(op, ast.Eq) else "is not"
            found = True
    if found:
        yield _hit(
            node,
            "comparison to None with ==/!=; use `is None` / `is not None`",
            _replace(node, _rebuild_compare(node, ctx, ops)),
        )


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
            yield _hit(node, f"comparison to {value.value} with ==/!=; use `{fixed}`", _replace(node, fixed))
            return


_SINGLETONS = (type(None), bool, type(Ellipsis))


@rule(
    "is-literal",
    "`is` with a str, number or container literal tests identity, not equality",
    True,
    ast.Compare,
)
def _is_literal(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Compare)
    ops = [_OPS[type(op)] for op in node.ops]
    found = False
    for index, op, left, right in _compare_sides(node):
        if not isinstance(op, ast.Is | ast.IsNot):
            continue
        for side in (left, right):
            literal = isinstance(side, ast.List | ast.Dict | ast.Set | ast.Tuple | ast.JoinedStr) or (
                isinstance(side, ast.Constant) and not isinstance(side.value, _SINGLETONS)
            )
            if literal:
                ops[index] = "==" if isinstance(op, ast.Is) else "!="
                found = True
    if found:
        yield _hit(
            node,
            "`is` with a literal compares identity; use `==` / `!=`",
            _replace(node, _rebuild_compare(node, ctx, ops)),
        )


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
    if len(call.args) != 1 or call.keywords or not _dotted(other):
        return
    fixed = f"isinstance({ctx.src(call.args[0])}, {ctx.src(other)})"
    if isinstance(node.ops[0], ast.NotEq | ast.IsNot):
        fixed = f"not {fixed}"
    yield _hit(node, f"type comparison ignores subclasses; use `{fixed}`", _replace(node, fixed))


def _nan_module(node: ast.AST) -> str | None:
    """``math`` for float('nan') and math.nan, ``np`` for np.nan, else None."""
    if isinstance(node, ast.Call) and _dotted(node.func) == "float" and len(node.args) == 1:
        arg = node.args[0]
        if (
            isinstance(arg, ast.Constant)
            and isinstance(arg.value, str)
            and arg.value.strip().lower() == "nan"
        ):
            return "math"
    dotted = _dotted(node)
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
            yield _hit(
                node,
                f"comparison with NaN is always {isinstance(node.ops[0], ast.NotEq)}; use `{fixed}`",
                _replace(node, fixed),
            )
            return


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
        ) or (isinstance(default, ast.Call) and _dotted(default.func) in _MUTABLE_CALLS)
        if mutable:
            yield _hit(
                default,
                f"mutable default `{ctx.src(default)}` is shared between calls; default to None and create it in the body",
                _replace(default, "None"),
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
        yield _hit(
            node,
            "assert on a tuple is always true; write `assert cond, msg`",
            _replace(node, fixed) if fixed else None,
        )


_UNSAFE_LOADERS = {
    "Loader",
    "UnsafeLoader",
    "yaml.Loader",
    "yaml.UnsafeLoader",
    "FullLoader",
    "yaml.FullLoader",
}


@rule(
    "yaml-unsafe-load",
    "yaml.load without a safe loader can run arbitrary code; use yaml.safe_load",
    True,
    ast.Call,
)
def _yaml_load(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    name = _dotted(node.func)
    if name not in ("yaml.load", "yaml.load_all") or not node.args:
        return
    loader = _keyword(node, "Loader")
    loader_node = loader.value if loader else (node.args[1] if len(node.args) > 1 else None)
    if loader_node is None or _dotted(loader_node) in _UNSAFE_LOADERS:
        fixed = f"{name.replace('load', 'safe_load')}({ctx.src(node.args[0])})"
        yield _hit(
            node,
            f"{name} without a safe Loader can construct arbitrary objects; use `{fixed}`",
            _replace(node, fixed),
        )


@rule(
    "tls-verify-disabled", "`verify=False` turns off TLS certificate checks (requests, httpx)", True, ast.Call
)
def _verify_false(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    keyword = _keyword(node, "verify")
    if keyword is not None and _is_const(keyword.value, False):
        yield _hit(
            keyword,
            "TLS certificate verification disabled; drop `verify=False`",
            _replace(keyword, "verify=True"),
        )


@rule("ssl-unverified-context", "ssl._create_unverified_context() skips certificate checks", True, ast.Call)
def _ssl_unverified(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    if (
        _dotted(node.func) in ("ssl._create_unverified_context", "_create_unverified_context")
        and not node.args
    ):
        yield _hit(
            node,
            "unverified SSL context; use `ssl.create_default_context()`",
            _replace(node, "ssl.create_default_context()"),
        )


def _built_string(node: ast.AST | None) -> bool:
    """A string assembled at run time from values: f-string, % or + with a literal, or .format()."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        sides = (node.left, node.right)
        literal = any(
            isinstance(s, ast.Constant) and isinstance(s.value, str) or _built_string(s) for s in sides
        )
        return literal and not all(isinstance(s, ast.Constant) for s in sides)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and bool(node.args or node.keywords)
    )


_SUBPROCESS = {f"subprocess.{name}" for name in ("run", "call", "check_call", "check_output", "Popen")}


@rule(
    "shell-injection",
    "subprocess with shell=True on a string built from values runs injected commands",
    False,
    ast.Call,
)
def _shell_injection(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    if _dotted(node.func) not in _SUBPROCESS:
        return
    shell = _keyword(node, "shell")
    command = node.args[0] if node.args else getattr(_keyword(node, "args"), "value", None)
    if shell is not None and _is_const(shell.value, True) and _built_command(command, node, ctx):
        yield _hit(
            node,
            "shell=True with a command built from values allows shell injection; pass a list of arguments",
        )


def _built_command(command: ast.AST | None, call: ast.Call, ctx: Context) -> bool:
    if _built_string(command):
        return True
    assigned = ctx.assigned_before(command, call.lineno) if command is not None else None
    return assigned is not None and assigned[1]


@rule(
    "os-system-injection",
    "os.system / os.popen on a string built from values runs injected commands",
    False,
    ast.Call,
)
def _os_system(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    if (
        _dotted(node.func) in ("os.system", "os.popen")
        and node.args
        and _built_command(node.args[0], node, ctx)
    ):
        yield _hit(
            node, f"{_dotted(node.func)} on a built command allows shell injection; use subprocess.run([...])"
        )


_SQL = re.compile(r"(?is)^\s*(select|insert|update|delete|replace|create|drop|alter|with|pragma)\b")
_EXECUTE = {
    "execute",
    "executemany",
    "executescript",
    "raw",
    "read_sql",
    "read_sql_query",
    "query",
    "exec",
    "execute_sql",
}
_PLACEHOLDER_QUOTES = ("'", '"')


def _query_parts(node: ast.AST, ctx: Context) -> list[tuple[str, str]] | None:
    """The query as ("lit", text) and ("param", source) parts, or None when it cannot be split."""
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(("lit", str(value.value)))
            elif (
                isinstance(value, ast.FormattedValue) and value.conversion == -1 and value.format_spec is None
            ):
                parts.append(("param", ctx.src(value.value)))
            else:
                return None
        return parts
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _query_parts(node.left, ctx), _query_parts(node.right, ctx)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [("lit", node.value)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        if not (isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)):
            return None
        values = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        pieces = re.split(r"%[sd]", node.left.value)
        if len(pieces) != len(values) + 1 or "%" in "".join(pieces).replace("%%", ""):
            return None
        parts = []
        for index, piece in enumerate(pieces):
            parts.append(("lit", piece.replace("%%", "%")))
            if index < len(values):
                parts.append(("param", ctx.src(values[index])))
        return parts
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        template = node.func.value
        if not (isinstance(template, ast.Constant) and isinstance(template.value, str)) or node.keywords:
            return None
        pieces = template.value.split("{}")
        if len(pieces) != len(node.args) + 1 or "{" in "".join(pieces):
            return None
        parts = []
        for index, piece in enumerate(pieces):
            parts.append(("lit", piece))
            if index < len(node.args):
                parts.append(("param", ctx.src(node.args[index])))
        return parts
    # A plain name or call inside a concatenation: treat as a parameter.
    if isinstance(node, ast.Name | ast.Attribute | ast.Call | ast.Subscript):
        return [("param", ctx.src(node))]
    return None


def _looks_like_sql(node: ast.AST, ctx: Context) -> bool:
    parts = _query_parts(node, ctx)
    text = (
        "".join(value for kind, value in parts if kind == "lit")
        if parts
        else ctx.src(node).lstrip("fFrRbBuU\"'")
    )
    return bool(_SQL.match(text))


def _parameterised(parts: list[tuple[str, str]], placeholder: str) -> str | None:
    query, params = "", []
    for index, (kind, value) in enumerate(parts):
        if kind == "lit":
            query += value
            continue
        # A quoted placeholder ('{name}') becomes a bare one: the driver quotes parameters itself.
        after = parts[index + 1][1] if index + 1 < len(parts) and parts[index + 1][0] == "lit" else ""
        if query[-1:] in _PLACEHOLDER_QUOTES and after[:1] == query[-1:]:
            query = query[:-1]
            parts[index + 1] = ("lit", after[1:])
        query += placeholder
        params.append(value)
    if not params:
        return None
    literal = '"' + query.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    values = f"{params[0]}," if len(params) == 1 else ", ".join(params)
    return f"{literal}, ({values})"


@rule(
    "sql-injection",
    "SQL built with f-strings, % or + and passed to execute(); use query parameters",
    True,
    ast.Call,
)
def _sql_injection(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    if not (isinstance(node.func, ast.Attribute) and node.func.attr in _EXECUTE) or not node.args:
        return
    query = node.args[0]
    if not _built_string(query):
        # With parameters passed, a query assembled from literals (table names) is not injectable.
        if len(node.args) > 1 or node.keywords:
            return
        assigned = ctx.assigned_before(query, node.lineno)
        if assigned is not None and assigned[1] and _looks_like_sql(assigned[0], ctx):
            yield _hit(
                node,
                f"`{ctx.src(query)}` is SQL built from values (SQL injection); pass the values as query parameters",
            )
        return
    parts = _query_parts(query, ctx)
    text = (
        "".join(value for kind, value in parts if kind == "lit")
        if parts
        else ctx.src(query).lstrip("fFrRbBuU\"'")
    )
    if not _SQL.match(text):
        return
    edits = None
    if parts is not None and len(node.args) == 1 and not node.keywords:
        # sqlite3 takes qmark parameters; the other common drivers take %s.
        placeholder = "?" if "sqlite" in ctx.text else "%s"
        fixed = _parameterised(list(parts), placeholder)
        edits = _replace(query, fixed) if fixed else None
    yield _hit(node, "SQL built from values allows SQL injection; pass the values as query parameters", edits)


_WEAK_HASHES = {"hashlib.md5", "hashlib.sha1", "md5", "sha1"}
_PASSWORDISH = re.compile(r"(?i)pass|pwd|secret")


@rule(
    "weak-password-hash", "md5/sha1 on a password is fast to brute-force; use a salted KDF", False, ast.Call
)
def _weak_hash(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    name = _dotted(node.func)
    args = node.args
    if (
        name == "hashlib.new"
        and args
        and isinstance(args[0], ast.Constant)
        and str(args[0].value).lower() in ("md5", "sha1")
    ):
        args = args[1:]
    elif name not in _WEAK_HASHES:
        return
    if any(_PASSWORDISH.search(ctx.src(arg)) for arg in args):
        yield _hit(
            node, "weak hash for a password; use hashlib.scrypt or hashlib.pbkdf2_hmac with a random salt"
        )


@rule("eval-call", "eval() runs arbitrary code; ast.literal_eval parses literals safely", True, ast.Call)
def _eval_call(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    if (
        isinstance(node.func, ast.Name)
        and node.func.id == "eval"
        and len(node.args) == 1
        and not node.keywords
    ):
        fixed = f"ast.literal_eval({ctx.src(node.args[0])})"
        yield _hit(node, f"eval() runs arbitrary code; use `{fixed}` for data", _replace(node, fixed))


@rule(
    "flask-debug",
    "app.run(debug=True) exposes the interactive debugger (remote code execution)",
    True,
    ast.Call,
)
def _flask_debug(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    if (
        isinstance(node.func, ast.Attribute)
        and node.func.attr == "run"
        and "app" in _dotted(node.func.value).lower()
    ):
        keyword = _keyword(node, "debug")
        if keyword is not None and _is_const(keyword.value, True):
            yield _hit(
                keyword,
                "debug=True exposes the Werkzeug debugger; use `debug=False`",
                _replace(keyword, "debug=False"),
            )


@rule(
    "jinja-autoescape-off",
    "a jinja2 Environment without autoescape renders user input as HTML (XSS)",
    True,
    ast.Call,
)
def _jinja_autoescape(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    if _dotted(node.func) not in ("jinja2.Environment", "Environment", "jinja2.Template"):
        return
    keyword = _keyword(node, "autoescape")
    if keyword is None and _dotted(node.func) != "Environment":
        edits = None
        lineno, _, end_lineno, end_col = _span(node)
        if lineno == end_lineno:
            sep = ", " if node.args or node.keywords else ""
            end = end_col - 1
            edits = (Edit(node.lineno, end, end, f"{sep}autoescape=True"),)
        yield _hit(node, "jinja2 autoescape is off by default; pass `autoescape=True`", edits)
    elif keyword is not None and _is_const(keyword.value, False):
        yield _hit(
            keyword,
            "autoescape=False renders user input unescaped; use `autoescape=True`",
            _replace(keyword, "autoescape=True"),
        )


_ERROR_NAME = re.compile(r"^[A-Z]\w*(Error|Exception|Warning)$")


@rule("exception-not-raised", "an exception is created but not raised (missing `raise`)", True, ast.Expr)
def _not_raised(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Expr)
    call = node.value
    if isinstance(call, ast.Call) and _ERROR_NAME.match(_dotted(call.func).rsplit(".", 1)[-1]):
        edit = Edit(node.lineno, node.col_offset, node.col_offset, "raise ")
        yield _hit(node, f"`{_dotted(call.func)}(...)` is created but never raised; add `raise`", (edit,))


# The privacy rules read the text, not the AST: leaks in comments and in unparseable code count too.
_TEXT_RULE_KINDS = {"hardcoded-email": "email", "hardcoded-ip": "ip", "hardcoded-secret": "secret"}
for _id, _description in (
    ("hardcoded-email", "an e-mail address written into code leaks personal data"),
    ("hardcoded-ip", "an IP address written into code leaks infrastructure details"),
    ("hardcoded-secret", "a password, key or token written into code; read it from the environment"),
):
    TEXT_RULES[_id] = Rule(_id, _description, _id == "hardcoded-secret", (), lambda node, ctx: iter(()))

_SECRET_ASSIGNMENT = re.compile(
    r"^(?P<indent>\s*)(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*str\s*)?=\s*[rbuRBU]{0,2}(['\"])(?:(?!\3).)*\3\s*(?:#.*)?$"
)


def _text_hits(text: str) -> Iterator[tuple[int, int, int, str, str, str | None]]:
    """(line, start col, end col, rule id, message, fix) for leaks found in the text."""
    items = find_sensitive(text)
    if not items:
        return
    lines = text.split("\n")
    line_starts = [0]
    for row in lines[:-1]:
        line_starts.append(line_starts[-1] + len(row) + 1)
    for item in items:
        line = _line_at(line_starts, item.start)
        col = item.start - line_starts[line]
        end_col = min(item.end - line_starts[line], len(lines[line]))
        rule_id = next(k for k, v in _TEXT_RULE_KINDS.items() if v == item.kind)
        fix = None
        if item.kind == "secret":
            match = _SECRET_ASSIGNMENT.match(lines[line])
            if match:
                fix = f'{match["indent"]}{match["name"]} = os.environ["{match["name"].upper()}"]'
        what = {"email": "an e-mail address", "ip": "an IP address", "secret": "a secret"}[item.kind]
        yield (
            line,
            col,
            end_col,
            rule_id,
            f"hard-coded {what} leaks private data; read it from configuration",
            fix,
        )


def _line_at(line_starts: list[int], offset: int) -> int:
    low, high = 0, len(line_starts) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if line_starts[middle] <= offset:
            low = middle
        else:
            high = middle - 1
    return low


def all_rules() -> list[Rule]:
    return [*RULES, *TEXT_RULES.values()]


_BY_TYPE: dict[type[ast.AST], list[Rule]] = {}
for _rule in RULES:
    for _type in _rule.node_types:
        _BY_TYPE.setdefault(_type, []).append(_rule)


def _char_col(line: str, byte_col: int) -> int:
    """AST columns count UTF-8 bytes; editors count characters."""
    if line.isascii():
        return byte_col
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _apply(line: str, edits: tuple[Edit, ...]) -> str:
    data = line.encode("utf-8")
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        data = data[: edit.start] + edit.text.encode("utf-8") + data[edit.end :]
    return data.decode("utf-8")


def scan_source(text: str, path: str = "<text>") -> list[Finding]:
    """Every rule finding in ``text`` (a file, or a fragment such as one completed line)."""
    lines = text.split("\n")
    findings: dict[tuple[int, int, str], Finding] = {}
    for piece in parse_pieces(text):
        ctx = Context(piece, text)
        source_lines = piece.source.split("\n")
        for node in ast.walk(piece.tree):
            for matched in _BY_TYPE.get(type(node), ()):
                for hit in matched.check(node, ctx):
                    line = piece.line_of(hit.lineno)
                    if not 0 <= line < len(lines):
                        continue  # inside a wrapper that fragments.py added
                    end_line = piece.line_of(hit.end_lineno)
                    fix = None
                    if hit.edits and all(e.lineno == hit.edits[0].lineno for e in hit.edits):
                        fix = _apply(source_lines[hit.edits[0].lineno - 1], hit.edits)
                    source_line = source_lines[hit.lineno - 1]
                    end_source = source_lines[hit.end_lineno - 1]
                    finding = Finding(
                        path,
                        line + 1,
                        _char_col(source_line, hit.col) + 1,
                        end_line + 1,
                        _char_col(end_source, hit.end_col) + 1,
                        matched.id,
                        hit.message,
                        fix,
                    )
                    findings.setdefault((finding.line, finding.col, matched.id), finding)
    for line, col, end_col, rule_id, message, fix in _text_hits(text):
        findings.setdefault(
            (line + 1, col + 1, rule_id),
            Finding(path, line + 1, col + 1, line + 1, end_col + 1, rule_id, message, fix),
        )
    return sorted(findings.values(), key=lambda f: (f.line, f.col, f.pattern_id))

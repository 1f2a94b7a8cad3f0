"""Security: unsafe deserialisation, disabled TLS checks, shell and SQL injection, weak password
hashes, eval, an exposed debugger and unescaped templates."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from hotfix_engine.patterns.rules.framework import (
    Context,
    Edit,
    Hit,
    built_string,
    dotted_name,
    hit,
    is_const,
    keyword_arg,
    replace_node,
    rule,
    span,
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
    name = dotted_name(node.func)
    if name not in ("yaml.load", "yaml.load_all") or not node.args:
        return
    loader = keyword_arg(node, "Loader")
    loader_node = loader.value if loader else (node.args[1] if len(node.args) > 1 else None)
    if loader_node is None or dotted_name(loader_node) in _UNSAFE_LOADERS:
        fixed = f"{name.replace('load', 'safe_load')}({ctx.src(node.args[0])})"
        yield hit(
            node,
            f"{name} without a safe Loader can construct arbitrary objects; use `{fixed}`",
            replace_node(node, fixed),
        )


@rule(
    "tls-verify-disabled", "`verify=False` turns off TLS certificate checks (requests, httpx)", True, ast.Call
)
def _verify_false(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    keyword = keyword_arg(node, "verify")
    if keyword is not None and is_const(keyword.value, False):
        yield hit(
            keyword,
            "TLS certificate verification disabled; drop `verify=False`",
            replace_node(keyword, "verify=True"),
        )


@rule("ssl-unverified-context", "ssl._create_unverified_context() skips certificate checks", True, ast.Call)
def _ssl_unverified(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    if (
        dotted_name(node.func) in ("ssl._create_unverified_context", "_create_unverified_context")
        and not node.args
    ):
        yield hit(
            node,
            "unverified SSL context; use `ssl.create_default_context()`",
            replace_node(node, "ssl.create_default_context()"),
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
    if dotted_name(node.func) not in _SUBPROCESS:
        return
    shell = keyword_arg(node, "shell")
    command = node.args[0] if node.args else getattr(keyword_arg(node, "args"), "value", None)
    if shell is not None and is_const(shell.value, True) and _built_command(command, node, ctx):
        yield hit(
            node,
            "shell=True with a command built from values allows shell injection; pass a list of arguments",
        )


def _built_command(command: ast.AST | None, call: ast.Call, ctx: Context) -> bool:
    if built_string(command):
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
        dotted_name(node.func) in ("os.system", "os.popen")
        and node.args
        and _built_command(node.args[0], node, ctx)
    ):
        yield hit(
            node,
            f"{dotted_name(node.func)} on a built command allows shell injection; use subprocess.run([...])",
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
    if not built_string(query):
        # With parameters passed, a query assembled from literals (table names) is not injectable.
        if len(node.args) > 1 or node.keywords:
            return
        assigned = ctx.assigned_before(query, node.lineno)
        if assigned is not None and assigned[1] and _looks_like_sql(assigned[0], ctx):
            yield hit(
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
        edits = replace_node(query, fixed) if fixed else None
    yield hit(node, "SQL built from values allows SQL injection; pass the values as query parameters", edits)


_WEAK_HASHES = {"hashlib.md5", "hashlib.sha1", "md5", "sha1"}
_PASSWORDISH = re.compile(r"(?i)pass|pwd|secret")


@rule(
    "weak-password-hash", "md5/sha1 on a password is fast to brute-force; use a salted KDF", False, ast.Call
)
def _weak_hash(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    name = dotted_name(node.func)
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
        yield hit(
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
        yield hit(node, f"eval() runs arbitrary code; use `{fixed}` for data", replace_node(node, fixed))


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
        and "app" in dotted_name(node.func.value).lower()
    ):
        keyword = keyword_arg(node, "debug")
        if keyword is not None and is_const(keyword.value, True):
            yield hit(
                keyword,
                "debug=True exposes the Werkzeug debugger; use `debug=False`",
                replace_node(keyword, "debug=False"),
            )


@rule(
    "jinja-autoescape-off",
    "a jinja2 Environment without autoescape renders user input as HTML (XSS)",
    True,
    ast.Call,
)
def _jinja_autoescape(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    if dotted_name(node.func) not in ("jinja2.Environment", "Environment", "jinja2.Template"):
        return
    keyword = keyword_arg(node, "autoescape")
    if keyword is None and dotted_name(node.func) != "Environment":
        edits = None
        lineno, _, end_lineno, end_col = span(node)
        if lineno == end_lineno:
            sep = ", " if node.args or node.keywords else ""
            end = end_col - 1
            edits = (Edit(node.lineno, end, end, f"{sep}autoescape=True"),)
        yield hit(node, "jinja2 autoescape is off by default; pass `autoescape=True`", edits)
    elif keyword is not None and is_const(keyword.value, False):
        yield hit(
            keyword,
            "autoescape=False renders user input unescaped; use `autoescape=True`",
            replace_node(keyword, "autoescape=True"),
        )

"""Rule detectors: Python bugs and leaks that can be recognised from one statement, with fixes.

``framework.py`` is what a rule is and how rules run: findings, the ``@rule`` registration, the AST
helpers rules share, and :func:`~hotfix_engine.patterns.rules.framework.scan_source`. The rules
themselves live in one module per kind of bug:

- ``comparisons.py``: ``== None``, ``== True``, ``is`` with a literal, ``type(x) == T``, NaN;
- ``pitfalls.py``: mutable defaults, bare ``except:``, ``assert (cond, msg)``, exceptions not raised;
- ``security.py``: yaml.load, ``verify=False``, unverified SSL, shell and SQL injection, weak
  password hashes, eval, Flask's debugger, jinja2 without autoescape;
- ``leaks.py``: e-mail addresses, IP addresses and secrets written into code (read from the text).

A rule registers itself when its module is imported, and this package imports every kind, so
anything that imports the framework also gets every rule. A new rule goes in the module of its kind
(a new kind: a new module, imported below). ``all_rules()`` lists the AST rules in import order,
then the text rules.
"""

from hotfix_engine.patterns.rules import comparisons, leaks, pitfalls, security  # noqa: F401

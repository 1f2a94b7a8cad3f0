"""hotfix_server: the language server (pygls 2) in front of ``hotfix_engine``.

Start it with ``hotfix serve --stdio`` (or ``python -m hotfix_server``); see :mod:`hotfix_server.main`.
"""

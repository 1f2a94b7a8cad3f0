"""hotfix_engine: models, completion, patterns, store, objectives, trainer, adapters and evaluation.

Everything of hotfix that is not LSP. It never imports pygls or lsprotocol.
"""

__version__ = "0.1.0"

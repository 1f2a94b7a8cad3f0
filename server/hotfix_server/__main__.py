"""``python -m hotfix_server`` is ``hotfix serve``: the same options, logging and error handling."""

import sys

from hotfix_server.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))

import sys

from hotfix_engine.cli import main

sys.exit(main())

"""``python -m symglep.stack ...``: an alias of the main command line (``symglep ...``), kept for old scripts.

Every command takes a stack file like any model file: ``symglep train|derive|residuals|generate|check
examples/stack_chain_hru.py`` (docs/echo-family.md).
"""

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(prog_name="python -m symglep.stack"))

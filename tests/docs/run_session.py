"""Runs some Python blocks of one document in this interpreter, in order, in one namespace.

``python -c "from tests.docs.run_session import main; main()" RESULT DOCUMENT LINE...``
executes the blocks whose fences start on the given lines, each through its
harness, and writes ``{line: null | traceback}`` to the JSON file ``RESULT``
after every block (so that a crash still leaves the earlier outcomes). The
namespace is a fresh ``__main__`` module, as for a script run by itself.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import types
from pathlib import Path

from tests.docs.blocks import python_blocks
from tests.docs.harnesses import HARNESSES

__all__ = ["main"]


def main() -> None:
    """Run the blocks named on the command line; see the module docstring."""
    result_path, document, *lines = sys.argv[1:]
    wanted = {int(line) for line in lines}
    module = types.ModuleType("__main__")
    sys.modules["__main__"] = module
    namespace = module.__dict__
    outcomes: dict[int, str | None] = {}
    for block in python_blocks(Path(document)):
        if block.line not in wanted:
            continue
        try:
            HARNESSES[block.harness or "continuation"].run(block, namespace)
        except BaseException:  # every failure is reported, per block
            outcomes[block.line] = traceback.format_exc()
        else:
            outcomes[block.line] = None
        Path(result_path).write_text(json.dumps(outcomes), encoding="utf-8")
    sys.stdout.flush()
    sys.stderr.flush()
    # The outcomes are on disk. Finalizing the interpreter would tear the embedded
    # ClickHouse engine down under the daemon threads of trackers that a page
    # started without a lifespan (as a site may), which can crash or hang it.
    os._exit(0)

"""The `cairn` command: one module per command group, registered in `router.cli.main`.

May import the shared use cases (`router.lessons`), the composition root and everything below it.
It starts the HTTP app in `serve` and runs the demo, and imports no other HTTP code.
"""

from router.cli.main import main

__all__ = ["main"]

"""The ``layerlab`` console script: :func:`engine.cli.main`, imported with the garbage collector off.

Importing the CLI creates many objects (dataclasses, compiled regexes) and no garbage; collections
triggered meanwhile only walk them, costing a few milliseconds of every command.
"""
import gc


def main() -> None:
    gc.disable()
    try:
        from .cli import main as cli_main
    finally:
        gc.enable()
    cli_main()

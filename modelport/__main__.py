"""``python -m modelport``: the same CLI as the ``modelport`` command."""

from .cli import main

main(prog_name="modelport")

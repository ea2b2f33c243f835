"""The ``textnlp`` command line (Typer)."""

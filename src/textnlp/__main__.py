"""``python -m textnlp``: the ``textnlp`` command, for an environment whose scripts are not on
PATH (a notebook's kernel, ``pipx run``-less installs)."""

from textnlp.cli.main import run

if __name__ == "__main__":
    run()

"""Inside a rehearsed container: only what its image's `pip install ".[extras]"` installed imports.

The rehearsal's images share the development venv's packages (every extra, the dev tools), so an
image whose Dockerfile leaves an extra out would still run every feature here. At image build,
`image.py` makes, per image, a directory of links to the installed distributions its
Dockerfile's extras pull in (`<image>/deps/<repository>`). This file, copied into the image venv
as `_rehearsal_image_guard` and imported by a `.pth` line at interpreter start, puts that
directory on `sys.path` for the process whose `REHEARSAL_IMAGE` names the image: a module of
another extra is then not found, as in the real image (an availability probe such as
`importlib.util.find_spec` answers None, `importlib.metadata` does not list it), and the app
answers `MissingExtra`. Without `REHEARSAL_IMAGE` (building the image, tools) the whole
development venv is on the path.

Only the standard library here: it runs before any package path is set up.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

VARIABLE = "REHEARSAL_IMAGE"  # not TEXTNLP_*: the app refuses settings it does not know
PATHS_FILE = "_rehearsal_image_paths.json"


def install() -> None:
    paths = json.loads((Path(__file__).parent / PATHS_FILE).read_text())
    image = os.environ.get(VARIABLE)
    if image and image not in paths["images"]:
        raise RuntimeError(f"{VARIABLE}={image}: no such rehearsal image")
    sys.path.append(paths["images"][image] if image else paths["development"])


if __name__ == "_rehearsal_image_guard":  # the copy in an image, not the rehearsal's import
    install()

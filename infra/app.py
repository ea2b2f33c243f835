#!/usr/bin/env python3
"""CDK entry point: `cdk synth` (cdk.json runs this) or `python infra/app.py`.

Choose the environment with `-c environment=dev|staging|production` (default production).
A variable the application's settings do not know stops synthesis with one line naming it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from textnlp.errors import ConfigError  # noqa: E402

from textnlp_infra.app import build_app  # noqa: E402

if __name__ == "__main__":
    # The CDK CLI names the output directory; plain `python app.py` writes infra/cdk.out.
    outdir = os.environ.get("CDK_OUTDIR") or str(Path(__file__).resolve().parent / "cdk.out")
    try:
        app, _ = build_app(outdir=outdir)
        app.synth()
    except ConfigError as exc:  # the app's settings refuse what the deployment would set
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(2)

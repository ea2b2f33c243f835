"""A GGUF file as a transformers model directory, converted once and cached.

transformers reads a GGUF by dequantising every tensor and rebuilding the tokenizer from its
metadata: over a minute for SmolLM2-135M on two cores. The result is saved once in float32
(every dequantised value is exact there) with ``save_pretrained`` under
``~/.cache/textnlp/models``, and later loads read that directory in under a second. Needs the
``gguf`` package (part of the ``hf`` extra) the first time only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from textnlp.backends.llamacpp import models_cache_dir


def converted(gguf: Path, cache_dir: Path | None = None) -> Path:
    """The model directory made from ``gguf`` (made now if it is not cached yet)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stat = gguf.stat()
    directory = cache_dir or models_cache_dir()
    target = directory / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}.hf"
    if (target / "config.json").is_file():
        return target
    partial = directory / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(partial, ignore_errors=True)
    source, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=name, dtype=torch.float32)
    # The tensors are plain float32 now; the GGUF "quantiser" would only refuse to save them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    try:
        partial.replace(target)  # atomic: a concurrent loader sees all of it or nothing
    except OSError:  # another process finished first
        shutil.rmtree(partial, ignore_errors=True)
    return target

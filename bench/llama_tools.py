"""llama.cpp's own programs, the honest anchor of the engine and load benchmarks.

``llama-server`` and ``llama-batched-bench`` are built once, in one cmake build, from the
llama.cpp that the pinned llama-cpp-python sdist vendors (so they run the same kernels as the
engine), with the kernels the Makefile picks for this CPU (``make llama-kernels``: AVX-512 or
AVX2), into ``~/.cache/textnlp/llama-cpp-<version>-<kernels>/bin`` (cached like the wheel).
When they cannot be built (no cmake, no network for the sdist, a compiler error) the caller
gets ``None`` and the reason, and says it in its JSON. This module only needs the standard library.

    python bench/llama_tools.py [--source DIR]   # build (or find) them, print where they are

``--source`` takes an extracted sdist (or its ``vendor/llama.cpp``) instead of downloading it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

REPO = Path(__file__).resolve().parents[1]
LLAMA_VERSION = "0.3.36"  # the Makefile's LLAMA_VERSION
# Besides the Makefile's kernel flags: the two tools, statically linked, nothing fetched.
LLAMA_TOOL_FLAGS = [
    "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
    # The server's web UI is not needed, and fetching its prebuilt assets would reach the network.
    "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DBUILD_SHARED_LIBS=OFF", "-DCMAKE_BUILD_TYPE=Release",
]  # fmt: skip
TOOLS = ("llama-server", "llama-batched-bench")


# -- building ------------------------------------------------------------------------------------
def build_llama_tools(source: Path | None = None) -> tuple[dict[str, Path] | None, str]:
    """({tool name: binary}, "") or (None, why they cannot be had)."""
    try:
        tag, kernel_flags = llama_kernels()
    except (subprocess.SubprocessError, OSError, IndexError) as exc:
        return None, f"the Makefile's kernel flags could not be read: {type(exc).__name__}"
    bin_dir = Path.home() / ".cache" / "textnlp" / f"llama-cpp-{LLAMA_VERSION}-{tag}" / "bin"
    binaries = {tool: bin_dir / tool for tool in TOOLS}
    if all(path.exists() for path in binaries.values()):
        return binaries, ""
    if shutil.which("cmake") is None:
        return None, "cmake is not installed"
    with tempfile.TemporaryDirectory(prefix="llama-tools-build-") as tmp:
        try:
            llama_cpp = _vendored_llama_cpp(Path(tmp), source)
            build = Path(tmp) / "build"
            generator = ["-G", "Ninja"] if shutil.which("ninja") else []
            flags = [*kernel_flags, *LLAMA_TOOL_FLAGS]
            _run(["cmake", "-S", str(llama_cpp), "-B", str(build), *generator, *flags],
                 timeout=600)  # fmt: skip
            targets = [arg for tool in TOOLS for arg in ("--target", tool)]
            _run(["cmake", "--build", str(build), *targets, "-j", str(os.cpu_count() or 1)],
                 timeout=3 * 3600)  # fmt: skip
            bin_dir.mkdir(parents=True, exist_ok=True)
            for tool, binary in binaries.items():
                shutil.copy2(build / "bin" / tool, binary)
        except (subprocess.SubprocessError, StopIteration, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            tail = detail.decode("utf-8", "replace").strip().splitlines()[-3:]
            return None, f"llama.cpp's tools could not be built: {type(exc).__name__} {tail}"
    return binaries, ""


def llama_kernels(kernels: str | None = None) -> tuple[str, list[str]]:
    """(tag, cmake flags) of the llama.cpp kernels the Makefile builds the wheel with here, or
    with its ``LLAMA_KERNELS`` set to ``kernels`` ("avx2", "avx512")."""
    command = ["make", "-s", "--no-print-directory", "-C", str(REPO), "llama-kernels"]
    env = {**os.environ, **({"LLAMA_KERNELS": kernels} if kernels else {})}
    words = subprocess.run(command, env=env, check=True, capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    tag, *flags = words.stdout.split()
    return tag, flags


def build_llama_server() -> tuple[Path | None, str]:
    """(the llama-server binary, "") or (None, why it cannot be had)."""
    binaries, why_not = build_llama_tools()
    return (binaries["llama-server"] if binaries else None), why_not


def _vendored_llama_cpp(tmp: Path, source: Path | None) -> Path:
    """The llama.cpp tree of the sdist: the one given, else downloaded with pip."""
    if source is not None:
        vendored = source / "vendor" / "llama.cpp"
        return vendored if vendored.is_dir() else source
    _run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
          f"llama-cpp-python=={LLAMA_VERSION}", "-d", str(tmp)], timeout=600)  # fmt: skip
    sdist = next(tmp.glob("llama_cpp_python-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp, filter="data")
    return next(tmp.glob("llama_cpp_python-*/vendor/llama.cpp"))


def _run(command: list[str], timeout: float) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=timeout)


# -- llama-server --------------------------------------------------------------------------------
@contextmanager
def llama_server_process(
    binary: Path, model: Path, *, parallel: int, ctx_per_slot: int, threads: int
) -> Iterator[str]:
    """``llama-server -np parallel`` on ``model``, healthy; yields its base URL and stops it.

    ``-c`` is the total context, split evenly between the slots (``-np``), so each slot gets
    ``ctx_per_slot`` tokens. The KV cache is kept per slot (``--no-kv-unified``; it would be
    unified by default only when ``-np`` is auto), like TextNLP's one stream per sequence.
    """
    import httpx

    from tests.conftest import free_port, stop_process, wait_for_port

    port = free_port()
    command = [
        str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
        "-np", str(parallel), "-c", str(parallel * ctx_per_slot), "--no-kv-unified",
        "-t", str(threads), "-tb", str(threads), "--no-webui",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=120, proc=proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # the port opens before the model is loaded
        while httpx.get(f"{url}/health").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("llama-server did not become healthy")
            time.sleep(0.5)
        yield url
    finally:
        stop_process(proc)


# -- llama-batched-bench -------------------------------------------------------------------------
def batched_bench(
    binary: Path,
    model: Path,
    *,
    prompt_tokens: int,
    generated_tokens: int,
    levels: list[int],
    ctx_per_slot: int,
    threads: int,
) -> list[dict[str, Any]]:
    """One row per level of ``llama-batched-bench``: ``pl`` sequences, each with its own prompt
    of ``prompt_tokens`` tokens, then ``generated_tokens`` decode steps for all of them at once.
    ``S_TG t/s`` is the raw batched decode rate (no sampling, no server)."""
    command = [
        str(binary), "-m", str(model), "-c", str(max(levels) * ctx_per_slot),
        "-b", "2048", "-ub", "512", "-t", str(threads), "-tb", str(threads),
        "-npp", str(prompt_tokens), "-ntg", str(generated_tokens),
        "-npl", ",".join(map(str, levels)), "--output-format", "jsonl",
    ]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=3600)
    return parse_batched_bench(done.stdout + "\n" + done.stderr)  # the rows go to stdout


def parse_batched_bench(stdout: str) -> list[dict[str, Any]]:
    """The rows of ``llama-batched-bench --output-format jsonl`` (one JSON object a line, among
    other lines), or of its markdown table when no JSON line is there."""
    rows = [json.loads(line) for line in stdout.splitlines() if line.lstrip().startswith("{")]
    if rows:
        return rows
    header: list[str] = []
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if "PP" in cells and "TG" in cells:
            header = cells
        elif header and len(cells) == len(header) and re.fullmatch(r"[\d.]+", cells[0]):
            rows.append(
                {_TABLE_KEYS.get(k, k): float(v) for k, v in zip(header, cells, strict=True)}
            )
    return rows


# The table's columns under the names of the JSON lines.
_TABLE_KEYS = {
    "PP": "pp", "TG": "tg", "B": "pl", "N_KV": "n_kv", "T_PP s": "t_pp", "S_PP t/s": "speed_pp",
    "T_TG s": "t_tg", "S_TG t/s": "speed_tg", "T s": "t", "S t/s": "speed",
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--source", type=Path, help="an extracted llama-cpp-python sdist")
    args = parser.parse_args()
    binaries, why_not = build_llama_tools(args.source)
    found = {tool: str(path) for tool, path in (binaries or {}).items()}
    print(json.dumps({"binaries": found or None, "skipped": why_not or None}, indent=2))


if __name__ == "__main__":
    main()

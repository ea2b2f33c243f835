"""Reading ``llama-batched-bench``'s output, in both of its formats (lines shaped like the
vendored ``tools/batched-bench/batched-bench.cpp`` prints them, among its log lines)."""

from __future__ import annotations

from bench.llama_tools import llama_kernels, parse_batched_bench

JSONL = """\
llama_model_loader: loaded meta data with 34 key-value pairs
{"n_kv_max": 16384, "n_batch": 2048, "n_ubatch": 512, "flash_attn": -1, "is_pp_shared": 0, \
"n_gpu_layers": -1, "n_threads": 2, "n_threads_batch": 2, "pp": 12, "tg": 64, "pl": 1, \
"n_kv": 76, "t_pp": 0.021000, "speed_pp": 571.428589, "t_tg": 0.620000, "speed_tg": 103.225807, \
"t": 0.641000, "speed": 118.564743}
{"n_kv_max": 16384, "n_batch": 2048, "n_ubatch": 512, "flash_attn": -1, "is_pp_shared": 0, \
"n_gpu_layers": -1, "n_threads": 2, "n_threads_batch": 2, "pp": 12, "tg": 64, "pl": 8, \
"n_kv": 608, "t_pp": 0.101000, "speed_pp": 950.495056, "t_tg": 2.306000, "speed_tg": 222.029480, \
"t": 2.407000, "speed": 252.596588}

llama_perf_context_print:        load time =      42.11 ms
"""

TABLE = """\
main: n_kv_max = 16384, n_batch = 2048, n_ubatch = 512, flash_attn = -1, is_pp_shared = 0

|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|
|    12 |     64 |    1 |     76 |    0.021 |   571.43 |    0.620 |   103.23 |    0.641 |   118.56 |
|    12 |     64 |    8 |    608 |    0.101 |   950.50 |    2.306 |   222.03 |    2.407 |   252.60 |
"""


def test_jsonl_rows_are_read_among_log_lines() -> None:
    rows = parse_batched_bench(JSONL)
    assert [(row["pl"], row["speed_tg"]) for row in rows] == [(1, 103.225807), (8, 222.02948)]
    assert rows[1]["t"] == 2.407


def test_the_markdown_table_gives_the_same_keys() -> None:
    rows = parse_batched_bench(TABLE)
    assert [(row["pl"], row["speed_tg"], row["t"]) for row in rows] == [
        (1, 103.23, 0.641),
        (8, 222.03, 2.407),
    ]
    assert set(rows[0]) == {"pp", "tg", "pl", "n_kv", "t_pp", "speed_pp", "t_tg", "speed_tg",
                            "t", "speed"}  # fmt: skip


def test_no_rows_when_nothing_was_measured() -> None:
    assert parse_batched_bench("main: error: unable to load model\n") == []


def test_the_tools_are_built_with_the_makefiles_kernels_and_never_amx(monkeypatch):
    # The real Makefile answers (`make llama-kernels`): the tag names the wheelhouse and the
    # tools' folder, the flags are the wheel's own.
    tag, flags = llama_kernels()
    assert tag.startswith(("avx2", "avx512"))
    assert "-DGGML_NATIVE=OFF" in flags and "-DGGML_AVX2=ON" in flags
    assert {"-DGGML_AMX_INT8=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_BF16=OFF"} <= set(flags)
    assert ("-DGGML_AVX512=ON" in flags) == tag.startswith("avx512")

    monkeypatch.setenv("LLAMA_KERNELS", "avx2")  # the Makefile's override
    tag, flags = llama_kernels()
    assert tag == "avx2"
    assert "-DGGML_AVX512=OFF" in flags and not [f for f in flags if f.endswith("AVX512=ON")]

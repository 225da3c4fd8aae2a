from __future__ import annotations

import torch

from benchmark.provenance import NUMERICS_FIELDS, cpu_bf16, mixed_numerics, numerics


def test_numerics_names_what_can_change_a_number():
    torch.set_num_threads(1)  # restored by conftest
    num = numerics(torch.device("cpu"))
    assert tuple(num) == NUMERICS_FIELDS
    assert num["device_kind"] == "cpu" and num["dtype"] == "float32" and num["threads"] == 1
    assert num["torch"] == torch.__version__ and num["numpy"] and num["torchvision"]
    assert num["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert num["deterministic"] is False and num["cuda"] is None and num["tf32"] is None


def test_mixed_numerics_lists_only_fields_that_differ():
    a = {"numerics": {"threads": 1, "dtype": "float32", "torch": "2.14"}}
    b = {"numerics": {"threads": 2, "dtype": "float32", "torch": "2.14"}}
    c = {"numerics": {"threads": 1, "dtype": "bfloat16-autocast", "torch": "2.14"}}
    assert mixed_numerics([a, a]) == {}
    assert mixed_numerics([a, b, c, {"status": "ok"}, []]) == {"threads": [1, 2], "dtype": ["float32", "bfloat16-autocast"]}


def test_mixed_numerics_sees_how_the_shared_poison_was_made():
    cell = {"threads": 1, "device_kind": "cpu"}
    a = {"numerics": cell, "poison_meta": {"numerics": cell}}
    b = {"numerics": cell, "poison_meta": {"numerics": {"threads": 1, "device_kind": "cuda"}}}
    assert mixed_numerics([a]) == {} and mixed_numerics([a, b]) == {"device_kind": ["cpu", "cuda"]}


def test_cpu_bf16_names_the_bf16_hardware_from_the_flags():
    # a Sapphire Rapids Xeon reports both flags: the tiles are what runs bf16 convolutions
    assert cpu_bf16({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}) == "AMX-BF16"
    assert cpu_bf16(["avx2", "avx512f", "avx512_bf16"]) == "AVX512-BF16"  # a Zen 4 EPYC
    assert cpu_bf16({"avx2", "fma"}) is None
    assert cpu_bf16() in ("AMX-BF16", "AVX512-BF16", None)  # this machine's /proc/cpuinfo

"""Every CUDA kernel source compiles with nvcc for sm_80 (A100) and sm_90 (H100), no GPU needed.

ptxas reports each kernel's registers, shared memory and spills; the test prints them as a
table (pytest -s, or the captured output of a failure) and fails on a kernel missing for an
architecture or one that spills to local memory: a spill in a product's inner loop is a
silent slowdown that only a GPU benchmark would otherwise show. Rung 05 is built once more
for sm_90 with each of the warptile sweep's tiles (impls/_cuda_warptile.py's GRID): the sweep
on a GPU must find every one of them buildable, and none spilling.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from impls._cuda_base import KERNELS, kernel_names
from impls._cuda_warptile import GRID

NVCC = shutil.which("nvcc")
ARCHS = ("sm_80", "sm_90")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc (the CUDA toolkit) is not installed")

_ENTRY = re.compile(r"Compiling entry function '(\w+)' for '(sm_\d+)'")
_SPILLS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def ptxas_table(ptxas_output: str) -> dict:
    """{(kernel, arch): {registers, smem, stack, spill_stores, spill_loads}} from -Xptxas -v."""
    table, current = {}, None
    for line in ptxas_output.splitlines():
        if entry := _ENTRY.search(line):
            current = table.setdefault(entry.groups(), {})
        elif current is not None and (spills := _SPILLS.search(line)):
            current.update(
                zip(
                    ("stack", "spill_stores", "spill_loads"), map(int, spills.groups()), strict=True
                )
            )
        elif current is not None and (used := _USED.search(line)):
            smem = _SMEM.search(line)
            current.update(registers=int(used.group(1)), smem=int(smem.group(1)) if smem else 0)
    return table


def nvcc(source, out, *options):
    """nvcc started on one source, -Xptxas -v: its output is ptxas's report."""
    return subprocess.Popen(
        [NVCC, *options, "-Xptxas", "-v", "-o", str(out), str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_every_kernel_compiles_for_sm80_and_sm90_without_spills(tmp_path):
    gencode = [f"-gencode=arch=compute_{a[3:]},code={a}" for a in ARCHS]
    sources = sorted(KERNELS.glob("*.cu"))
    # All files at once: nvcc is mostly single-threaded, and CI has two cores.
    running = [
        (source, nvcc(source, tmp_path / f"{source.stem}.fatbin", "--fatbin", *gencode))
        for source in sources
    ]
    rows, problems = [], []
    for source, process in running:
        output, _ = process.communicate(timeout=300)
        if process.returncode:
            problems.append(f"{source.name} does not compile:\n{output}")
            continue
        table = ptxas_table(output)
        for kernel in kernel_names(source.read_text()):
            for arch in ARCHS:
                info = table.get((kernel, arch))
                if info is None:
                    problems.append(f"{source.name}: no ptxas report for {kernel} on {arch}")
                    continue
                rows.append((source.name, kernel, arch, info))
                if info["spill_stores"] or info["spill_loads"]:
                    problems.append(f"{kernel} on {arch} spills: {info}")
    print(
        f"\n{'file':<18} {'kernel':<20} {'arch':<6} {'regs':>5} {'smem B':>7} "
        f"{'stack B':>8} {'spill st/ld B':>14}"
    )
    for file, kernel, arch, info in rows:
        print(
            f"{file:<18} {kernel:<20} {arch:<6} {info['registers']:>5} {info['smem']:>7} "
            f"{info['stack']:>8} {info['spill_stores']:>7}/{info['spill_loads']}"
        )
    assert not problems, "\n".join(problems)
    assert {kernel for _, kernel, _, _ in rows} >= {
        "matmul_uncoalesced",
        "matmul_naive",
        "matmul_tiled",
        "matmul_blocktile",
        "matmul_vectorized",
        "matmul_warptile",
        "layernorm_rows",  # warp shuffles: nn.cu
        "layernorm_bwd_rows",
        "row_sums",
        "embedding_bwd",  # atomics
        "im2col",  # conv.cu
        "col2im",
        "maxpool2d_bwd",
    }


def test_every_tiling_of_the_warptile_sweep_compiles_for_sm90_without_spills(tmp_path):
    source = KERNELS / "05_warptile.cu"
    running = [
        (tiles, nvcc(source, tmp_path / f"{i}.cubin", "--cubin", "-arch=sm_90", *tiles.defines))
        for i, tiles in enumerate(GRID)
    ]
    problems = []
    print(f"\n{'tiles':<28} {'threads':>7} {'regs':>5} {'smem B':>7} {'spill st/ld B':>14}")
    for tiles, process in running:
        output, _ = process.communicate(timeout=300)
        info = ptxas_table(output).get(("matmul_warptile", "sm_90"))
        if process.returncode or info is None:
            problems.append(f"{tiles.label} does not build for sm_90:\n{output}")
            continue
        print(
            f"{tiles.label:<28} {tiles.threads:>7} {info['registers']:>5} {info['smem']:>7} "
            f"{info['spill_stores']:>7}/{info['spill_loads']}"
        )
        if info["spill_stores"] or info["spill_loads"] or info["stack"]:
            problems.append(f"{tiles.label} spills on sm_90: {info}")
    assert not problems, "\n".join(problems)


def test_ptxas_table_reads_a_spill():
    output = """ptxas info    : Compiling entry function 'k' for 'sm_90'
ptxas info    : Function properties for k
    16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 8 bytes cumulative stack size, 8192 bytes\
 smem"""
    assert ptxas_table(output) == {
        ("k", "sm_90"): {
            "stack": 16,
            "spill_stores": 8,
            "spill_loads": 4,
            "registers": 255,
            "smem": 8192,
        }
    }

#!/usr/bin/env bash
# The GPU path, checked in one go (issue "Sparse rounds"): the device-sensitive tests on the
# device, then FC and Conv2 throughput of the dense engine (fp32 and bf16) and of the sparse
# path (fp32), side by side, at K=1, 16 and 64.
#
#   bash benchmarks/gpu_check.sh                # on a machine with CUDA
#   bash benchmarks/gpu_check.sh --device cpu   # the same steps on the CPU, small (a dry run)
#
# Writes everything to stdout and, if $OUT is set (the device tool), to $OUT/gpu_check.txt.
set -uo pipefail
device=cuda
if [[ "${1:-}" == "--device" ]]; then device="${2:?--device needs cpu or cuda}"; fi
case "$device" in cpu | cuda | cuda:*) ;; *) echo "--device: expected cpu or cuda, got $device" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
[[ -x "$py" ]] || py=python3
log="${OUT:-/tmp}/gpu_check.txt"
if [[ "$device" == cpu ]]; then  # a dry run: every step, at a size the CPU finishes quickly
    members=(1 2) fc_its=20 conv_its=2 rounds=(0 13)
else
    members=(1 16 64) fc_its=300 conv_its=20 rounds=(0 7 13 24)
fi
status=0
exec > >(tee "$log") 2>&1
echo "== $(date -u +%FT%TZ) device $device"
"$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
echo "== device-sensitive tests on $device"
LTH_TEST_DEVICE="$device" "$py" -m pytest -q tests/test_sparse.py \
    tests/test_independence.py::test_member_alone_equals_member_in_populations_of_3_and_8 \
    || status=1
for net in fc conv2; do
    its=$fc_its; [[ $net == conv2 ]] && its=$conv_its
    echo "== dense engine: $net, fp32 and bf16"
    "$py" benchmarks/throughput.py --device "$device" --nets "$net" --members "${members[@]}" \
        --iterations "$its" || status=1
    echo "== sparse path: $net, fp32"
    "$py" benchmarks/sparse.py --device "$device" --net "$net" --members "${members[@]}" \
        --rounds "${rounds[@]}" --iterations "$its" || status=1
done
echo "== exit status $status"
exit "$status"

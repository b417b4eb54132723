"""Training throughput of the population engine against a plain PyTorch loop.

For each network (FC = LeNet-300-100 on MNIST, Conv2/4/6 on CIFAR-10; book/spec.md section 2) at the
paper's batch of 60 with Adam (section 3), prints model-samples per second (training samples per
second, summed over the members of a population) of:

- a plain one-network fp32 loop: ``nn.Sequential`` of ``nn.Conv2d``/``nn.Linear``/``nn.ReLU``/
  ``nn.MaxPool2d``, default ``torch.optim.Adam``, one random batch per step;
- our engine (:func:`lth.train.train_population`) in fp32 with K members;
- our engine in bf16 (``precision="bf16"``: autocast forward, fp32 master weights and Adam).

Each rate is also given as a fraction of this machine's GEMM peak for the precision it computes
in, measured with a large matrix product in fp32 and in bf16 before and after the runs (the
higher of the two is used: on a shared machine a contended measurement is too low). A training
step is counted as 3 x 2 x the forward multiply-accumulates per sample (forward, input gradient,
weight gradient), with a conv layer's MACs counted at its spatial size
(``Architecture.forward_macs``); pooling, ReLU and Adam are not counted. The GEMM is not the
hardware's ceiling: on the project's AMD CPU, MKL's fp32 GEMM reaches about 95 GFLOP/s per core
while oneDNN's 3x3 convolutions reach 130 (256 channels, 8x8, forward), so fp32 conv rows can
show more than 100%.

Data are synthetic (throughput does not depend on pixel values), with 10-image validation and
test splits so that the engine's evaluations before the first and after the last iteration cost
about 1% of the timed call. The first iterations of every measurement are a warm-up, not timed.

    python benchmarks/throughput.py [--nets fc conv2 conv4 conv6] [--members 1 4]
        [--iterations N] [--precisions fp32 bf16] [--device cpu|cuda] [--threads T]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

from lth.data import Dataset, Split
from lth.nets import Architecture, Population, get_architecture, initial_weights
from lth.train import PRECISIONS, PROTOCOLS, Protocol, train_population

PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

#: Timed iterations per network by default: a whole default run takes 3-4 minutes on the
#: project's 2-core CPU.
DEFAULT_ITERATIONS = {"fc": 500, "conv2": 20, "conv4": 12, "conv6": 8}


def synthetic(arch: Architecture, n_train: int = 6_000, n_eval: int = 10) -> Dataset:
    """Random uint8 images of the network's input shape with random labels."""
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        x = torch.randint(0, 256, (n, *arch.input_shape), dtype=torch.uint8, generator=g)
        return Split(x, torch.randint(0, arch.num_classes, (n,), generator=g))

    return Dataset(f"synthetic-{arch.dataset}", split(n_train), split(n_eval), split(n_eval), 10)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 8) -> float:
    """This machine's matrix-product rate in FLOP/s for ``dtype``: the best of a few n^3
    products, each done both as ``a @ b`` (MKL for fp32 on CPU) and as a 1x1 convolution
    (oneDNN, the library the conv layers use), whichever is faster."""
    if device.type == "cuda":
        n = 8192
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    x = a.t().reshape(1, n, n // 64, 64).contiguous(memory_format=torch.channels_last)
    w = b.reshape(n, n, 1, 1)
    best = float("inf")
    for product in (lambda: a @ b, lambda: torch.nn.functional.conv2d(x, w)):
        product()
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            product()
            sync(device)
            best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def plain_network(arch: Architecture) -> nn.Sequential:
    """The textbook one-network version of ``arch`` (PyTorch's default init; speed only)."""
    modules: list[nn.Module] = []
    for i, layer in enumerate(arch.layers):
        if layer.kind == "conv":
            modules += [nn.Conv2d(layer.shape[1], layer.shape[0], 3, padding=1), nn.ReLU()]
            if layer.pool_after:
                modules.append(nn.MaxPool2d(2))
        else:
            if i == 0 or arch.layers[i - 1].kind == "conv":
                modules.append(nn.Flatten())
            modules.append(nn.Linear(*layer.shape))
            if i < len(arch.layers) - 1:
                modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def plain_loop(
    arch: Architecture, data: Dataset, iterations: int, warmup: int, device: torch.device
) -> float:
    """Samples/s of the plain fp32 loop with default Adam."""
    torch.manual_seed(0)
    model = plain_network(arch).to(device)
    protocol = PROTOCOLS[arch.name]
    optimizer = torch.optim.Adam(model.parameters(), lr=protocol.lr)
    loss_fn = nn.CrossEntropyLoss()
    x_all, y_all = data.train.x.to(device), data.train.y.to(device)
    batch = protocol.batch_size
    for i in range(warmup + iterations):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        idx = torch.randint(0, len(y_all), (batch,), device=device)
        x = x_all[idx].float() / 255
        optimizer.zero_grad()
        loss_fn(model(x), y_all[idx]).backward()
        optimizer.step()
    sync(device)
    return iterations * batch / (time.perf_counter() - start)


def engine(
    arch: Architecture,
    data: Dataset,
    iterations: int,
    warmup: int,
    members: int,
    precision: str,
    device: torch.device,
) -> float:
    """Model-samples/s of train_population on ``members`` networks, validation only at the start
    and the end (the paper's every-100-iteration evaluation is not included)."""
    weights = [initial_weights(arch, seed) for seed in range(members)]
    masks = [[torch.ones(layer.shape) for layer in arch.layers]] * members
    pop = Population.from_members(arch, weights, masks).to(device)
    lr, seeds = PROTOCOLS[arch.name].lr, list(range(members))
    warm = Protocol(iterations=warmup, lr=lr)
    train_population(pop, data, warm, seeds, precision=precision)
    protocol = Protocol(iterations=iterations, lr=lr, eval_every=10**9)
    sync(device)
    start = time.perf_counter()
    train_population(pop, data, protocol, seeds, precision=precision)
    sync(device)
    return members * iterations * protocol.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=list(DEFAULT_ITERATIONS))
    parser.add_argument("--members", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--iterations", type=int, help="timed iterations (default: per network)")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested, but CUDA is not available")
    device = torch.device(args.device)
    archs = [get_architecture(name) for name in args.nets]

    def measure_peak() -> dict[str, float]:
        return {name: gemm_peak(device, dtype) for name, dtype in PEAK_DTYPES.items()}

    peak = measure_peak()
    rows = []
    for arch in archs:
        iterations = args.iterations or DEFAULT_ITERATIONS.get(arch.name, 20)
        warmup = max(2, min(20, iterations // 5))
        data = synthetic(arch)
        plain = plain_loop(arch, data, iterations, warmup, device)
        rows.append((arch, "plain loop, nn.Sequential, Adam", 1, iterations, plain, plain, "fp32"))
        for precision in args.precisions:
            for k in args.members:
                rate = engine(arch, data, iterations, warmup, k, precision, device)
                label = f"engine {precision}, member Adam"
                rows.append((arch, label, k, iterations, rate, plain, precision))
                print(f"{arch.name} {label} K={k}: {rate:,.0f}", file=sys.stderr, flush=True)
    # the peak again at the end: on a shared machine the higher of the two is nearer the truth
    peak = {name: max(rate, peak[name]) for name, rate in measure_peak().items()}

    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(f"torch {torch.__version__}, {device}{threads}")
    fp32, bf16 = peak["fp32"] / 1e9, peak["bf16"] / 1e9
    print(f"GEMM peak: fp32 {fp32:,.0f} GFLOP/s, bf16 {bf16:,.0f} GFLOP/s (best before/after)")
    print("training FLOP per sample = 3 x 2 x forward MACs (conv MACs at their spatial size)")
    print("(oneDNN's convolutions can run faster than the GEMM: fp32 conv rows may pass 100%)\n")
    header = f"{'net':6s} {'MFLOP/sample':>12s}  {'run':34s} {'K':>2s} {'its':>4s}"
    print(f"{header} {'model-samples/s':>15s} {'vs plain':>8s} {'of peak':>12s}")
    for r in rows:
        print(row(*r, peak))


def row(
    arch: Architecture,
    label: str,
    k: int,
    iterations: int,
    rate: float,
    plain: float,
    precision: str,
    peak: dict[str, float],
) -> str:
    """One line of the table: the rate, its ratio to the plain loop, its share of the peak."""
    flop = 6 * arch.forward_macs
    share = rate * flop / peak[precision]
    return (
        f"{arch.name:6s} {flop / 1e6:>12,.1f}  {label:34s} {k:>2d} {iterations:>4d} "
        f"{rate:>15,.0f} {rate / plain:>7.2f}x {share:>7.1%} {precision}"
    )


if __name__ == "__main__":
    main()

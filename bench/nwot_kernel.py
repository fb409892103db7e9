"""NASWOT's kernel: the fast form (one float32 product per ReLU) against its definition (two
float64 products), on the benchmark's NB201 network (C=16, 5 cells per stage) and a batch of
64 images: seconds per score of each on one torch thread, the largest relative difference of
the scores; then the fast form's seconds per score on each of ``--threads`` (run it beside a
busy process too: the proxies run with one thread because of what that shows).

    python bench/nwot_kernel.py --cells 20 --threads 1 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from nago_pl.network.nb201 import Nb201Network, Nb201Spec
from nago_pl.proxies import score
from nago_pl.space.nb201 import OPS, Nb201Cell

EVALUATED = Nb201Spec(3, 10, 32, 16, 5)


def by_definition(net: nn.Module, inputs: torch.Tensor) -> float:
    """log|det K| with K summed as codes·codesᵀ + (1-codes)·(1-codes)ᵀ in float64."""
    kernel = torch.zeros(len(inputs), len(inputs), dtype=torch.float64)

    def agree(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        nonlocal kernel
        codes = (args[0].reshape(len(inputs), -1) > 0).double()
        kernel = kernel + codes @ codes.T + (1 - codes) @ (1 - codes).T

    hooks = [m.register_forward_pre_hook(agree) for m in net.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        net(inputs)
    for hook in hooks:
        hook.remove()
    return float(torch.linalg.slogdet(kernel)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    batch = (torch.randn(64, 3, 32, 32, generator=gen), torch.randint(10, (64,), generator=gen))
    nets = []
    for _ in range(args.cells):
        ops = tuple(OPS[int(i)] for i in torch.randint(1, len(OPS), (6,), generator=gen))
        torch.manual_seed(0)
        nets.append(Nb201Network(Nb201Cell(ops), EVALUATED))
    fast, slow, gaps = [], [], []
    for net in nets:
        start = time.perf_counter()
        value = score("nwot", net, batch)
        fast.append(time.perf_counter() - start)
        start = time.perf_counter()
        reference = by_definition(net, batch[0])
        slow.append(time.perf_counter() - start)
        gaps.append(abs(value - reference) / abs(reference))
    ratio = statistics.mean(slow) / statistics.mean(fast)
    print(f"{args.cells} cells: fast {statistics.mean(fast):.3f} s, by definition "
          f"{statistics.mean(slow):.3f} s per score (ratio {ratio:.2f}x); "
          f"largest relative difference {max(gaps):.2e}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        start = time.perf_counter()
        for net in nets:
            score("nwot", net, batch)
        print(f"fast form on {threads} thread(s): "
              f"{(time.perf_counter() - start) / len(nets):.3f} s per score")


if __name__ == "__main__":
    main()

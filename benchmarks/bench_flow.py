"""Time ``prohmr.flows.ConditionalGlow`` against a straightforward stock-``nflows`` Glow.

The reference is ProHMR's architecture assembled from stock ``nflows`` parts the plain way
(context concatenated to every sample's input of the initial layer, stock LULinear with its
triangular solves, no fast path) and loaded with the project's weights, so both compute the
same function; the script checks that before timing. Cases (ProHMR's default size):

- ``log_prob`` of 64 contexts x 2 poses (eval, no grad);
- sampling 4096 poses for one context (eval, no grad);
- sampling 64 poses for each of 32 contexts (eval, no grad);
- forward + backward of the NLL of 128 poses, one per context (training mode).

It prints median times (project and reference runs interleaved), the ratio
reference/project, and the project's GFLOP/s against the float32 matmul rate of a
4096x1024 @ 1024x1024 product into a preallocated output, timed between the runs (so all
see the same background load). "Needed" FLOPs count what the computation requires: with
``N`` samples per context the context half of each coupling net's initial layer is needed
once per context, not once per sample; a training step counts 3x the forward. The last
column is the project's time over the time those FLOPs take at the matmul rate.

Run: ``python benchmarks/bench_flow.py`` (or ``make bench``). Set ``PROHMR_BENCH_THREADS``
to change the CPU thread count (default 2, this project's CPU machine) and
``PROHMR_BENCH_DEVICE=cuda`` to time on a GPU.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
import warnings
from typing import Callable

import torch
from nflows.distributions import StandardNormal
from nflows.flows import Flow
from nflows.nn.nets.resnet import ResidualBlock
from nflows.transforms import (
    ActNorm,
    AdditiveCouplingTransform,
    CompositeTransform,
    LULinear,
)
from nflows.utils.torchutils import create_alternating_binary_mask
from torch import nn

from prohmr.flows import BATCH_NORM_EPS, ConditionalGlow

FEATURES, HIDDEN, LAYERS, BLOCKS, CONTEXT = 144, 1024, 4, 2, 2048
MATMUL_SHAPE = (4096, 1024, 1024)


class ReferenceNet(nn.Module):
    """The original coupling net from stock parts: context only in the initial layer."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.initial_layer = nn.Linear(in_features + CONTEXT, HIDDEN)
        self.blocks = nn.ModuleList(
            [
                ResidualBlock(HIDDEN, None, dropout_probability=0.5, use_batch_norm=True)
                for _ in range(BLOCKS)
            ]
        )
        for block in self.blocks:
            for batch_norm in block.batch_norm_layers:
                batch_norm.eps = BATCH_NORM_EPS
        self.final_layer = nn.Linear(HIDDEN, out_features)

    def forward(self, inputs: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        temps = self.initial_layer(torch.cat((inputs, context), dim=1))
        for block in self.blocks:
            temps = block(temps)
        return self.final_layer(temps)


def build_reference() -> Flow:
    transforms: list[nn.Module] = []
    for layer in range(LAYERS):
        transforms += [
            ActNorm(FEATURES),
            LULinear(FEATURES, identity_init=True),
            AdditiveCouplingTransform(
                create_alternating_binary_mask(FEATURES, even=layer % 2 == 1), ReferenceNet
            ),
        ]
    return Flow(CompositeTransform(transforms), StandardNormal([FEATURES]))


def randomise(flow: ConditionalGlow, generator: torch.Generator) -> None:
    """Trained-looking weights: perturbed parameters, initialised ActNorm, BN statistics."""
    with torch.no_grad():
        for name, parameter in flow.named_parameters():
            scale = 0.02 if "linear_layers" in name or "initial_layer" in name else 0.05
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
        for name, buffer in flow.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(0.1 * torch.randn(buffer.shape, generator=generator))
            elif name.endswith("running_var"):
                buffer.copy_(0.5 + torch.rand(buffer.shape, generator=generator))
            elif name.endswith("initialized"):
                buffer.fill_(True)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class MatmulClock:
    """The float32 matmul rate, sampled between the timed runs.

    Sampling it throughout (rather than once) makes "time / matmul-bound time" compare
    runs made under the same background load, which matters on a shared machine.
    """

    def __init__(self, device: torch.device) -> None:
        m, k, n = MATMUL_SHAPE
        self.device = device
        self.a = torch.randn(m, k, device=device)
        self.b = torch.randn(k, n, device=device)
        # A preallocated output: the rate of the product itself, without page-faulting a
        # fresh 16 MB result on every call.
        self.out = torch.empty(m, n, device=device)
        self.times: list[float] = []
        for _ in range(3):
            torch.mm(self.a, self.b, out=self.out)

    def tick(self) -> None:
        synchronise(self.device)
        start = time.perf_counter()
        torch.mm(self.a, self.b, out=self.out)
        synchronise(self.device)
        self.times.append(time.perf_counter() - start)

    @property
    def rate(self) -> float:
        m, k, n = MATMUL_SHAPE
        return 2.0 * m * k * n / statistics.median(self.times)


def paired_times(
    project: Callable[[], object],
    reference: Callable[[], object],
    repeats: int,
    clock: MatmulClock,
) -> tuple[float, float]:
    """Median times; runs interleaved (with matmul ticks) so background load hits all alike."""
    for _ in range(2):
        project()
        reference()
    project_times, reference_times = [], []
    for repeat in range(repeats):
        order = [(project, project_times), (reference, reference_times)]
        for function, times in order if repeat % 2 == 0 else order[::-1]:
            synchronise(clock.device)
            start = time.perf_counter()
            function()
            synchronise(clock.device)
            times.append(time.perf_counter() - start)
            clock.tick()
    return statistics.median(project_times), statistics.median(reference_times)


def flops_per_sample(context_once: bool) -> float:
    """Forward FLOPs of one sample; without the context half when it is shared."""
    d_id, d_tr = (FEATURES + 1) // 2, FEATURES // 2
    per_net = d_id * HIDDEN + BLOCKS * 2 * HIDDEN * HIDDEN + HIDDEN * d_tr
    if not context_once:
        per_net += CONTEXT * HIDDEN
    return 2.0 * LAYERS * (per_net + 2 * FEATURES * FEATURES)


def needed_flops(num_contexts: int, per_context: int, passes: float = 1.0) -> float:
    context_flops = 2.0 * LAYERS * CONTEXT * HIDDEN
    rows = num_contexts * per_context
    if per_context > 1:
        total = rows * flops_per_sample(True) + num_contexts * context_flops
    else:
        total = rows * flops_per_sample(False)
    return passes * total


def main() -> None:
    threads = int(os.environ.get("PROHMR_BENCH_THREADS", "2"))
    device = torch.device(os.environ.get("PROHMR_BENCH_DEVICE", "cpu"))
    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore", category=UserWarning)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)

    project = ConditionalGlow(FEATURES, HIDDEN, LAYERS, BLOCKS, CONTEXT)
    randomise(project, generator)
    reference = build_reference()
    reference.load_state_dict(project.state_dict())
    project.to(device).eval()
    reference.to(device).eval()

    contexts = torch.randn(64, CONTEXT, generator=generator).to(device)
    poses = torch.randn(64, 2, FEATURES, generator=generator).to(device)
    with torch.no_grad():
        ours, _ = project.log_prob(poses, contexts)
        theirs = reference.log_prob(
            poses.reshape(128, FEATURES), contexts.repeat_interleave(2, dim=0)
        ).reshape(64, 2)
    gap = (ours - theirs).abs().max().item()
    if gap > 1e-2:
        raise SystemExit(f"project and reference disagree: max |log_prob gap| = {gap}")

    clock = MatmulClock(device)
    rows: list[tuple[str, float, float, float]] = []

    def run(name: str, mine: Callable[[], object], stock: Callable[[], object],
            flops: float, repeats: int) -> None:
        t_project, t_reference = paired_times(mine, stock, repeats, clock)
        rows.append((name, t_project, t_reference, flops))

    with torch.no_grad():
        sample_one = contexts[:1]
        context32 = contexts[:32]
        run(
            "log_prob, 64 contexts x 2 poses",
            lambda: project.log_prob(poses, contexts),
            lambda: reference.log_prob(
                poses.reshape(128, FEATURES), contexts.repeat_interleave(2, dim=0)
            ),
            needed_flops(64, 2),
            repeats=21,
        )
        run(
            "sample 4096 poses, 1 context",
            lambda: project.sample(4096, sample_one),
            lambda: reference.sample_and_log_prob(4096, context=sample_one),
            needed_flops(1, 4096),
            repeats=5,
        )
        run(
            "sample 64 poses x 32 contexts",
            lambda: project.sample(64, context32),
            lambda: reference.sample_and_log_prob(64, context=context32),
            needed_flops(32, 64),
            repeats=7,
        )

    project.train()
    reference.train()
    train_x = torch.randn(128, FEATURES, generator=generator).to(device)
    train_context = torch.randn(128, CONTEXT, generator=generator).to(device)

    def project_step() -> None:
        project.zero_grad(set_to_none=True)
        (-project.log_prob(train_x, train_context)[0].mean()).backward()

    def reference_step() -> None:
        reference.zero_grad(set_to_none=True)
        (-reference.log_prob(train_x, train_context).mean()).backward()

    run(
        "train step (NLL fwd+bwd), 128 poses",
        project_step,
        reference_step,
        needed_flops(128, 1, passes=3.0),
        repeats=15,
    )

    rate = clock.rate
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = f"{threads} threads, {platform.processor() or platform.machine()}"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"torch {torch.__version__}, {machine}, load average {load}; "
        f"float32 matmul {MATMUL_SHAPE}: {rate / 1e9:.1f} GFLOP/s"
    )
    print()
    print(
        "| case | project (ms) | reference (ms) | reference / project "
        "| needed GFLOP | project GFLOP/s | time / matmul-bound time |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, t_project, t_reference, flops in rows:
        print(
            f"| {name} | {t_project * 1e3:.1f} | {t_reference * 1e3:.1f} | "
            f"{t_reference / t_project:.2f}x | {flops / 1e9:.1f} | "
            f"{flops / t_project / 1e9:.1f} | {t_project / (flops / rate):.2f} |"
        )


if __name__ == "__main__":
    main()

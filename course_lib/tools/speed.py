"""How fast this machine runs the course: a U-Net training step in float32 and on the fast path (GFLOP/s against a
plain matrix product), and the frames per second of lesson 3's GAN dashboard.

    python -m course_lib.tools.speed                 # the U-Net step and matrix products
    python -m course_lib.tools.speed --dashboard     # the GAN dashboard's frames per second, for each loss
"""

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..config import pick_device
from ..fastpath import describe_fast_path, describe_machine, fast_autocast, fast_dtype, prepare_model
from ..gan_dashboard import GANDashboard
from ..gans import LOSSES
from ..nets import n_params
from ..unet import UNet


def noise_prediction_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, t: torch.Tensor,
                          eps: torch.Tensor, fast: bool = True) -> float:
    """One training step of a noise predictor: loss = mean ||eps - model(x, t)||^2, backward, optimizer step,
    with the model's forward pass under `fast_autocast` when `fast`. Returns the loss.

    >>> m = torch.nn.Conv2d(1, 1, 3, padding=1); opt = torch.optim.Adam(m.parameters())
    >>> x = torch.randn(2, 1, 28, 28)
    >>> loss = noise_prediction_step(lambda x, t: m(x), opt, x, torch.zeros(2), torch.randn_like(x))
    >>> loss > 0
    True
    """
    with fast_autocast(x.device, enabled=fast):
        pred = model(x, t)
    loss = F.mse_loss(pred.float(), eps)  # in float32: a bfloat16 mean of many squares loses digits
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def _step_inputs(batch: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 1, 28, 28, generator=g)
    t = torch.randint(0, 1000, (batch,), generator=g)
    return x.to(device), t.to(device), torch.randn(batch, 1, 28, 28, generator=g).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training_step(model: nn.Module, batch: int = 128, steps: int = 5, fast: bool = False,
                       device: torch.device | str = "cpu", warmup: int = 2) -> float:
    """Median milliseconds of one `noise_prediction_step` (forward, backward, Adam) on random images and noise,
    after `warmup` untimed steps. Works on a copy: `model` itself is not trained. With `fast`, the copy is also
    prepared with `prepare_model`."""
    device = torch.device(device)
    model = copy.deepcopy(model)
    model = prepare_model(model, device) if fast else model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, t, eps = _step_inputs(batch, device)
    times = []
    for i in range(warmup + steps):
        _sync(device)
        start = time.perf_counter()
        noise_prediction_step(model, optimizer, x, t, eps, fast=fast)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def training_step_flops(model: nn.Module, batch: int = 128) -> int:
    """Floating-point operations of one training step's forward and backward passes (convolutions and matrix
    products, counted by torch.utils.flop_counter; a multiply-add counts 2). The Adam update, normalizations and
    activations are left out: a few percent of the total.

    A 3x3 convolution, 1 channel to 1, on 2 images of 28 x 28: 2 * 9 * 784 * 2 = 28,224 forward, as many again
    for the weights' gradient (the input's gradient is not needed):

    >>> class Conv(torch.nn.Conv2d):
    ...     def forward(self, x, t):
    ...         return super().forward(x)
    >>> training_step_flops(Conv(1, 1, 3, padding=1, bias=False), batch=2)
    56448
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = copy.deepcopy(model).cpu()
    x, t, eps = _step_inputs(batch, torch.device("cpu"))
    with FlopCounterMode(display=False) as counter:
        F.mse_loss(model(x, t).float(), eps).backward()
    return counter.get_total_flops()


def measure_gflops(model: nn.Module, batch: int = 128, steps: int = 5, fast: bool = False,
                   device: torch.device | str = "cpu") -> dict:
    """Achieved speed of a training step: {"ms_per_step", "gflop_per_step", "gflops"} with
    gflops = (FLOPs of a step / 1e9) / seconds per step. Compare it with `matmul_gflops`, what the same machine
    reaches on the easiest possible work, to see how much of the hardware the network uses."""
    ms = time_training_step(model, batch, steps, fast, device)
    gflop = training_step_flops(model, batch) / 1e9
    return {"ms_per_step": ms, "gflop_per_step": gflop, "gflops": gflop / (ms / 1000)}


def matmul_gflops(n: int = 1024, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                  repeats: int = 5) -> float:
    """GFLOP/s of an n x n matrix product (2 n^3 operations) in `dtype`: the median of `repeats` timed runs,
    after one untimed run. Close to the most the machine can compute per second in that type.

    >>> matmul_gflops(64, repeats=1) > 0
    True
    """
    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(device, dtype) for _ in range(2))
    times = []
    for i in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        if i:
            times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def measure_fps(seconds: float = 5.0, steps_per_frame: int = 5, **dashboard_args) -> dict[str, float]:
    """Frames per second of the run loop (`steps_per_frame` training steps, then one redraw), for `seconds`.

    >>> speed = measure_fps(seconds=0.2, steps_per_frame=1)
    >>> sorted(speed)
    ['fps', 'frames', 'ms_render', 'ms_train', 'steps_per_frame']
    """
    dash = GANDashboard(steps_per_frame=steps_per_frame, **dashboard_args)
    train_s = render_s = 0.0
    frames, start = 0, time.perf_counter()
    while frames == 0 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        dash._train(steps_per_frame)
        t1 = time.perf_counter()
        dash.draw()
        train_s, render_s, frames = train_s + t1 - t0, render_s + time.perf_counter() - t1, frames + 1
    return {"fps": frames / (time.perf_counter() - start), "frames": frames, "steps_per_frame": steps_per_frame,
            "ms_train": 1000 * train_s / frames, "ms_render": 1000 * render_s / frames}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time a U-Net training step in float32 and with the fast path.")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the best one here)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed steps; the median is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--matmul-n", type=int, default=1024)
    parser.add_argument("--dashboard", action="store_true", help="measure the GAN dashboard's frames per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="with --dashboard: seconds per loss")
    parser.add_argument("--steps-per-frame", type=int, default=5, help="with --dashboard")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.dashboard:
        for loss in LOSSES:
            s = measure_fps(args.seconds, args.steps_per_frame, loss=loss)
            print(f"{loss:>15}: {s['fps']:5.1f} frames/s   ({s['steps_per_frame']} steps/frame; per frame "
                  f"{s['ms_train']:.0f} ms training + {s['ms_render']:.0f} ms drawing)")
        return
    device = pick_device(args.device)
    torch.manual_seed(0)
    model = UNet()
    print(describe_machine(device))
    print("fast path:", describe_fast_path(device))
    print(f"U-Net {model.channels}, {n_params(model):,} parameters, batch {args.batch}, median of {args.steps} steps")
    slow = measure_gflops(model, args.batch, args.steps, fast=False, device=device)
    print(f"  float32:   {slow['ms_per_step']:8.1f} ms/step  {slow['gflops']:7.1f} GFLOP/s "
          f"({slow['gflop_per_step']:.1f} GFLOP per step)")
    if fast_dtype(device) is not None:
        fast = measure_gflops(model, args.batch, args.steps, fast=True, device=device)
        print(f"  fast path: {fast['ms_per_step']:8.1f} ms/step  {fast['gflops']:7.1f} GFLOP/s "
              f"({slow['ms_per_step'] / fast['ms_per_step']:.2f}x faster)")
    n = args.matmul_n
    for dtype in (torch.float32, torch.bfloat16):
        print(f"  matmul {n}x{n} {str(dtype).replace('torch.', '')}: {matmul_gflops(n, dtype, device):7.1f} GFLOP/s")


if __name__ == "__main__":
    main()

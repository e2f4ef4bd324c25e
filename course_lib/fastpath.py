"""The fast path: do the convolutions in 16-bit floats where the hardware does them faster, and nothing otherwise.

Autocast runs the convolutions and matrix products in bfloat16 (or float16) and keeps the weights, the optimizer
and the loss in float32. bfloat16 keeps float32's range (8 exponent bits) with fewer digits (8 bits of mantissa,
about 3 decimal digits), so a network trains with it unchanged; float16 (older GPUs) has a narrower range and needs
a gradient scaler (`grad_scaler`).

- CUDA: bfloat16 on GPUs that have it (compute capability 8.0+: A100, H100, RTX 30xx...), else float16 (T4, V100).
- CPU:  bfloat16 only if the CPU has bfloat16 instructions (`avx512_bf16` or `amx_bf16` in /proc/cpuinfo, Linux).
  Without them bfloat16 is emulated and *slower* than float32, so the fast path is then a no-op.
- Anything else (Apple's MPS...): a no-op.

`COURSE_FAST_PATH=off` turns it off everywhere (to compare, or to rule it out when something looks wrong).

A training step with it (the prediction goes back to float32 before the loss):

    with fast_autocast(device):
        pred = model(x_t, t)
    loss = F.mse_loss(pred.float(), eps)

    >>> with fast_autocast("cpu"):  # bfloat16 here if the CPU has it, plain float32 otherwise; never an error
    ...     y = torch.nn.Linear(4, 2)(torch.randn(3, 4))
    >>> y.float().shape
    torch.Size([3, 2])

`python -m course_lib.fastpath` describes this machine and times a U-Net training step with and without it.
"""

import argparse
import contextlib
import copy
import functools
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # the x86 instructions that compute in bfloat16 natively


@functools.lru_cache(maxsize=None)
def cpu_bf16_flags() -> tuple[str, ...]:
    """Which of `CPU_BF16_FLAGS` this CPU lists in /proc/cpuinfo; () when it lists none or there is no such file
    (macOS, Windows), so the CPU fast path stays off there. Read once, then cached."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return tuple(flag for flag in CPU_BF16_FLAGS if flag in flags)
    except OSError:
        pass
    return ()


def _enabled_by_env() -> bool:
    value = os.environ.get("COURSE_FAST_PATH", "auto").strip().lower()
    if value not in ("auto", "off", ""):
        raise ValueError(f"COURSE_FAST_PATH={value!r} is not a setting. Use `export COURSE_FAST_PATH=off` to turn "
                         f"the fast path off, or unset it (`unset COURSE_FAST_PATH`) to choose automatically.")
    return value != "off"


def _cpu_bf16_is_fast() -> bool:
    """bfloat16 instructions in the CPU, and a torch whose oneDNN (MKL-DNN) library can use them."""
    try:
        return bool(cpu_bf16_flags()) and torch.backends.mkldnn.is_available() and bool(
            torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or unusual torch build: stay on float32
        return False


def fast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The 16-bit type the fast path computes in on `device`, or None where it would not be faster.

    >>> fast_dtype("cpu") in (torch.bfloat16, None)
    True
    """
    device = torch.device(device)
    if not _enabled_by_env():
        return None
    if device.type == "cuda" and torch.cuda.is_available():
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16  # bf16 units arrived with Ampere (8.0)
    if device.type == "cpu" and _cpu_bf16_is_fast():
        return torch.bfloat16
    return None


def fast_autocast(device: torch.device | str, enabled: bool = True):
    """A context manager: autocast to `fast_dtype(device)` inside the block, or nothing at all where that is None
    (or `enabled` is False). Take the network's output back to float32 before using it: in a training step
    `F.mse_loss(pred.float(), eps)`, in a sampler `eps = model(x, t).float()` (the sampler's arithmetic on x_t
    needs float32's digits).

    >>> with fast_autocast("cpu", enabled=False):
    ...     torch.nn.Linear(4, 2)(torch.randn(3, 4)).dtype
    torch.float32
    """
    device = torch.device(device)
    dtype = fast_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    try:
        return torch.autocast(device.type, dtype=dtype)
    except (RuntimeError, ValueError):  # this torch cannot autocast there: plain float32 is always correct
        return contextlib.nullcontext()


def grad_scaler(device: torch.device | str):
    """A gradient scaler for float16 training (it multiplies the loss so small gradients do not round to 0 in
    float16); disabled, so a no-op, everywhere else. Use it as
    `scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()`."""
    device = torch.device(device)
    enabled = fast_dtype(device) is torch.float16
    try:
        return torch.amp.GradScaler(device.type, enabled=enabled)
    except (AttributeError, TypeError):  # torch < 2.3 has only the CUDA one
        return torch.cuda.amp.GradScaler(enabled=enabled)


def uses_channels_last(device: torch.device | str) -> bool:
    """Whether `prepare_model` stores conv weights as channels_last (B, H, W, C in memory) on `device`.

    Only on a GPU with the fast path, where NVIDIA's 16-bit convolution kernels want that layout (not measured
    for this course's U-Net). Not on the CPU: measured on a 2-core AMD EPYC (Zen 4), channels_last made the
    bfloat16 U-Net training step about 1.2x slower, because PyTorch's CPU GroupNorm is several times slower in that
    layout, and float32 only ~4% faster."""
    device = torch.device(device)
    return device.type == "cuda" and fast_dtype(device) is not None


def prepare_model(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Move `model` to `device`, in the memory layout that is fastest there (see `uses_channels_last`).

    >>> prepare_model(torch.nn.Conv2d(1, 2, 3), "cpu").weight.is_contiguous()
    True
    """
    device = torch.device(device)
    model = model.to(device)
    if uses_channels_last(device):
        model = model.to(memory_format=torch.channels_last)
    return model


def describe_fast_path(device: torch.device | str) -> str:
    """One line saying what the fast path does on `device`, and why.

    >>> describe_fast_path("cpu").startswith("cpu: ")
    True
    """
    device = torch.device(device)
    if not _enabled_by_env():
        return f"{device.type}: float32 (the fast path is off: COURSE_FAST_PATH=off)"
    dtype = fast_dtype(device)
    layout = "channels_last" if uses_channels_last(device) else "contiguous (NCHW)"
    if device.type == "cuda" and torch.cuda.is_available():
        name, cap = torch.cuda.get_device_name(device), torch.cuda.get_device_capability(device)
        why = ("the GPU has bfloat16 units (compute capability >= 8.0)" if dtype is torch.bfloat16 else
               f"compute capability {cap[0]}.{cap[1]} < 8.0 has no bfloat16 units; float16 needs grad_scaler()")
        return f"cuda ({name}): {str(dtype).replace('torch.', '')} autocast, {layout}: {why}"
    if device.type == "cpu":
        flags = cpu_bf16_flags()
        if dtype is torch.bfloat16:
            return (f"cpu: bfloat16 autocast, {layout}: the CPU has {' and '.join(flags)}, so oneDNN runs "
                    f"convolutions and matrix products in bfloat16 natively")
        if flags:
            return f"cpu: float32: the CPU has {' and '.join(flags)} but this torch's oneDNN cannot use them"
        return ("cpu: float32: the CPU lists no bfloat16 instructions (avx512_bf16, amx_bf16); emulated bfloat16 "
                "would be slower than float32")
    return f"{device.type}: float32 (no fast path for this kind of device)"


# ---------------------------------------------------------------- measuring it


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


def describe_machine(device: torch.device | str) -> str:
    """The processor (and GPU) this runs on, and how many threads torch uses."""
    device = torch.device(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    text = f"CPU: {cpu}, {os.cpu_count()} cores, torch uses {torch.get_num_threads()} threads, " \
           f"bf16 flags: {', '.join(cpu_bf16_flags()) or 'none'}"
    if device.type == "cuda" and torch.cuda.is_available():
        text += f"\nGPU: {torch.cuda.get_device_name(device)}"
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time a U-Net training step in float32 and with the fast path.")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the best one here)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed steps; the median is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--matmul-n", type=int, default=1024)
    args = parser.parse_args(argv)

    from .config import pick_device
    from .unet import UNet

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.manual_seed(0)
    model = UNet()
    print(describe_machine(device))
    print("fast path:", describe_fast_path(device))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"U-Net {model.channels}, {n_params:,} parameters, batch {args.batch}, median of {args.steps} steps")
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

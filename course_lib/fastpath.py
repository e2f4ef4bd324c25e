"""The fast path: do the convolutions in 16-bit floats where the hardware does them faster, and nothing otherwise.

Autocast runs the convolutions and matrix products in bfloat16 (or float16) and keeps the weights, the optimizer
and the loss in float32. bfloat16 keeps float32's range (8 exponent bits) with fewer digits (8 bits of mantissa,
about 3 decimal digits), so a network trains with it unchanged; float16 (older GPUs) has a narrower range and needs
a gradient scaler (`grad_scaler`).

- CUDA: bfloat16 on GPUs that have it (compute capability 8.0+: A100, H100, RTX 30xx...), else float16 (T4, V100).
- CPU:  bfloat16 only if the CPU has bfloat16 instructions (`avx512_bf16` or `amx_bf16` in /proc/cpuinfo, Linux)
  *and* a bfloat16 matrix product measured once on it is clearly faster than a float32 one. Without the
  instructions bfloat16 is emulated and slower than float32; with `avx512_bf16` alone it depends on the CPU (an AMD
  EPYC ran it 2.2x faster, an Intel Xeon whose virtual machine hides AMX 0.56x, and a U-Net step there 0.83x). Where
  it would not be faster, the fast path is a no-op.
- Anything else (Apple's MPS...): a no-op.

`COURSE_FAST_PATH=off` turns it off everywhere (to compare, or to rule it out when something looks wrong);
`COURSE_FAST_PATH=float16` computes in float16 on any GPU, as a T4 does, so that path (and its gradient scaler) can
be tried on a newer GPU; the CPU is left as it would be.

A training step with it (the prediction goes back to float32 before the loss):

    with fast_autocast(device):
        pred = model(x_t, t)
    loss = F.mse_loss(pred.float(), eps)

    >>> with fast_autocast("cpu"):  # bfloat16 here if the CPU has it, plain float32 otherwise; never an error
    ...     y = torch.nn.Linear(4, 2)(torch.randn(3, 4))
    >>> y.float().shape
    torch.Size([3, 2])

`python -m course_lib.tools.speed` describes this machine and times a U-Net training step with and without it.
"""

import contextlib
import functools
import os
import platform
import time
from typing import Callable

import torch
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


def _setting() -> str:
    """`COURSE_FAST_PATH`: "auto" (unset), "off" or "float16"; anything else is an error that lists them."""
    value = os.environ.get("COURSE_FAST_PATH", "auto").strip().lower() or "auto"
    if value not in ("auto", "off", "float16"):
        raise ValueError(f"COURSE_FAST_PATH={value!r} is not a setting. Use `export COURSE_FAST_PATH=off` to turn "
                         f"the fast path off, `export COURSE_FAST_PATH=float16` to compute in float16 on a GPU as a "
                         f"T4 does, or unset it (`unset COURSE_FAST_PATH`) to choose automatically.")
    return value


def _enabled_by_env() -> bool:
    return _setting() != "off"


BF16_MIN_SPEEDUP = 1.2  # bfloat16 must multiply matrices at least this much faster than float32 to be used


@functools.lru_cache(maxsize=None)
def cpu_bf16_speedup() -> float:
    """How many times faster this CPU multiplies two 512 x 512 matrices in bfloat16 than in float32 (the best of 5
    products each, after one to warm up). Measured once per process, in a few milliseconds.

    >>> cpu_bf16_speedup() > 0
    True
    """
    def best_seconds(a: torch.Tensor) -> float:
        torch.mm(a, a)  # the first product prepares oneDNN's kernel
        times = []
        for _ in range(5):
            start = time.perf_counter()
            torch.mm(a, a)
            times.append(time.perf_counter() - start)
        return min(times)

    a = torch.randn(512, 512, generator=torch.Generator().manual_seed(0))
    return best_seconds(a) / best_seconds(a.bfloat16())


def _onednn_has_bf16() -> bool:
    """A torch whose oneDNN (MKL-DNN) library can compute in bfloat16 on this CPU."""
    try:
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or unusual torch build: stay on float32
        return False


def _cpu_bf16_is_fast() -> bool:
    """bfloat16 instructions in the CPU, a oneDNN that can use them, and bfloat16 measured faster than float32 here
    (`cpu_bf16_speedup`)."""
    return bool(cpu_bf16_flags()) and _onednn_has_bf16() and cpu_bf16_speedup() >= BF16_MIN_SPEEDUP


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
        if _setting() == "float16":
            return torch.float16
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


def bf16_call(fn: Callable, device: torch.device | str) -> Callable:
    """`fn` computed under bfloat16 autocast, its output taken back to float32, where the fast path computes in
    bfloat16 on `device`; `fn` itself everywhere else. For steps that own their optimizers (the GAN and pix2pix
    steps): they have no gradient scaler, so on float16 GPUs (T4) they stay in float32.

    >>> f = bf16_call(torch.nn.Linear(4, 2), "cpu")
    >>> f(torch.randn(3, 4)).dtype
    torch.float32
    """
    device = torch.device(device)
    if fast_dtype(device) is not torch.bfloat16:
        return fn

    def call(*args):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = fn(*args)
        return out.float()

    return call


@contextlib.contextmanager
def exact_float32():
    """Inside it, float32 convolutions and matrix products keep all of float32's digits on a GPU too. By PyTorch's
    default an NVIDIA GPU (Ampere and later) computes float32 convolutions in TF32, with 10 bits of mantissa (about
    3 decimal digits), so two computations that are equal on paper can differ by 1e-3 there. A no-op on the CPU.

    >>> with exact_float32():
    ...     torch.backends.cudnn.allow_tf32
    False
    """
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


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

    On a GPU with the fast path, where NVIDIA's 16-bit convolution kernels want that layout (not measured for this
    course's U-Net). On a CPU computing in float32: lesson 4's U-Net training step (batch 32, 2 threads) took 65 ms
    in that layout against 71-73 ms in the usual one on a 2-core Intel Xeon, and sampling 300 digits 184-193 ms per
    call against 199-265 ms (on a 2-core AMD EPYC the step was about 4% faster); lesson 5's CGAN trained in 85 s
    instead of 91 s, its two pix2pix models in 75 s instead of 84 s (Intel Xeon). Not on a CPU computing in
    bfloat16: there, on the AMD EPYC, it made the U-Net step about 1.2x slower, because PyTorch's CPU GroupNorm is
    several times slower in that layout."""
    device = torch.device(device)
    if device.type == "cuda":
        return fast_dtype(device) is not None
    return device.type == "cpu" and fast_dtype(device) is None


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
               "COURSE_FAST_PATH=float16 asks for float16, as on a T4; float16 needs grad_scaler()"
               if _setting() == "float16" else
               f"compute capability {cap[0]}.{cap[1]} < 8.0 has no bfloat16 units; float16 needs grad_scaler()")
        return f"cuda ({name}): {str(dtype).replace('torch.', '')} autocast, {layout}: {why}"
    if device.type == "cpu":
        flags = cpu_bf16_flags()
        if dtype is torch.bfloat16:
            return (f"cpu: bfloat16 autocast, {layout}: the CPU has {' and '.join(flags)}, and oneDNN ran a "
                    f"bfloat16 matrix product {cpu_bf16_speedup():.2f}x as fast as a float32 one here")
        if flags and _onednn_has_bf16():
            return (f"cpu: float32: the CPU has {' and '.join(flags)}, but a bfloat16 matrix product ran "
                    f"{cpu_bf16_speedup():.2f}x as fast as a float32 one here (the fast path needs "
                    f"{BF16_MIN_SPEEDUP}x)")
        if flags:
            return f"cpu: float32: the CPU has {' and '.join(flags)} but this torch's oneDNN cannot use them"
        return ("cpu: float32: the CPU lists no bfloat16 instructions (avx512_bf16, amx_bf16); emulated bfloat16 "
                "would be slower than float32")
    return f"{device.type}: float32 (no fast path for this kind of device)"


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

"""How much memory a training step needs, measured on the CPU with the torch profiler (`python -m
course_lib.tools.gpu_dry_run` reports it for every model at the `gpu` profile's sizes)."""

import contextlib
import os
import re
import sys
import tempfile

import torch


@contextlib.contextmanager
def peak_memory():
    """Measure the most CPU memory held at once by tensors allocated inside the block (those alive before it do
    not count, unless they are freed and allocated again): `peak["bytes"]` once the block has ended, and
    `peak["held"]`, the bytes held after each allocation and free. Reads the torch profiler's record of every
    allocation (+ bytes) and free (- bytes), in the order they happened."""
    peak = {}
    with _without_profiler_log():
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profiler:
            yield peak
        events = profiler.profiler.kineto_results.events()
    changes = sorted(((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]"
                      and e.device_type().name == "CPU"), key=lambda change: change[0])
    held = torch.tensor([0] + [nbytes for _, nbytes in changes], dtype=torch.int64).cumsum(0)
    peak["bytes"], peak["held"] = int(held.max()), held


# how the profiler's C++ library logs: "LEVEL:2024-01-31 12:00:00 pid:tid File.cpp:12] message"
PROFILER_LOG = re.compile(r"^[A-Z]+:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+:\d+ \S+\.cpp:\d+\]")


@contextlib.contextmanager
def _without_profiler_log():
    """The profiler's C++ library writes a few lines to stderr each time it starts (and, with no GPU, that it found
    none): hold stderr back during the block, then pass on every other line."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode(errors="replace").splitlines(keepends=True):
                if not PROFILER_LOG.match(line):
                    sys.stderr.write(line)

"""How torch's CPU threads wait for each other, chosen once by `import course_lib`, before torch starts them.

Between two pieces of parallel work torch's threads spin by default (OpenMP's default wait policy): the fastest while
nothing else runs. When other programs keep the cores busy (a second kernel, a video call, a build), the spinning
threads take turns with the working ones: on this course's 2-core machine a small MLP step ran 2.5 times slower, and a
conv autoencoder up to 10 times. Sleeping while waiting (`OMP_WAIT_POLICY=PASSIVE`) loses little then, but on idle
cores it made a diffusion U-Net step 1.6 times slower (README, "On a busy machine"). So the course looks at the cores
for a fifth of a second and picks: PASSIVE when other programs keep more than half a core busy, OpenMP's default
otherwise (a busy first look is checked once more for half a second, so a burst that ends does not count). OpenMP
reads the setting only once, when torch is imported, so this module must run before any course module imports torch
(`course_lib/__init__` imports it first). A value set in the environment is always kept.

`POLICY` is what is in force in this process ("PASSIVE", "ACTIVE", or "spin (OpenMP's default)") and `WHY` says why.
"""

import os
import sys
import time

BUSY_CORES = 0.5  # how much of the cores other programs may use before the threads sleep while waiting
SPIN = "spin (OpenMP's default)"
TORCH_FIRST = "torch was imported before course_lib, so the course could not choose"


def busy_cores(seconds: float = 0.2) -> float:
    """How many cores other programs keep busy: measured over `seconds` from Linux's /proc/stat (this process sleeps
    meanwhile), elsewhere the load average of the last minute, and 0 where neither exists."""
    def ticks() -> tuple[int, int]:  # (all, idle + waiting for disk), summed over the cores
        with open("/proc/stat") as stat:
            counts = [int(field) for field in stat.readline().split()[1:]]
        return sum(counts), counts[3] + counts[4]

    try:
        total, idle = ticks()
        time.sleep(seconds)
        total_after, idle_after = ticks()
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    share = 1 - (idle_after - idle) / max(1, total_after - total)
    return share * (os.cpu_count() or 1)


def steady_busy_cores(first: float = 0.2, again: float = 0.5) -> float:
    """`busy_cores` over `first` seconds; when that is above BUSY_CORES, once more over `again` seconds, keeping the
    smaller. A burst that ends (the previous kernel still shutting down when this one starts) is not a busy machine;
    a steady load (a second kernel training, a video call) is busy in both. Only a busy start pays the extra wait."""
    busy = busy_cores(first)
    return min(busy, busy_cores(again)) if busy > BUSY_CORES else busy


def choose(environment: dict, torch_started: bool, busy: float) -> tuple[str, str]:
    """(policy, why) for a process whose environment is `environment`: the value set there is kept; once torch is
    imported nothing can change it; otherwise PASSIVE when `busy` (cores used by other programs) exceeds BUSY_CORES."""
    if environment.get("OMP_WAIT_POLICY"):
        return environment["OMP_WAIT_POLICY"].upper(), "OMP_WAIT_POLICY was set in the environment"
    if torch_started:
        return SPIN, TORCH_FIRST
    if busy > BUSY_CORES:
        return "PASSIVE", f"other programs kept {busy:.1f} cores busy when the course started"
    return SPIN, f"the cores were idle when the course started ({busy:.1f} busy)"


def _apply() -> tuple[str, str]:
    torch_started = "torch" in sys.modules
    measure = not (os.environ.get("OMP_WAIT_POLICY") or torch_started)
    policy, why = choose(os.environ, torch_started, steady_busy_cores() if measure else 0.0)
    if policy == "PASSIVE" and measure:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read by OpenMP when torch starts, and by kernels started from here
    return policy, why


POLICY, WHY = _apply()

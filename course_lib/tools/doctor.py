"""Is this machine ready for the course? `course_lib.doctor()` in a notebook, or `python -m course_lib.tools.doctor`.

It prints one line per item (torch and CUDA, the device the lessons will use, Colab and its GPU runtime, ipywidgets,
where the data will come from, the bundled pretrained weights) and what to do about anything that is not right.

    >>> report = doctor(quiet=True, check_network=False)
    >>> list(report)
    ['course_lib', 'torch', 'device', 'cpu', 'colab', 'ipywidgets', 'data', 'bundled weights']
"""

import importlib.metadata
import importlib.util
import os
import platform
import socket
import sys
import types
import urllib.parse

import torch

MNIST_HOST = ("ossci-datasets.s3.amazonaws.com", 443)  # torchvision's first MNIST mirror
OK, WARN, FAIL = "ok", "warn", "FAIL"


def in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _can_reach(host: tuple[str, int], timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def check_torch() -> tuple[str, str]:
    cuda = torch.version.cuda or "none (a CPU-only build)"
    return OK, f"torch {torch.__version__}, built with CUDA {cuda}; torchvision {_version('torchvision')}"


def check_device() -> tuple[str, str]:
    from ..config import pick_device

    try:
        device = pick_device()
    except RuntimeError as err:  # COURSE_DEVICE asks for a device that is not there
        return FAIL, f"{err} (COURSE_DEVICE={os.environ.get('COURSE_DEVICE')})"
    if device.type == "cuda":
        return OK, f"cuda: {torch.cuda.get_device_name(device)}, {torch.cuda.get_device_properties(device).total_memory / 2**30:.0f} GiB"
    note = "" if device.type == "mps" else "; lessons use the 'cpu' profile (a few minutes each), or USE_PRETRAINED"
    return OK, f"{device.type} ({torch.get_num_threads()} threads){note}"


def check_cpu() -> tuple[str, str]:
    """Whether other programs keep the cores busy, and how torch's threads wait for each other: they spin on idle
    cores and sleep on busy ones, as `import course_lib` chose when the kernel started (course_lib/wait_policy)."""
    from ..config import WAIT_POLICY, WAIT_POLICY_WHY

    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0  # processes running or waiting, last minute
    sleeping = WAIT_POLICY == "PASSIVE"
    waiting = f"torch's threads {'sleep' if sleeping else 'spin'} while they wait ({WAIT_POLICY}: {WAIT_POLICY_WHY})"
    if busy > 0.75 * cores:
        fix = "" if sleeping else ("; spinning threads can make a lesson 10x slower on a busy CPU: restart the kernel "
                                   "(the course then lets them sleep) or start Jupyter with OMP_WAIT_POLICY=PASSIVE")
        return WARN, (f"the CPU is busy: load {busy:.1f} on {cores} cores. Close other programs (a second kernel, a "
                      f"video call) while a lesson trains; {waiting}{fix}")
    if sleeping and WAIT_POLICY_WHY.startswith("other programs"):  # the CPU was busy at the start, no longer
        return OK, (f"load {busy:.1f} on {cores} cores; {waiting}. The CPU is idle now: restarting the kernel lets "
                    "them spin, which trains the diffusion lessons' U-Nets up to 1.6x faster")
    return OK, f"load {busy:.1f} on {cores} cores; {waiting}"


def check_colab() -> tuple[str, str]:
    if not in_colab():
        return OK, "not Colab (a local Jupyter)"
    if torch.cuda.is_available():
        return OK, "Colab with a GPU runtime"
    return WARN, ("Colab without a GPU: lessons will train on the CPU. Select one with Runtime > Change runtime type "
                  "> Hardware accelerator: T4 GPU > Save (the session restarts; run the install cell again).")


def check_widgets() -> tuple[str, str]:
    version = _version("ipywidgets")
    if version is None:
        return FAIL, "ipywidgets is not installed: pip install 'ipywidgets>=7.6' (sliders and live plots need it)"
    major = int(version.split(".")[0])
    if major < 7:
        return FAIL, f"ipywidgets {version} is too old: pip install 'ipywidgets>=7.6'"
    return OK, f"ipywidgets {version} (the course works with 7 and 8)"


def check_data(check_network: bool = True) -> tuple[str, str]:
    """Where the digits will come from, as `load_dataset("mnist")` decides it: FAIL when the bundled digits (which
    the lessons and the metrics need) are missing or damaged; WARN when COURSE_DATA_DIR is unusable or read-only
    (the lessons then fall back to the bundled digits, and say why)."""
    from ..data import BUNDLED_ROOT, DataDirError, bundled_hashes, cache_dir, data_mirror, offline_mode, verify_bundled

    try:
        hashes = bundled_hashes()
        if len(hashes) != 4:
            raise ValueError(f"{BUNDLED_ROOT / 'PROVENANCE.md'} lists {len(hashes)} of the 4 bundled MNIST files.")
        for file in hashes:
            verify_bundled(file)
    except (OSError, ValueError) as err:
        return FAIL, str(err)
    try:
        root = cache_dir()
    except DataDirError as err:
        return WARN, f"{err} Until then the lessons use the 5,000 bundled MNIST digits."
    try:
        from torchvision import datasets

        datasets.MNIST(root=root, train=True, download=False)  # raises when the files are not all there
        return OK, f"full MNIST is cached in {root}"
    except RuntimeError:
        pass
    if offline_mode():
        return OK, "offline (COURSE_OFFLINE is set): the 5,000 bundled MNIST digits will be used"
    if not os.access(root, os.W_OK | os.X_OK):
        return WARN, (f"the data cache {root} is read-only, so MNIST cannot be downloaded into it: the lessons use "
                      f"the 5,000 bundled digits. Point COURSE_DATA_DIR at a folder you can write to, e.g. "
                      f"`export COURSE_DATA_DIR=$HOME/course_data`.")
    if not check_network:
        return OK, "not checked; without a connection the 5,000 bundled MNIST digits are used"
    mirror = data_mirror()
    if mirror:  # a classroom mirror: the only place the lessons download from
        url = urllib.parse.urlsplit(mirror)
        host = (url.hostname or "", url.port or (443 if url.scheme == "https" else 80))
        where = f"the classroom mirror COURSE_DATA_MIRROR={mirror}"
    else:
        host, where = MNIST_HOST, "its mirror"
    if _can_reach(host):
        return OK, f"MNIST can be downloaded from {where} (it will be cached in {root})"
    return WARN, (f"MNIST cannot be downloaded (no connection to {where}): the lessons will use the 5,000 bundled "
                  "digits, enough for every lesson in the 'cpu' profile")


def check_weights() -> tuple[str, str]:
    from ..metrics import NETWORKS, verify_feature_networks
    from ..pretrained import read_manifest, total_bytes, verify

    # the metrics' two feature networks first: without them no score of the course can be computed
    metric_problems = verify_feature_networks()
    if metric_problems:
        return FAIL, (f"the quality metrics' classifier weights do not match their manifests "
                      f"({'; '.join(metric_problems)}). Reinstall the course.")
    n = len(read_manifest()["models"])
    if n == 0:
        return WARN, "no bundled pretrained weights: USE_PRETRAINED will not work (python -m course_lib.tools.bundle build)"
    problems = verify()
    if problems:
        return FAIL, (f"{len(problems)} of {n} bundled weight files do not match the manifest ({'; '.join(problems)}). "
                      f"Reinstall the course.")
    return OK, (f"all {n} bundled weight files and the metrics' {len(NETWORKS)} classifiers match their sha256 "
                f"({total_bytes() / 1e6:.1f} MB); USE_PRETRAINED works")


def check_course() -> tuple[str, str]:
    from ..config import profile_name

    return OK, (f"course_lib {_version('course_lib') or '(not installed, imported from the source tree)'}; "
                f"Python {platform.python_version()}; profile '{profile_name()}' "
                f"(COURSE_PROFILE={os.environ.get('COURSE_PROFILE', 'not set')})")


def doctor(quiet: bool = False, check_network: bool = True) -> dict[str, tuple[str, str]]:
    """Check everything the lessons need; print a line per item (unless quiet) and return {item: (status, detail)}."""
    checks = {
        "course_lib": check_course,
        "torch": check_torch,
        "device": check_device,
        "cpu": check_cpu,
        "colab": check_colab,
        "ipywidgets": check_widgets,
        "data": lambda: check_data(check_network),
        "bundled weights": check_weights,
    }
    report = {}
    for item, check in checks.items():
        try:
            report[item] = check()
        except Exception as err:  # a doctor that crashes helps nobody: report it and go on
            report[item] = (FAIL, f"the check itself failed: {type(err).__name__}: {err}")
        if not quiet:
            status, detail = report[item]
            print(f"[{status:>4}] {item:16s} {detail}")
    if not quiet:
        bad = [item for item, (status, _) in report.items() if status == FAIL]
        print("Everything the lessons need is here." if not bad else f"Fix first: {', '.join(bad)}.")
    return report


def main() -> int:
    report = doctor()
    return 1 if any(status == FAIL for status, _ in report.values()) else 0


class _CallableModule(types.ModuleType):
    """Lets a notebook write `course_lib.doctor()` for `course_lib.doctor.doctor()`."""

    def __call__(self, quiet: bool = False, check_network: bool = True) -> dict[str, tuple[str, str]]:
        return doctor(quiet, check_network)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())

"""Run lessons top to bottom, as a student's Run-All does, and record how long each took and what it printed.

    python -m course_lib.tools.run_lessons --profile cpu --only diffusion conditional
    python -m course_lib.tools.run_lessons --profile gpu --jobs 10 --threads 1 --out runs/gpu_lessons

Each lesson's notebook is executed by a Jupyter kernel (nbclient), as `jupyter nbconvert --execute` does: the live
plots draw their frames into the cell outputs as for a student (`--headless` skips them), and nothing is downloaded
(`COURSE_OFFLINE=1`: the bundled digits). For each lesson, `--out` gets:

- `NN_name.log`: every cell's printed output and error, with the seconds the cell took;
- `NN_name.ipynb`: the executed notebook (its figures too);
- `run_lessons.json`: per lesson, the seconds of the whole run, whether it passed, the error if not, and its five
  slowest cells; written again as each lesson finishes, so a run that is stopped keeps what it finished.

`--deadline S` interrupts a lesson after S seconds (it is then recorded as stopped, with the cell it had reached).
`--jobs N` runs N lessons at once (each in its own kernel; on a GPU they share it), `--threads T` gives each kernel T
torch threads. Times measured with several jobs are each lesson's time while sharing the machine: an upper bound on
a lesson run alone. A lesson that fails does not stop the others; the exit code is 1 when any failed.
"""

import argparse
import json
import multiprocessing
import os
import platform
import re
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path

from .bundle import NOTEBOOKS, ROOT


def cell_seconds(cell) -> float:
    """How long a code cell took, from the times the kernel recorded (0 for a cell that did not run)."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def cell_text(cell) -> str:
    """What a code cell printed (streams, text results, errors), as plain text."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data") and "text/plain" in output["data"]:
            if "image/png" not in output["data"]:  # a figure's text/plain is only "<Figure ...>"
                parts.append(output["data"]["text/plain"] + "\n")
        elif output.get("output_type") == "error":
            parts.append(f"{output['ename']}: {output['evalue']}\n")
    return "".join(parts)


def run_one(lesson: str, profile: str, out: Path, timeout: int, threads: int | None,
            deadline: float | None = None, headless: bool = False) -> dict:
    """Execute one lesson's notebook; return its record (see the module's docstring). After `deadline` seconds the
    kernel is interrupted, as the stop button does: the lesson is recorded as stopped in the cell it had reached."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    os.environ.update(COURSE_PROFILE=profile, COURSE_OFFLINE="1", COURSE_HEADLESS="1" if headless else "0")
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    name = NOTEBOOKS[lesson]
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    start, error = time.perf_counter(), None

    def stop():
        process = getattr(getattr(client.km, "provisioner", None), "process", None)
        if process is not None:
            process.send_signal(signal.SIGINT)

    timer = threading.Timer(deadline, stop) if deadline else None
    try:
        if timer:
            timer.start()
        client.execute()
    except CellExecutionError as err:  # its last line is the error's name and message (colour codes taken out)
        error = re.sub(r"\x1b\[[0-9;]*m", "", str(err).strip().splitlines()[-1])[:500]
    except Exception as err:  # a timeout or a kernel that died: recorded, and the other lessons go on
        error = f"{type(err).__name__}: {str(err).strip()[:500]}"
    finally:
        if timer:
            timer.cancel()
    seconds = time.perf_counter() - start
    nbformat.write(notebook, out / f"{name}.ipynb")
    code = [(i, cell) for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    with open(out / f"{name}.log", "w") as log:
        for i, cell in code:
            first_line = cell.source.splitlines()[0] if cell.source else ""
            log.write(f"## cell {i} ({cell_seconds(cell):.1f} s): {first_line}\n")
            log.write(cell_text(cell))
    failed_cell = next((i for i, cell in code if any(o.get("output_type") == "error" for o in cell.outputs)), None)
    slowest = sorted(code, key=lambda pair: -cell_seconds(pair[1]))[:5]
    return {"lesson": lesson, "notebook": f"{name}.ipynb", "seconds": round(seconds, 1), "passed": error is None,
            "error": error, "failed_cell": failed_cell,
            "stopped": bool(deadline) and error is not None and seconds >= deadline,
            "slowest_cells": [{"cell": i, "seconds": round(cell_seconds(cell), 1),
                               "source": cell.source.splitlines()[0][:80] if cell.source else ""}
                              for i, cell in slowest]}


def machine() -> dict:
    """The processor, the GPU (if any) and the torch this ran with."""
    import torch

    from ..fastpath import describe_fast_path, describe_machine
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"machine": describe_machine(device), "fast_path": describe_fast_path(device), "torch": torch.__version__,
            "python": platform.python_version(), "cores": os.cpu_count()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.tools.run_lessons", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    parser.add_argument("--only", nargs="+", metavar="LESSON", help=f"some of: {', '.join(NOTEBOOKS)} (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="lessons run at once (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per lesson (default: torch's)")
    parser.add_argument("--timeout", type=int, default=3000, help="seconds one cell may take (default 3000)")
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds after which a lesson is stopped (interrupted) and recorded as such")
    parser.add_argument("--headless", action="store_true", help="no live-plot frames (COURSE_HEADLESS=1)")
    parser.add_argument("--out", type=Path, default=Path("runs") / "lessons")
    args = parser.parse_args(argv)
    lessons = args.only or list(NOTEBOOKS)
    unknown = [lesson for lesson in lessons if lesson not in NOTEBOOKS]
    if unknown:
        parser.error(f"unknown lesson(s) {', '.join(unknown)}; the lessons are: {', '.join(NOTEBOOKS)}")
    if args.jobs < 1:
        parser.error(f"--jobs must be 1 or more, not {args.jobs}")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"profile": args.profile, "jobs": args.jobs, "threads": args.threads, "headless": args.headless,
              **machine(), "lessons": {}}
    print(f"{report['machine']}\n{report['fast_path']}\nrunning {len(lessons)} lesson(s), profile {args.profile}, "
          f"{args.jobs} at once", flush=True)
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter per worker: no torch state forked
    with ProcessPoolExecutor(args.jobs, mp_context=spawn) as pool:
        futures = [pool.submit(run_one, lesson, args.profile, args.out, args.timeout, args.threads,
                               args.deadline, args.headless)
                   for lesson in lessons]
        for future in as_completed(futures):
            record = future.result()
            report["lessons"][record["lesson"]] = record
            (args.out / "run_lessons.json").write_text(json.dumps(report, indent=1))
            said = "passed" if record["passed"] else f"FAILED: {record['error']}"
            print(f"{record['notebook']:36s} {record['seconds']:7.1f} s  {said}", flush=True)
    failed = [name for name, record in report["lessons"].items() if not record["passed"]]
    said = f"; failed: {', '.join(failed)}" if failed else ""
    print(f"{len(lessons) - len(failed)} of {len(lessons)} passed{said}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

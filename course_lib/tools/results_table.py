"""Turn a benchmark's results.json into the README's markdown table (so the table is never typed by hand).

    python -m course_lib.tools.results_table runs/cpu/results.json                    # print the table
    python -m course_lib.tools.results_table runs/cpu/results.json --readme README.md # replace it in the README
    python -m course_lib.tools.results_table runs/peers/peers.json --readme README.md # the race against the peers

In the README the table sits between the lines `<!-- results:start -->` and `<!-- results:end -->` (a run of some
models only, with `--block NAME`: between `<!-- results-NAME:start -->` and `<!-- results-NAME:end -->`); the peers' table
(`course_lib.tools.peers.table`, from `python -m course_lib.tools.peers`) between `<!-- peers:start -->` and `<!-- peers:end -->`.
"""

import argparse
import json
from pathlib import Path

START, END = "<!-- results:start -->", "<!-- results:end -->"


def table(results: dict) -> str:
    """A markdown table: one row per model; models not built yet say so."""
    rows = [
        "| model | profile | device | parameters | training s | s / 100 samples | Frechet distance (real / noise) "
        "| second network's FD (real / noise) | precision | recall | class accuracy | test NELBO (nats) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if r.get("status") != "ok":
            rows.append(f"| {name} | {r.get('status', '?')} |  |  |  |  |  |  |  |  |  |  |")
            continue
        accuracy = f"{r['class_accuracy']:.1%}" if "class_accuracy" in r else "-"
        nelbo = f"{r['nelbo_test']:.1f}" if "nelbo_test" in r else "-"
        # the same distance in the second feature network (results written before it existed have none)
        fd2 = f"{r['fd2']:.2f} ({r['fd2_real']:.2f} / {r['fd2_noise']:.1f})" if "fd2" in r else "-"
        rows.append(
            f"| {name} | {r['profile']} | {r['device']} | {r['n_params']:,} | {r['train_seconds']:.1f} "
            f"| {r['sample_seconds_100']:.3f} | {r['fd']:.2f} ({r['fd_real']:.2f} / {r['fd_noise']:.1f}) | {fd2} "
            f"| {r['precision']:.2f} | {r['recall']:.2f} | {accuracy} | {nelbo} |"
        )
    return "\n".join(rows + equal_seconds(results))


def equal_seconds(results: dict) -> list[str]:
    """Lines comparing the models that recorded their Frechet distance over training time (lesson 3's DCGAN and
    lesson 7's StyleGAN): each one's curve, and both at the training seconds of the faster one."""
    curves = {name: r["fd_500_over_seconds"] for name, r in results.items()
              if r.get("status") == "ok" and r.get("fd_500_over_seconds")}
    if len(curves) < 2:
        return []
    lines = ["", "Frechet distance of 500 samples over training time (seconds of training, scoring not counted):", ""]
    lines += [f"- {name}: " + ", ".join(f"{fd:.1f} at {t:.0f} s" for t, fd in curve) for name, curve in curves.items()]
    budget = min(curve[-1][0] for curve in curves.values())
    at_budget = {name: [fd for t, fd in curve if t <= budget][-1:] for name, curve in curves.items()}
    lines += ["", f"At equal training time ({budget:.0f} s, the last point of each curve within it): " + ", ".join(
        f"{name} {fds[0]:.1f}" if fds else f"{name} (no point yet)" for name, fds in at_budget.items()) + "."]
    return lines


def replace_in(readme: Path, text: str, start: str = START, end: str = END) -> None:
    """Put `text` between the lines `start` and `end` of `readme`, in place of what was there."""
    content = readme.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"{readme} has no {start} ... {end} block to replace.")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Markdown table from a benchmark's results.json or peers.json")
    parser.add_argument("results", type=Path)
    parser.add_argument("--readme", type=Path, help="replace the table between the matching markers in this file")
    parser.add_argument("--block", help="a benchmark run of some models only: replace the block between "
                        "<!-- results-BLOCK:start --> and <!-- results-BLOCK:end --> instead of the main table")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    if "pairs" in results:  # written by course_lib.tools.peers
        from . import peers

        text, markers = peers.table(results), (peers.START, peers.END)
    else:
        text, markers = table(results), (START, END)
        if args.block:
            markers = (f"<!-- results-{args.block}:start -->", f"<!-- results-{args.block}:end -->")
    if args.readme:
        replace_in(args.readme, text, *markers)
    print(text)


if __name__ == "__main__":
    main()

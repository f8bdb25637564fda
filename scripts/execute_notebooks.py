"""Execute notebooks in place so that their committed outputs match the current code.

Usage: python scripts/execute_notebooks.py notebooks/01_language_models.ipynb [...]

Each notebook runs top to bottom in a fresh kernel from its own folder (as nbval and the book
build do); the time taken and the peak memory of the kernel are printed, and the run fails if a
notebook is over the course budget (3 minutes, 3 GB on 2 cores) unless --no-budget is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

BUDGET_SECONDS = 180
BUDGET_BYTES = 3 * 1024**3


_PEAK_CODE = "import resource as _r; print(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss)"


def _peak_rss_of_kernel(client: NotebookClient, index: int) -> int | None:
    """Peak resident memory of the kernel process in bytes, read by one extra (discarded) cell."""
    cell = nbformat.v4.new_code_cell(_PEAK_CODE)
    client.nb.cells.append(cell)  # nbclient writes results back into the notebook by index
    try:
        client.execute_cell(cell, index)
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        return int(text.split()[-1]) * 1024  # ru_maxrss is in KiB on Linux
    except Exception:
        return None
    finally:
        client.nb.cells.pop()


def _coalesce_streams(nb) -> None:
    """Store stream output as a terminal shows it: all stdout (and all stderr) writes of a cell
    merged into one text, and on every line only what follows its last carriage return, so the
    book shows a progress bar's final state instead of every redraw. (nbval merges streams and
    normalises progress bars the same way before it compares.)"""
    for cell in nb.cells:
        merged: list = []
        streams: dict = {}
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                if out["name"] in streams:
                    streams[out["name"]]["text"] += out["text"]
                    continue
                streams[out["name"]] = out
            merged.append(out)
        for out in streams.values():
            out["text"] = "\n".join(line.rsplit("\r", 1)[-1] for line in out["text"].split("\n"))
        if "outputs" in cell:
            cell["outputs"] = merged


def run(path: Path, budget: bool) -> bool:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        peak = _peak_rss_of_kernel(client, len(nb.cells))
    seconds = time.perf_counter() - start
    _coalesce_streams(nb)
    nbformat.write(nb, path)
    mem = f"{peak / 1024**2:.0f} MB" if peak else "unknown"
    print(f"{path}: {seconds:.1f} s, peak kernel memory {mem}")
    if budget and (seconds > BUDGET_SECONDS or (peak or 0) > BUDGET_BYTES):
        print(f"  over the notebook budget ({BUDGET_SECONDS} s, {BUDGET_BYTES / 1024**3:.0f} GB)")
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--no-budget", action="store_true", help="do not fail on the time/memory budget")
    args = parser.parse_args(argv)
    ok = all([run(p, not args.no_budget) for p in args.notebooks])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

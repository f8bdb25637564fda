"""Compare the text outputs of two copies of the same notebooks, cell by cell.

Usage: python scripts/compare_outputs.py STORED_DIR FRESH_DIR [--all]

For every code cell whose outputs differ, prints the largest relative difference between
corresponding printed floats, whether integers or text differ, and whether the cell passes the
tolerant comparison of tests/nbval_tolerance.py with its declared tolerance. Used to measure how
much printed numbers move across CPU kernels, thread counts or seeds before choosing a cell's
tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from nbval_tolerance import NUMBER, _is_float, cell_tolerance, texts_match  # noqa: E402


def cell_texts(cell) -> list[str]:
    texts, stream = [], {}
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            stream[out["name"]] = stream.get(out["name"], "") + "".join(out["text"])
        elif "data" in out and "text/plain" in out["data"]:
            texts.append("".join(out["data"]["text/plain"]))
    return [stream[k] for k in sorted(stream)] + texts


def ignored(cell) -> bool:
    src = "".join(cell["source"])
    return any(line.strip().lstrip("#").strip() in ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP")
               for line in src.splitlines() if line.strip().startswith("#")) or \
        any(t in ("nbval-ignore-output", "nbval-skip") for t in cell.get("metadata", {}).get("tags", []))


def compare(a: str, b: str) -> tuple[float, bool, bool]:
    """(largest relative float difference, integers differ, text differs)."""
    pa, pb = NUMBER.split(a), NUMBER.split(b)
    if len(pa) != len(pb):
        return float("nan"), False, True
    worst, ints, text = 0.0, False, False
    for i, (x, y) in enumerate(zip(pa, pb)):
        if i % 2 == 0:
            text |= x != y
        elif _is_float(x) and _is_float(y):
            fx, fy = float(x), float(y)
            scale = max(abs(fx), abs(fy))
            if scale > 0 and fx != fy:
                worst = max(worst, abs(fx - fy) / scale)
        else:
            ints |= x != y
    return worst, ints, text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stored", type=Path)
    parser.add_argument("fresh", type=Path)
    parser.add_argument("--all", action="store_true", help="also list cells marked NBVAL_IGNORE_OUTPUT")
    args = parser.parse_args(argv)
    failing = 0
    for path in sorted(args.stored.glob("*.ipynb")):
        other = args.fresh / path.name
        if not other.exists():
            continue
        cells_a = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        cells_b = [c for c in json.loads(other.read_text())["cells"] if c["cell_type"] == "code"]
        for n, (ca, cb) in enumerate(zip(cells_a, cells_b)):
            if ignored(ca) and not args.all:
                continue
            ta, tb = cell_texts(ca), cell_texts(cb)
            if ta == tb:
                continue
            rtol, atol = cell_tolerance(ca.get("metadata"))
            ok = len(ta) == len(tb) and all(texts_match(x, y, rtol, atol) for x, y in zip(ta, tb))
            failing += not ok and not ignored(ca)
            worst, ints, text = max((compare(x, y) for x, y in zip(ta, tb)), default=(float("nan"), 0, 1))
            first = "".join(ca["source"]).splitlines()[0][:70] if ca["source"] else ""
            print(f"{path.name} code cell {n}: max rel diff {worst:.2e}, ints differ {bool(ints)}, "
                  f"text differs {bool(text)}, {'passes' if ok else 'FAILS'} (rtol={rtol:g}, atol={atol:g})"
                  f"{' [ignored]' if ignored(ca) else ''}\n    {first}")
    print(f"{failing} cell(s) fail the tolerant comparison")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The back-matter pages quote the course's numbers; these tests recompute each one from the stored
results, so that a page cannot keep a number the experiments no longer give. They also check that
the `lmlib` modules the tools page names exist and that the table of contents lists the pages."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from lmlib import cost, zoo

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT / "lmlib" / "models" / "experiments"


def _page(name):
    return " ".join((ROOT / "book" / name).read_text(encoding="utf-8").split())


def _stored(name):
    return json.loads((EXP / f"{name}.json").read_text(encoding="utf-8"))


def _stored_output(notebook: str, needle: str) -> str:
    nb = json.loads((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", ""))
            if needle in text:
                return text
    raise AssertionError(f"{notebook}: no stored output contains {needle!r}")


def test_trends_numbers_come_from_the_stored_results():
    page = _page("trends.md")
    fit = _stored("ch10-scaling")["fit"]
    assert f"\\alpha = {fit['alpha']:.3f}" in page and f"\\beta = {fit['beta']:.3f}" in page
    gpt3 = cost.PUBLISHED_RUNS["gpt3-175b"]
    assert f"{6 * gpt3['params'] * gpt3['tokens'] / 1e23:.2f} \\times 10^{{23}}" in page
    h100 = cost.ACCELERATORS["H100-SXM"]["bf16_dense_flops"]
    days = cost.training_time(gpt3["params"], gpt3["tokens"], h100, mfu=0.4, n_devices=1024) / 86400
    assert f"{days:.0f} days on 1,024 H100" in page
    assert (f"{cost.published_run_mfu('llama3-8b'):.0%} (8B) to "
            f"{cost.published_run_mfu('llama3-70b'):.0%} (70B)") in page
    test = zoo.read_card("cedict-translator")["metrics"]["test"]
    assert f"{test['pinyin_exact_match']:.0%} of the time" in page and f"chrF {test['english_chrf']:.1f}" in page
    rouge = _stored("ch09-summarization")["comparisons"]["abstractive - cue-1"]["rougeL"]
    assert rouge["high"] < 0 and f"ROUGE-L by {-rouge['diff']:.2f}" in page
    sft = _stored("ch07-sft")
    vals = [r["val"] for r in sft["runs"]["pretrained"]]
    assert f"{min(vals):.2f} to {max(vals):.2f} over three seeds" in page and len(vals) == 3
    assert f"from {sft['before_sft']['test_response_nll']:.2f} to" in page
    assert f"to {sft['runs']['pretrained'][0]['test_response_nll']:.2f} nats" in page
    ratio = re.search(r"ratio (\d\.\d\d)", _stored_output("02_tokenization.ipynb", "Chinese:")).group(1)
    assert f"{float(ratio):.1f} times the tokens" in page
    out = _stored_output("02_tokenization.ipynb", "'large language model': 20 characters")
    assert "'large language model': 20 characters, 20 bytes -> 7 tokens" in out and "15 bytes -> 15 tokens" in out
    chars = int(re.search(r"whole corpus: ([\d,]+) characters",
                          _stored_output("02_tokenization.ipynb", "whole corpus")).group(1).replace(",", ""))
    assert round(chars / 1e6) == 5 and "about 5 million characters" in page


def test_tools_page_names_real_modules():
    page = _page("tools.md")
    names = set(re.findall(r"`(lmlib\.[a-z_]+)", page))
    assert len(names) >= 12
    for name in sorted(names):
        importlib.import_module(name)


@pytest.mark.parametrize("page", ["book/trends", "notebooks/faq", "book/tools", "book/glossary",
                                  "book/report_card"])
def test_back_matter_is_in_the_table_of_contents(page):
    from lmlib.glossary import toc_pages

    assert page in [p.relative_to(ROOT).with_suffix("").as_posix() for p in toc_pages(ROOT)]

"""The glossary is generated from the chapters' term annotations and must agree with them.

These tests fail when a chapter names a term in Chinese differently from another chapter, when one
Chinese name stands for two English terms, when a chapter gives a Chinese name without marking the
term, and when the committed glossary or report card lacks what the chapters and the stored metrics
now say.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lmlib import glossary

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("build_back_matter", ROOT / "scripts" / "build_back_matter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the real book -------------------------------------------------------------------------------

def test_the_chapters_agree_with_each_other():
    annotations, unmarked = glossary.collect(ROOT)
    assert not unmarked, "Chinese names given to unmarked words:\n" + "\n".join(unmarked)
    entries = glossary.build(annotations)  # raises GlossaryError on a conflict
    assert len(entries) >= 80
    keys = {glossary.term_key(e.english) for e in entries}
    for term in ("self-attention", "cross-entropy", "KV cache", "scaling law", "fine-tuning"):
        assert glossary.term_key(term) in keys


def test_every_chapter_contributes_terms():
    annotations, _ = glossary.collect(ROOT)
    pages = {a.page for a in annotations}
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"notebooks/{nb.name}" in pages, f"{nb.name} introduces no annotated term"


def test_committed_pages_are_current():
    module = _script()
    for rel, make in module.PAGES.items():
        want = make()
        have = (ROOT / rel).read_text(encoding="utf-8")
        if rel == "book/glossary.md":
            missing = [line.split("|")[1].strip() for line in want.splitlines()
                       if line.startswith("| **") and line not in have.splitlines()]
            assert not missing, f"the glossary lacks (or has stale) entries {missing}: run `make back-matter`"
        assert have == want, f"{rel} is out of date: run `make back-matter`"


def test_entries_link_to_the_introducing_chapter_section():
    entries = glossary.build(glossary.collect(ROOT)[0])
    by_key = {glossary.term_key(e.english): e for e in entries}
    sa = by_key[glossary.term_key("self-attention")]
    # the front matter previews self-attention; chapter 3 introduces it
    assert sa.first.page == "notebooks/03_attention.ipynb"
    assert sa.first.anchor == glossary.section_id(sa.first.section) != ""
    page = glossary.render(entries)
    assert 'href="../notebooks/03_attention.html#' + sa.first.anchor + '"' in page


# --- planted inconsistencies -----------------------------------------------------------------------

def _build(*texts):
    annotations = []
    for i, text in enumerate(texts):
        found, unmarked = glossary.annotations_in(text, f"notebooks/0{i + 1}_x.ipynb")
        assert not unmarked, unmarked
        annotations += found
    return glossary.build(annotations)


def test_one_english_term_with_two_chinese_names_fails():
    with pytest.raises(glossary.GlossaryError, match=r"'KV cache' is KV 缓存 .* but 键值缓存"):
        _build("# A\n\nA **KV cache** (KV 缓存) keeps keys.", "# B\n\nWith a *KV cache* (键值缓存).")


def test_one_chinese_name_for_two_english_terms_fails():
    with pytest.raises(glossary.GlossaryError, match="分类器 names 2 English terms"):
        _build("# A\n\nA **classifier** (分类器).", "# B\n\nthe *measure words* (分类器) of Chinese")


def test_spelling_variants_are_one_term():
    entries = _build("# A\n\n**Mixed-precision** (混合精度) and **tokens** (词元).",
                     "# B\n\n*mixed precision* (混合精度); a *token* (词元)")
    assert [(e.english, e.chinese, len(e.pages)) for e in entries] == [
        ("mixed-precision", "混合精度", 2), ("tokens", "词元", 2)]


def test_unmarked_chinese_name_is_reported():
    found, unmarked = glossary.annotations_in("# A\n\nthe training loop (训练循环) runs", "p.md")
    assert found == [] and len(unmarked) == 1 and "loop (训练循环)" in unmarked[0]
    with pytest.raises(glossary.GlossaryError, match="not marked as terms"):
        module = _script()
        original = glossary.collect
        try:
            glossary.collect = lambda root: ([], unmarked)
            module.glossary_page()
        finally:
            glossary.collect = original


def test_a_new_chapter_term_makes_the_committed_glossary_stale(tmp_path):
    have = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    annotations, _ = glossary.collect(ROOT)
    extra, _ = glossary.annotations_in("## Hallucination\n\nA **hallucination** (幻觉) is ...",
                                       "notebooks/11_new.ipynb")
    page = glossary.render(glossary.build(annotations + extra))
    assert page != have and "| **hallucination** | 幻觉 |" in page


def test_annotation_forms():
    text = ("# Title\n\n## Sec `code` $n$\n\nThe **Supervised fine-tuning** (SFT, 监督微调) step; "
            "(the **cross-entropy**, 交叉熵); **Extractive (抽取式摘要)**;\n\n## Summarization (文本摘要)\n\n"
            "`not (代码)` and $x (公式)$ and **LoRA** {cite}`hu2022lora` (low-rank adaptation, 低秩适配)")
    found, unmarked = glossary.annotations_in(text, "p.md")
    assert not unmarked
    got = {(a.english, a.chinese, a.aliases, a.section) for a in found}
    assert got == {("Supervised fine-tuning", "监督微调", ("SFT",), "Sec `code` $n$"),
                   ("cross-entropy", "交叉熵", (), "Sec `code` $n$"),
                   ("Extractive", "抽取式摘要", (), "Sec `code` $n$"),
                   ("Summarization", "文本摘要", (), "Summarization (文本摘要)"),
                   ("LoRA", "低秩适配", ("low-rank adaptation",), "Summarization (文本摘要)")}
    assert glossary.section_id("Sec `code` $n$") == "sec-code-n"


def test_term_key():
    assert glossary.term_key("Encoder–decoder") == glossary.term_key("encoder-decoder")
    assert glossary.term_key("Heads") == glossary.term_key("head")
    assert glossary.term_key("loss") == "loss"

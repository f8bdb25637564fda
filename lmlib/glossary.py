"""The English-Chinese glossary, read off the chapters themselves.

A chapter introduces a key term by emphasising it and giving its Chinese name in parentheses right
after it: ``**self-attention** (自注意力)``, ``*KV cache* (KV 缓存)``, ``(*heads*, 注意力头)``, or a
heading ``## Summarization (文本摘要)``. Other parts of the parentheses are abbreviations or other
English names: ``**Supervised fine-tuning** (SFT, 监督微调)``. :func:`collect` finds every such
annotation in the pages of the table of contents, :func:`build` merges them into one entry per term
and refuses an English term with two Chinese names (or the reverse), and :func:`render` writes the
glossary page, each entry linked to the section that first introduces it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Annotation", "Entry", "GlossaryError", "collect", "annotations_in", "build", "render",
           "term_key", "section_id", "toc_pages"]

CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_HAS_CJK = re.compile(f"[{CJK}]")
_PAREN = r"[(（](?P<par>[^()（）]*?)[)）]"
# **term** (…) or *term* (…)
_AFTER = re.compile(r"(?P<m>\*\*|\*)(?P<en>[^*\n]+(?:\n[^*\n]+)?)(?P=m)[ \t\n]*(?:\{cite\}[ \t]*)?" + _PAREN)
# (the **term**, 中文) or (*term*, 中文)
_INSIDE = re.compile(r"[(（](?:[a-z]+ ){0,3}(?P<m>\*\*|\*)(?P<en>[^*\n]+)(?P=m)[,，][ \t\n]*(?P<par>[^()（）]*?)[)）]")
# **term (中文)**
_WITHIN = re.compile(r"\*\*(?P<en>[^*(（\n]+?)[ \t]*" + _PAREN + r"\*\*")
# ## Heading (中文)
_HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<en>[^(（\n]+?)[ \t]*" + _PAREN + r"[ \t]*$", re.M)
_ANY_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*$", re.M)
# A word followed by parentheses that hold Chinese: an annotation the patterns above must account for.
_BARE = re.compile(r"[A-Za-z][\w\-*`]*[ \t\n]*(?:\{cite\}[ \t]*)?" + _PAREN)
_CODE = re.compile(r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$", re.S)


class GlossaryError(ValueError):
    """The chapters' annotations disagree with each other or with the glossary page."""


@dataclass(frozen=True)
class Annotation:
    english: str        # as written, e.g. "Self-attention"
    chinese: str        # e.g. "自注意力"
    aliases: tuple[str, ...]  # abbreviations and other English names, e.g. ("SFT",)
    page: str           # path relative to the book's root, e.g. "notebooks/03_attention.ipynb"
    section: str        # the heading of the section it is in
    anchor: str         # that section's HTML id


@dataclass
class Entry:
    english: str
    chinese: str
    aliases: list[str] = field(default_factory=list)
    first: Annotation | None = None
    pages: list[str] = field(default_factory=list)


def term_key(english: str) -> str:
    """The form two spellings of one term share: case, dashes, spacing and a plural -s folded."""
    if not isinstance(english, str) or not english.strip():
        raise ValueError(f"english must be a non-empty string, got {english!r}")
    text = unicodedata.normalize("NFKC", english).lower()
    text = re.sub(r"[\u2010-\u2015\-]", " ", text)
    words = text.split()
    last = words[-1]
    if len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is")):
        words[-1] = last[:-1]
    return " ".join(words)


def section_id(title: str) -> str:
    """The HTML id Sphinx gives a section with this (markdown) title."""
    from docutils.nodes import make_id

    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}")
    plain = re.sub(r"\{[a-z]+\}`([^`]*)`", r"\1", title)
    plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", plain)
    plain = plain.replace("`", "").replace("*", "").replace("$", "")
    return make_id(plain)


def _clean(english: str) -> str:
    return " ".join(english.replace("`", "").split())


def _parts(par: str) -> tuple[str, tuple[str, ...]] | None:
    parts = [p.strip() for p in re.split(r"[,，;；]", par) if p.strip()]
    chinese = [p for p in parts if _HAS_CJK.search(p)]
    if len(chinese) != 1:
        return None
    return chinese[0], tuple(p.strip("*") for p in parts if not _HAS_CJK.search(p))


def annotations_in(text: str, page: str = "<text>") -> tuple[list[Annotation], list[str]]:
    """The annotations in one markdown text, and the Chinese parentheses that are not one.

    The second list names every ``word (中文…)`` that no annotation pattern accounts for: a term
    given a Chinese name without being marked as a term, which the glossary would otherwise miss.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if not isinstance(page, str):
        raise TypeError(f"page must be a string, got {type(page).__name__}")
    masked = _CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    headings = [(m.start(), text[m.start(2):m.end()].strip()) for m in _ANY_HEADING.finditer(masked)]
    found: list[tuple[int, int, Annotation]] = []

    def section_at(pos: int) -> str:
        title = ""
        for start, heading in headings:
            if start > pos:
                break
            title = heading
        return title

    for pattern in (_AFTER, _INSIDE, _WITHIN, _HEADING):
        for m in pattern.finditer(masked):
            if not _HAS_CJK.search(m.group("par")):
                continue
            parsed = _parts(m.group("par"))
            if parsed is None:
                continue
            if any(s <= m.start() < e or m.start() <= s < m.end() for s, e, _ in found):
                continue
            title = section_at(m.start())
            found.append((m.start(), m.end(), Annotation(
                english=_clean(m.group("en")), chinese=parsed[0], aliases=parsed[1], page=page,
                section=re.sub(r"\s+", " ", title), anchor=section_id(title) if title else "")))
    unmarked = []
    for m in _BARE.finditer(masked):
        parsed = _parts(m.group("par"))
        if parsed is None or len(parsed[0]) > 16 or '"' in parsed[0]:
            continue  # Chinese quoted in passing (an example, a sentence), not a term's name
        paren = m.start("par") - 1
        if not any(s <= paren < e for s, e, _ in found):
            unmarked.append(f"{page}: {' '.join(text[m.start():m.end()].split())!r}")
    found.sort(key=lambda t: t[0])
    return [a for _, _, a in found], unmarked


def toc_pages(root: str | Path = ".") -> list[Path]:
    """The pages of ``_toc.yml`` in reading order (the root page first)."""
    import yaml

    if not isinstance(root, (str, Path)):
        raise TypeError(f"root must be a path, got {type(root).__name__}")
    root = Path(root)
    toc_file = root / "_toc.yml"
    if not toc_file.is_file():
        raise ValueError(f"root must be the book's folder (with _toc.yml), got {str(root)!r}")
    toc = yaml.safe_load(toc_file.read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(items):
        for item in items or []:
            if "file" in item:
                names.append(item["file"])
            walk(item.get("sections"))
            walk(item.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    pages = []
    for name in names:
        for suffix in (".ipynb", ".md"):
            if (root / (name + suffix)).is_file():
                pages.append(root / (name + suffix))
                break
        else:
            raise ValueError(f"_toc.yml names {name!r}, which is neither a .ipynb nor a .md file")
    return pages


def _markdown(path: Path) -> str:
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def collect(root: str | Path = ".", exclude: tuple[str, ...] = ("book/glossary.md",)
            ) -> tuple[list[Annotation], list[str]]:
    """Every annotation in the book's pages, in reading order, and every unmarked one."""
    if not isinstance(exclude, tuple) or not all(isinstance(e, str) for e in exclude):
        raise TypeError(f"exclude must be a tuple of page paths, got {exclude!r}")
    pages = toc_pages(root)
    root = Path(root)
    annotations, unmarked = [], []
    for path in pages:
        rel = path.relative_to(root).as_posix()
        if rel in exclude:
            continue
        found, bare = annotations_in(_markdown(path), rel)
        annotations += found
        unmarked += bare
    return annotations, unmarked


def build(annotations: list[Annotation]) -> list[Entry]:
    """One entry per term; raises :class:`GlossaryError` listing every conflict."""
    if not isinstance(annotations, list) or not all(isinstance(a, Annotation) for a in annotations):
        raise TypeError("annotations must be a list of Annotation")
    entries: dict[str, Entry] = {}
    by_chinese: dict[str, dict[str, Annotation]] = {}
    problems = []
    for a in annotations:
        key = term_key(a.english)
        entry = entries.get(key)
        if entry is None:
            english = a.english
            first = english.split()[0]
            if first[:1].isupper() and first[1:] == first[1:].lower() and "-" not in first[:2]:
                english = english[0].lower() + english[1:]
            entry = entries[key] = Entry(english=english, chinese=a.chinese, first=a)
        elif entry.chinese != a.chinese:
            problems.append(f"{a.english!r} is {entry.chinese} in {entry.first.page} "
                            f"({entry.first.section}) but {a.chinese} in {a.page} ({a.section})")
        for alias in a.aliases:
            if alias not in entry.aliases:
                entry.aliases.append(alias)
        if a.page not in entry.pages:
            entry.pages.append(a.page)
        if not entry.first.page.startswith("notebooks/") and a.page.startswith("notebooks/"):
            entry.first = a  # a chapter introduces the term; the front matter only previews it
        by_chinese.setdefault(a.chinese, {}).setdefault(key, a)
    for chinese, terms in by_chinese.items():
        if len(terms) > 1:
            where = "; ".join(f"{a.english!r} in {a.page}" for a in terms.values())
            problems.append(f"{chinese} names {len(terms)} English terms: {where}")
    if problems:
        raise GlossaryError("inconsistent term annotations:\n  " + "\n  ".join(problems))
    return sorted(entries.values(), key=lambda e: term_key(e.english))


def _page_label(page: str, titles: dict[str, str]) -> str:
    m = re.match(r"notebooks/(\d+)_", page)
    return f"Chapter {int(m.group(1))}" if m else titles.get(page, page)


def _html_path(page: str) -> str:
    return "../" + page.rsplit(".", 1)[0] + ".html"


def render(entries: list[Entry], titles: dict[str, str] | None = None) -> str:
    """The glossary page (MyST markdown), generated; never edit it by hand."""
    if not isinstance(entries, list) or not all(isinstance(e, Entry) for e in entries):
        raise TypeError("entries must be a list of Entry (from build)")
    if titles is not None and (not isinstance(titles, dict)
                               or not all(isinstance(k, str) and isinstance(v, str) for k, v in titles.items())):
        raise TypeError(f"titles must be a dict of page -> title strings, got {titles!r}")
    titles = dict(titles or {})
    lines = [
        "<!-- Generated by scripts/build_back_matter.py from the term annotations in the chapters. "
        "Do not edit: run `make back-matter`. -->",
        "",
        "# Glossary (术语表)",
        "",
        f"The {len(entries)} key terms of the course, with the Chinese name each chapter gives at the "
        "term's first use. The page is generated from the chapters: a term is collected wherever a "
        "page writes it as `**term** (中文)`, and the build fails if one English term is given two "
        "Chinese names, or one Chinese name two English terms. Each term links to the section that "
        "introduces it; *also in* lists the other pages that annotate it.",
        "",
        "| English | 中文 | Also | Introduced in | Also in |",
        "|---|---|---|---|---|",
    ]
    for e in entries:
        a = e.first
        href = _html_path(a.page) + (f"#{a.anchor}" if a.anchor else "")
        section = a.section.replace("|", "\\|").replace("`", "").replace("*", "")
        section = re.sub(r"\{[a-z]+\}", "", section) or titles.get(a.page, a.page)
        label = f"{_page_label(a.page, titles)}: {section}"
        also = ", ".join(_page_label(p, titles) for p in e.pages if p != a.page)
        aliases = ", ".join(e.aliases)
        lines.append(f"| **{e.english}** | {e.chinese} | {aliases} | "
                     f'<a class="glossary-link" href="{href}">{label}</a> | {also} |')
    lines.append("")
    return "\n".join(lines)

"""Tests of the shared plotting helpers and of show_source."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lmlib import data, plots  # noqa: E402
from lmlib.display import show_source, show_tokens, source, token_spans_html  # noqa: E402


def test_heatmap_draws_the_matrix_with_labels():
    m = torch.rand(3, 4, requires_grad=True)
    fig = plots.heatmap(m, xlabels=list("abcd"), ylabels=list("xyz"))
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), m.detach().numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcd")
    plt.close(fig)
    with pytest.raises(ValueError, match="2-D"):
        plots.heatmap(torch.rand(2, 2, 2))
    with pytest.raises(ValueError, match="x labels"):
        plots.heatmap(torch.rand(2, 3), xlabels=["a"])


def test_heatmap_grid_layout_and_shared_scale():
    w = torch.softmax(torch.randn(2, 3, 5, 5), dim=-1)  # (layers, heads, T, T)
    fig = plots.heatmap_grid(w, xlabels=list("abcde"), ylabels=list("abcde"),
                             row_titles=["layer 0", "layer 1"], col_titles=["h0", "h1", "h2"])
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 6
    assert len({im.get_clim() for im in images}) == 1  # one colour scale for all
    np.testing.assert_allclose(images[4].get_array(), w[1, 1].numpy())
    plt.close(fig)
    with pytest.raises(ValueError, match="rows, cols"):
        plots.heatmap_grid(torch.rand(1, 1, 1, 2, 2))
    with pytest.raises(ValueError, match="row titles"):
        plots.heatmap_grid(torch.rand(2, 1, 2, 2), row_titles=["a"])


def test_plot_curves_and_reference_lines():
    fig = plots.plot_curves({"train": ([0, 1, 2], [3.0, 2.0, 1.5])}, hlines={"bigram": 2.5})
    ax = fig.axes[0]
    assert list(ax.lines[0].get_ydata()) == [3.0, 2.0, 1.5]
    assert list(ax.lines[1].get_ydata()) == [2.5, 2.5]
    plt.close(fig)
    with pytest.raises(ValueError, match="x values"):
        plots.plot_curves({"bad": ([0, 1], [1.0])})


def test_show_source_returns_the_real_source():
    text = source(data.sample_batch)
    assert text.startswith("def sample_batch(") and "torch.randint" in text
    md = show_source(data.sample_batch)
    assert text in getattr(md, "data", md)
    with pytest.raises(TypeError):
        show_source()
    with pytest.raises(TypeError):
        source(3)


def test_token_spans_show_every_token_once_in_order():
    import html as html_lib
    import re

    from lmlib.tokenizers import BPETokenizer, ByteTokenizer, CharTokenizer

    text = "To be, or <not> to be—\nthat & is"
    bpe = BPETokenizer.train(text * 5, 256 + 20, special_tokens=())
    for tok in [CharTokenizer.from_text(text), ByteTokenizer(), bpe]:
        out = token_spans_html(tok, text, title="t<1>")
        ids = tok.encode(text)
        spans = re.findall(r'<span title="id (\d+)" style="([^"]*)">(.*?)</span>', out, flags=re.S)
        assert [int(i) for i, _, _ in spans] == ids                    # one span per token, in order
        assert f"{len(ids)} tokens for {len(text)} characters" in out and "<b>t&lt;1&gt;</b>" in out
        colours = [style.split(";")[0] for _, style, _ in spans]
        assert all(a != b for a, b in zip(colours, colours[1:]))       # neighbours differ in colour
        shown = [html_lib.unescape(t).replace("↵", "") for _, _, t in spans]
        if not isinstance(tok, ByteTokenizer):
            assert "".join(shown) == text                              # whole tokens: the text itself
    # the byte tokenizer cuts the dash (3 bytes) into three italic byte tokens
    out = token_spans_html(ByteTokenizer(), "—")
    assert out.count("font-style:italic") == 3 and "\\xe2" in out
    assert "&lt;" in token_spans_html(ByteTokenizer(), "<") and "<b>ByteTokenizer</b>" in out
    assert show_tokens(ByteTokenizer(), "ab").data == token_spans_html(ByteTokenizer(), "ab")

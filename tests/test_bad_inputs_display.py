"""Bad-input cases of lmlib.display, lmlib.plots and lmlib.progress (see tests/badinput.py)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from badinput import Case, Custom, Fn, Seq, make_test  # noqa: E402
from lmlib import data, plots  # noqa: E402
from lmlib.display import show_source, show_tokens, source, token_spans_html  # noqa: E402
from lmlib.tokenizers import ByteTokenizer  # noqa: E402


def _closing(fn):
    def call(**kw):
        out = fn(**kw)
        plt.close("all")
        return out
    return call


MATRIX = [("three_dim", torch.rand(2, 2, 2)), ("str", "abc"), ("none", None), ("ragged", [[1, 2], [3]])]

SPECS = [
    Fn("lmlib.display.source", valid=lambda: dict(obj=data.sample_batch),
       args={"obj": Custom([("int", 3), ("none", None), ("builtin", len)])}, aliases={"obj": ["source"]}),
    Fn("lmlib.display.show_source", valid=dict, call=lambda: show_source(data.sample_batch),
       cases=[Case("nothing", lambda: show_source(), "at least one object"),
              Case("int", lambda: show_source(3), "source")]),
    Fn("lmlib.display.token_spans_html", valid=lambda: dict(tokenizer=ByteTokenizer(), text="ab", title="x"),
       args={"tokenizer": Custom([("str", "bpe"), ("none", None), ("tiktoken_like", object())]),
             "text": Custom([("bytes", b"ab"), ("none", None), ("int", 3)]),
             "title": Custom([("int", 3), ("bytes", b"x")])}),
    Fn("lmlib.display.show_tokens", valid=lambda: dict(tokenizer=ByteTokenizer(), text="ab"),
       args={"tokenizer": Custom([("str", "bpe"), ("none", None)]), "text": Custom([("bytes", b"ab"), ("none", None)])}),
    Fn("lmlib.plots.to_numpy", valid=lambda: dict(x=torch.rand(2, 2)),
       args={"x": Custom([("ragged", [[1, 2], [3]]), ("dict", {"a": 1}), ("none", None)])}),
    Fn("lmlib.plots.heatmap", valid=lambda: dict(matrix=torch.rand(2, 3), xlabels=list("abc"), ylabels=list("xy")),
       call=_closing(plots.heatmap),
       args={"matrix": Custom(MATRIX), "xlabels": Seq(nullable=True), "ylabels": Seq(nullable=True)},
       aliases={"xlabels": ["x labels"], "ylabels": ["y labels"]}),
    Fn("lmlib.plots.heatmap_grid", valid=lambda: dict(matrices=torch.rand(1, 2, 2, 2), col_titles=["a", "b"]),
       call=_closing(plots.heatmap_grid),
       args={"matrices": Custom([("five_dim", torch.rand(1, 1, 1, 2, 2)), ("str", "abc"), ("none", None)]),
             "col_titles": Seq(nullable=True)},
       aliases={"col_titles": ["column titles"]}),
    Fn("lmlib.plots.plot_attention", valid=lambda: dict(weights=torch.rand(2, 3, 3), tokens=list("abc")),
       call=_closing(plots.plot_attention),
       args={"weights": Custom([("five_dim", torch.rand(1, 1, 1, 2, 2)), ("str", "abc"), ("none", None)]),
             "tokens": Seq(nullable=True)},
       aliases={"tokens": ["query tokens"]}),
    Fn("lmlib.plots.plot_curves", valid=lambda: dict(curves={"train": ([0, 1], [2.0, 1.0])}, hlines={"ref": 1.5}),
       call=_closing(plots.plot_curves),
       args={"curves": Custom([("list", [([0], [1.0])]), ("mismatched", {"a": ([0, 1], [1.0])}),
                               ("not_a_pair", {"a": [1.0, 2.0, 3.0]}), ("none", None)]),
             "hlines": Custom([("list", [1.0]), ("str_value", {"a": "x"})])},
       aliases={"curves": ["curve"]}),
    Fn("lmlib.plots.confusion_matrix_plot", valid=lambda: dict(cm=torch.tensor([[3, 1], [0, 2]]), class_names=["a", "b"]),
       call=_closing(plots.confusion_matrix_plot),
       args={"cm": Custom([("not_square", torch.ones(2, 3)), ("str", "abc"), ("none", None)]),
             "class_names": Seq()},
       aliases={"cm": ["confusion matrix"], "class_names": ["class names"]}),
]

EXEMPT = {
    "lmlib.progress.tqdm": "re-exported from tqdm.auto unchanged (a third-party progress bar, not lmlib code)",
    "lmlib.progress.trange": "re-exported from tqdm.auto unchanged (a third-party progress bar, not lmlib code)",
}

test_bad_input = make_test(SPECS)

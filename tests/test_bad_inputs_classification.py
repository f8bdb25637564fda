"""Bad-input cases of lmlib.classification (see tests/badinput.py)."""

import torch

from badinput import Case, Custom, Float, Fn, Ids, Int, Seq, Str, Tensor, make_test
from lmlib import classification as C
from lmlib.gpt import GPT, GPTConfig

V = 20
MASKS = [("float", torch.ones(2, 3)), ("wrong_shape", torch.ones(3, 2, dtype=torch.long)),
         ("values", torch.full((2, 3), 2)), ("list", [[1, 1, 1], [1, 1, 0]]),
         ("all_zero_row", torch.tensor([[1, 1, 1], [0, 0, 0]]))]
LABELS = [("out_of_range", torch.tensor([0, 99])), ("negative", torch.tensor([0, -1])),
          ("float", torch.tensor([0.0, 1.0])), ("float_list", [0.0, 1.5]), ("nan", torch.tensor([0.0, float("nan")])),
          ("two_dim", torch.tensor([[0, 1]])), ("wrong_count", torch.tensor([0, 1, 1])), ("str", "ab")]
TOKENS = [("str", "abc"), ("int", 3), ("list_of_str", ["ab", "c"]), ("floats", [[1.5, 2.0], [3.0]]),
          ("negative", [[1, -2], [3]]), ("empty_example", [[1, 2], []]), ("empty", []), ("none", None)]


def _gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()


def _bert():
    from lmlib.bert import BERT, BertConfig

    torch.manual_seed(0)
    return BERT(BertConfig(vocab_size=V, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=16, max_position_embeddings=8)).eval()


def _batch():
    return dict(input_ids=torch.tensor([[1, 2, 3], [4, 5, 0]]), attention_mask=torch.tensor([[1, 1, 1], [1, 1, 0]]),
                labels=torch.tensor([0, 2]))


def _gpt_fwd(**kw):
    return C.GPTClassifier(_gpt(), 3)(**kw)


def _bert_fwd(**kw):
    return C.BertClassifier(_bert(), 3, pooling="mean")(**kw)


BATCH_ARGS = {"input_ids": Ids(vocab_size=V), "attention_mask": Custom(MASKS + [("float_ones", torch.ones(2, 3))]),
              "labels": Custom(LABELS)}


def _features_batch():
    return {k: v for k, v in _batch().items() if k != "labels"}


FEATURE_ARGS = {k: v for k, v in BATCH_ARGS.items() if k != "labels"}


def _x():
    return torch.rand(4, 5)


SPECS = [
    Fn("lmlib.classification.check_labels", valid=lambda: dict(labels=torch.tensor([0, 2]), num_classes=3,
                                                               batch_size=2),
       args={"labels": Custom(LABELS + [("none", None)]), "num_classes": Int(min=1),
             "batch_size": Int(min=0, nullable=True)}),
    Fn("lmlib.classification.gpt_hidden_states", valid=lambda: dict(gpt=_gpt(), idx=torch.tensor([[1, 2, 3]])),
       args={"gpt": Custom([("linear", torch.nn.Linear(2, 2)), ("str", "gpt"), ("none", None)]),
             "idx": Ids(vocab_size=V)},
       cases=[Case("too_long", lambda: C.gpt_hidden_states(_gpt(), torch.ones(1, 9, dtype=torch.long)), "block_size")]),
    Fn("lmlib.classification.pool",
       valid=lambda: dict(hidden=torch.randn(2, 3, 4), attention_mask=torch.tensor([[1, 1, 1], [1, 1, 0]]), how="mean"),
       args={"hidden": Tensor(finite=False), "attention_mask": Custom(MASKS), "how": Str(choices=("last", "first", "mean"))},
       cases=[Case("last_all_zero_row", lambda: C.pool(torch.randn(2, 3, 4), torch.tensor([[1, 0, 0], [0, 0, 0]]),
                                                       "last"), "attention_mask"),
              Case("last_left_padded", lambda: C.pool(torch.randn(1, 3, 4), torch.tensor([[0, 1, 1]]), "last"),
                   "right padding")]),
    Fn("lmlib.classification.GPTClassifier", valid=lambda: dict(gpt=_gpt(), num_classes=3, pooling="last", dropout=0.1),
       args={"gpt": Custom([("linear", torch.nn.Linear(2, 2)), ("str", "gpt"), ("none", None)]),
             "num_classes": Int(min=2), "pooling": Str(choices=("last", "mean")),
             "dropout": Float(min=0.0, max=1.0, max_open=True)}),
    Fn("lmlib.classification.GPTClassifier.forward", valid=_batch, call=_gpt_fwd, args=BATCH_ARGS,
       cases=[Case("empty", lambda: _gpt_fwd(input_ids=torch.zeros(0, 3, dtype=torch.long)), "empty batch"),
              Case("too_long", lambda: _gpt_fwd(input_ids=torch.ones(1, 9, dtype=torch.long)), "block_size")]),
    Fn("lmlib.classification.BertClassifier", valid=lambda: dict(bert=_bert(), num_classes=3, pooling="cls",
                                                                 dropout=0.1, hidden_size=None),
       args={"bert": Custom([("linear", torch.nn.Linear(2, 2)), ("none", None)]), "num_classes": Int(min=2),
             "pooling": Str(choices=("cls", "pooler", "mean")), "dropout": Float(min=0.0, max=1.0, max_open=True),
             "hidden_size": Int(min=1, nullable=True)}),
    Fn("lmlib.classification.BertClassifier.forward", valid=_batch, call=_bert_fwd, args=BATCH_ARGS),
    Fn("lmlib.classification.GPTClassifier.features", valid=_features_batch,
       call=lambda **kw: C.GPTClassifier(_gpt(), 3).features(**kw), args=FEATURE_ARGS,
       cases=[Case("empty", lambda: C.GPTClassifier(_gpt(), 3).features(torch.zeros(0, 3, dtype=torch.long)),
                   "empty batch"),
              Case("too_long", lambda: C.GPTClassifier(_gpt(), 3).features(torch.ones(1, 9, dtype=torch.long)),
                   "block_size"),
              Case("lm_score_bad_mask", lambda: C.GPTClassifier(_gpt(), 3, pooling="lm-score").features(
                  torch.tensor([[1, 2, 3]]), torch.tensor([[0, 1, 1]])), "attention_mask")]),
    Fn("lmlib.classification.BertClassifier.features", valid=_features_batch,
       call=lambda **kw: C.BertClassifier(_bert(), 3, pooling="cls").features(**kw), args=FEATURE_ARGS),
    Fn("lmlib.classification.encode_classification_batch",
       valid=lambda: dict(token_lists=[[1, 2], [3]], labels=[0, 1], pad_id=0, max_len=4, num_classes=2),
       args={"token_lists": Custom(TOKENS), "labels": Custom([(k, v) for k, v in LABELS if k != "out_of_range"]
                                                             + [("out_of_range", [0, 5])]),
             "pad_id": Int(min=0), "max_len": Int(min=1), "num_classes": Int(min=2, nullable=True)},
       aliases={"token_lists": ["example"]},
       cases=[Case("too_long", lambda: C.encode_classification_batch([[1] * 5], [0], pad_id=0, max_len=4),
                   "more than the maximum")]),
    Fn("lmlib.classification.classification_batches",
       valid=lambda: dict(token_lists=[[1, 2], [3]], labels=[0, 1], batch_size=2, pad_id=0, max_len=4, num_classes=2),
       args={"token_lists": Custom(TOKENS), "labels": Custom([("str", "ab"), ("floats", [0.5, 1.0]),
                                                             ("out_of_range", [0, 5]), ("too_few", [0]), ("none", None)]),
             "batch_size": Int(min=1), "pad_id": Int(min=0), "max_len": Int(min=1), "num_classes": Int(min=2)},
       aliases={"token_lists": ["example", "no training examples"]}),
    Fn("lmlib.classification.predict",
       valid=lambda: dict(model=C.GPTClassifier(_gpt(), 2), token_lists=[[1, 2], [3]], pad_id=0, max_len=4,
                          batch_size=2),
       args={"model": Custom([("str", "model"), ("none", None)]), "token_lists": Custom(TOKENS),
             "pad_id": Int(min=0), "max_len": Int(min=1), "batch_size": Int(min=1)},
       aliases={"token_lists": ["example"]}),
    Fn("lmlib.classification.NGramFeaturizer",
       valid=lambda: dict(kind="word", n_range=(1, 2), max_features=10, min_count=1),
       args={"kind": Str(choices=("word", "char")), "n_range": Custom([("str", "12"), ("reversed", (2, 1)),
                                                                      ("zero", (0, 1)), ("three", (1, 2, 3)),
                                                                      ("floats", (1.0, 2.0)), ("none", None)]),
             "max_features": Int(min=1), "min_count": Int(min=1)}),
    Fn("lmlib.classification.NGramFeaturizer.fit", valid=lambda: dict(texts=["the cat", "the dog"]),
       call=lambda texts: C.NGramFeaturizer(min_count=1).fit(texts),
       args={"texts": Custom([("str", "the cat"), ("ints", [1, 2]), ("empty", []), ("none", None)])},
       cases=[Case("nothing_frequent", lambda: C.NGramFeaturizer(min_count=3).fit(["a b", "c d"]), "min_count")]),
    Fn("lmlib.classification.NGramFeaturizer.transform", valid=lambda: dict(texts=["the cat"]),
       call=lambda texts: C.NGramFeaturizer(min_count=1).fit(["the cat", "a dog"]).transform(texts),
       args={"texts": Custom([("str", "the cat"), ("ints", [1]), ("empty", []), ("none", None)])}),
    Fn("lmlib.classification.NGramFeaturizer.ngrams", valid=lambda: dict(text="the cat"),
       call=lambda text: C.NGramFeaturizer().ngrams(text), args={"text": Str()}),
    Fn("lmlib.classification.LogisticRegression", valid=lambda: dict(num_features=5, num_classes=3),
       args={"num_features": Int(min=1), "num_classes": Int(min=2)}),
    Fn("lmlib.classification.LogisticRegression.forward", valid=lambda: dict(x=_x(), labels=torch.tensor([0, 1, 2, 0])),
       call=lambda x, labels: C.LogisticRegression(5, 3)(x, labels),
       args={"x": Tensor(), "labels": Custom(LABELS)}, aliases={"x": ["features"]}),
    Fn("lmlib.classification.fit_logistic_regression",
       valid=lambda: dict(x=_x(), labels=torch.tensor([0, 1, 2, 0]), num_classes=3, weight_decay=1e-3, steps=3,
                          lr=0.5, class_weight=None),
       args={"x": Tensor(), "labels": Custom(LABELS + [("none", None)]), "num_classes": Int(min=2),
             "weight_decay": Float(min=0.0), "steps": Int(min=1), "lr": Float(min=0.0, min_open=True),
             "class_weight": Custom([("wrong_size", torch.ones(2)), ("negative", torch.tensor([1.0, -1.0, 1.0])),
                                     ("nan", torch.tensor([1.0, float("nan"), 1.0])), ("list", [1.0, 1.0, 1.0]),
                                     ("int", torch.ones(3, dtype=torch.long))])},
       cases=[Case("sparse_nan", lambda: C.fit_logistic_regression(
           torch.sparse_coo_tensor(torch.tensor([[0, 1], [0, 1]]), torch.tensor([float("nan"), 1.0]), (2, 2)),
           torch.tensor([0, 1]), 2, steps=2), "x")]),
]

test_bad_input = make_test(SPECS)

"""Bad-input cases of lmlib.mlm (the course BERT). course_bert would train the model, so it is
checked for its bad arguments only; the tokenizer is served from a prepared cache folder."""

import tempfile
from pathlib import Path

from badinput import Bool, Custom, Fn, Int, make_test
from lmlib import mlm as B
from lmlib.pretrained import merge_recipe
from lmlib.tokenizers import BPETokenizer, ByteTokenizer

TOK = BPETokenizer([], B.SPECIAL_TOKENS)  # 256 bytes + the 4 special tokens


def _cache() -> Path:
    folder = Path(tempfile.mkdtemp())
    TOK.save(folder / f"bert-bpe-v{TOK.vocab_size}-s0.json")
    return folder


PATHS = Custom([("int", 3), ("empty", ""), ("list", ["c"])])
RECIPES = Custom([("str", "recipe"), ("list", [1]), ("typo_section", {"trian": {}}),
                  ("typo_setting", {"model": {"hidden": 8}}), ("bad_value", {"train": {"lr": -1.0}}),
                  ("bad_data", {"data": {"seq_len": 2}}), ("bad_tokenizer", {"tokenizer": {"vocab_size": 10}})])
RECIPE_WORDS = ["trian", "hidden", "lr", "seq_len", "vocab_size", "recipe"]
TOKENIZERS = Custom([("str", "bpe"), ("none", None), ("no_pad_token", ByteTokenizer())])

SPECS = [
    Fn("lmlib.mlm.bert_tokenizer", valid=lambda: dict(vocab_size=TOK.vocab_size, split_seed=0, cache=_cache()),
       args={"vocab_size": Int(min=260), "split_seed": Int(), "cache": PATHS}),
    Fn("lmlib.mlm.bert_config", valid=lambda: dict(recipe=merge_recipe(B.COURSE_BERT_RECIPE, {}), tokenizer=TOK),
       args={"recipe": Custom([("str", "recipe"), ("none", None),
                               ("typo_section", merge_recipe(B.COURSE_BERT_RECIPE, {"trian": {}})),
                               ("typo_setting", merge_recipe(B.COURSE_BERT_RECIPE, {"model": {"hidden": 8}}))]),
             "tokenizer": TOKENIZERS},
       aliases={"recipe": RECIPE_WORDS}),
    Fn("lmlib.mlm.encode_plays", valid=lambda: dict(tokenizer=TOK, plays=["the-tempest"]),
       # any lmlib tokenizer encodes plays (a [PAD] token is needed by bert_config only)
       args={"tokenizer": Custom([("str", "bpe"), ("none", None)]), "plays": Custom([("str", "macbeth"), ("int", 3), ("empty", []),
                                                        ("unknown", ["macbth"]), ("none", None)])},
       aliases={"plays": ["play"]}),
    Fn("lmlib.mlm.course_bert", valid=lambda: dict(recipe=None, progress=False, retrain=False, verbose=False,
                                                   cache=_cache()),
       args={"recipe": RECIPES, "progress": Bool(), "retrain": Bool(), "verbose": Bool(), "cache": PATHS},
       aliases={"recipe": RECIPE_WORDS}, check_valid=False),  # would train the model
]

EXEMPT = {
    "lmlib.mlm.CourseBERT": "a result record built only by course_bert from checked values",
}

test_bad_input = make_test(SPECS)


def _bert():
    from lmlib.bert import BertForMaskedLM

    import torch
    torch.manual_seed(0)
    recipe = merge_recipe(B.COURSE_BERT_RECIPE, {"model": {"num_hidden_layers": 1, "hidden_size": 16,
                                                           "num_attention_heads": 2, "intermediate_size": 32,
                                                           "max_position_embeddings": 16},
                                                 "data": {"seq_len": 16, "batch_size": 2, "eval_batches": 1,
                                                          "eval_batch_size": 2},
                                                 "train": {"max_steps": 1, "eval_interval": 1, "warmup_steps": 0}})
    return BertForMaskedLM(B.bert_config(recipe, TOK)), recipe


def _ids():
    import torch
    return torch.arange(100) % 250


def _mlm_valid(**extra):
    model, recipe = _bert()
    return dict(model=model, tokenizer=TOK, recipe=recipe, **extra)


def _mlm_state(kw):
    m = kw.get("model")
    import torch
    return {k: v.clone() for k, v in m.state_dict().items()} if isinstance(m, torch.nn.Module) else None


MLM_MODELS = Custom([("str", "m"), ("none", None), ("linear", __import__("torch").nn.Linear(2, 2))])
BERT_RECIPES = Custom([("str", "recipe"), ("none", None), ("typo_section", {"trian": {}})])
from badinput import Float, Ids  # noqa: E402

SPECS += [
    Fn("lmlib.mlm.batch_kwargs", valid=lambda: dict(tokenizer=TOK, recipe=merge_recipe(B.COURSE_BERT_RECIPE, {})),
       args={"tokenizer": TOKENIZERS, "recipe": BERT_RECIPES}, aliases={"recipe": RECIPE_WORDS}),
    Fn("lmlib.mlm.train_mlm", valid=lambda: _mlm_valid(train_ids=_ids(), val_ids=_ids(), progress=False, stop_after=None),
       args={"model": MLM_MODELS, "tokenizer": TOKENIZERS, "recipe": BERT_RECIPES,
             "train_ids": Ids(vocab_size=260), "val_ids": Ids(vocab_size=260), "progress": Bool(),
             "stop_after": Int(min=1, nullable=True)},
       aliases={"recipe": RECIPE_WORDS}, snapshot=_mlm_state),
    Fn("lmlib.mlm.heldout_mlm", valid=lambda: _mlm_valid(ids=_ids(), n_batches=1, batch_size=2, seed=0, mask_prob=0.15),
       args={"model": MLM_MODELS, "tokenizer": TOKENIZERS, "recipe": BERT_RECIPES, "ids": Ids(vocab_size=260),
             "n_batches": Int(min=1), "batch_size": Int(min=1), "seed": Int(min=0),
             "mask_prob": Float(min=0.0, max=1.0, min_open=True)},
       aliases={"recipe": RECIPE_WORDS}, snapshot=_mlm_state),
]
test_bad_input = make_test(SPECS)

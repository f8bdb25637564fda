"""Bad-input cases of lmlib.masking (BERT-style masking, padding, MLM batches and evaluation)."""

import torch

from badinput import Case, Custom, Fn, Ids, Int, Str, Tensor, make_test
from lmlib import masking as M
from lmlib.bert import BertConfig, BertForMaskedLM

V, PAD, MASK, CLS, SEP = 20, 0, 1, 2, 3
IDS = Custom([("float", 1.5), ("integral_float", 2.0), ("bool", True), ("str", "1"), ("negative", -1),
              ("out_of_vocab", V)])
OPT_IDS = Custom([("float", 1.5), ("bool", True), ("str", "1"), ("out_of_vocab", V)])
PROB = Custom([("nan", float("nan")), ("inf", float("inf")), ("negative", -0.1), ("above_one", 1.5), ("str", "0.1"),
               ("bool", True), ("none", None)])
SEQS = Custom([("str", "abc"), ("int", 3), ("none", None), ("empty", []), ("str_item", ["abc"]),
               ("float_ids", [[5, 6.7]]), ("integral_float_ids", [[5.0]]), ("bool_ids", [[True]]),
               ("negative_id", [[5, -1]]), ("float_tensor", [torch.tensor([5.0])]), ("nested", [[[5]]]),
               ("empty_sequence", [[5], []])])
SPECIAL_IDS = Custom([("str", "ab"), ("int", 3), ("none", None), ("float_item", [1.5]), ("out_of_vocab", [V])])
GENERATOR = Custom([("int", 0), ("str", "g")])


def _bert():
    torch.manual_seed(0)
    return BertForMaskedLM(BertConfig(vocab_size=V, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=8, max_position_embeddings=8))


def _labels():
    lab = torch.full((2, 4), -100)
    lab[0, 1], lab[1, 2] = 5, 6
    return lab


def _stream():
    return (torch.arange(40) % 16) + 4


SPECS = [
    Fn("lmlib.masking.mask_tokens",
       valid=lambda: dict(input_ids=torch.tensor([[5, 6, 7], [8, 9, 4]]), mask_id=MASK, vocab_size=V, mask_prob=0.5,
                          replace_with_mask=0.8, replace_with_random=0.1, special_ids=[PAD],
                          generator=torch.Generator().manual_seed(0)),
       # any shape of ids is masked (documented), so an extra dimension is valid here
       args={"input_ids": Ids(vocab_size=V, skip=("extra_dim",)), "mask_id": IDS, "vocab_size": Int(min=2),
             "mask_prob": PROB,
             "replace_with_mask": PROB, "replace_with_random": PROB, "special_ids": SPECIAL_IDS,
             "generator": GENERATOR},
       aliases={"input_ids": ["token id"]},
       cases=[Case("replacements_above_one", lambda: M.mask_tokens(torch.tensor([[5]]), mask_id=MASK, vocab_size=V,
                                                                  replace_with_mask=0.95, replace_with_random=0.1),
                   "at most 1"),
              Case("empty", lambda: M.mask_tokens(torch.zeros(0, dtype=torch.long), mask_id=MASK, vocab_size=V),
                   "empty")]),
    Fn("lmlib.masking.pad_sequences", valid=lambda: dict(sequences=[[5, 6], [7]], pad_id=PAD, max_len=4, what="row"),
       args={"sequences": SEQS, "pad_id": Int(min=0), "max_len": Int(min=1, nullable=True), "what": Str(nonempty=True)},
       aliases={"sequences": ["row"]},
       cases=[Case("too_long", lambda: M.pad_sequences([[5] * 5], pad_id=0, max_len=4), "more than the maximum")]),
    Fn("lmlib.masking.collate_mlm",
       valid=lambda: dict(sequences=[[5, 6], [7]], pad_id=PAD, mask_id=MASK, vocab_size=V, cls_id=CLS, sep_id=SEP,
                          max_len=6, special_ids=(), mask_prob=0.5, replace_with_mask=0.8, replace_with_random=0.1,
                          generator=torch.Generator().manual_seed(0)),
       args={"sequences": SEQS, "pad_id": IDS, "mask_id": IDS, "vocab_size": Int(min=2), "cls_id": OPT_IDS,
             "sep_id": OPT_IDS, "max_len": Int(min=1, nullable=True), "special_ids": SPECIAL_IDS, "mask_prob": PROB,
             "replace_with_mask": PROB, "replace_with_random": PROB, "generator": GENERATOR},
       aliases={"sequences": ["sequence"]},
       cases=[Case("id_out_of_vocab", lambda: M.collate_mlm([[5, V]], pad_id=PAD, mask_id=MASK, vocab_size=V),
                   "outside the vocabulary"),
              Case("too_long", lambda: M.collate_mlm([[5] * 5], pad_id=PAD, mask_id=MASK, vocab_size=V, cls_id=CLS,
                                                     sep_id=SEP, max_len=6), "more than the maximum")]),
    Fn("lmlib.masking.mlm_window_batches",
       valid=lambda: dict(ids=_stream(), seq_len=6, batch_size=2, cls_id=CLS, sep_id=SEP, pad_id=PAD, mask_id=MASK,
                          vocab_size=V, special_ids=(), mask_prob=0.15),
       call=lambda **kw: M.mlm_window_batches(**kw)(torch.Generator().manual_seed(0)),
       args={"ids": Ids(vocab_size=V), "seq_len": Int(min=3), "batch_size": Int(min=1), "cls_id": IDS, "sep_id": IDS,
             "pad_id": IDS, "mask_id": IDS, "vocab_size": Int(min=2), "special_ids": SPECIAL_IDS, "mask_prob": PROB},
       cases=[Case("stream_shorter_than_a_window", lambda: M.mlm_window_batches(
           _stream()[:3], seq_len=6, batch_size=2, cls_id=CLS, sep_id=SEP, pad_id=PAD, mask_id=MASK, vocab_size=V),
           "fewer than one window")]),
    Fn("lmlib.masking.MaskedPositionsMLM", valid=lambda: dict(mlm_model=_bert()),
       args={"mlm_model": Custom([("str", "bert"), ("none", None), ("linear", torch.nn.Linear(2, 2))])}),
    Fn("lmlib.masking.MaskedPositionsMLM.forward",
       valid=lambda: dict(input_ids=torch.tensor([[2, 5, 6, 3], [2, 7, 6, 3]]), token_type_ids=None,
                          attention_mask=None, labels=_labels()),
       call=lambda **kw: M.MaskedPositionsMLM(_bert())(**kw),
       args={"input_ids": Tensor(dtype="int"),
             "labels": Custom([("none", None), ("float", _labels().float()), ("shape", torch.full((2, 3), 5)),
                               ("out_of_vocab", torch.full((2, 4), V)), ("list", _labels().tolist())])},
       aliases={"labels": ["labels", "MaskedPositionsMLM"]},
       cases=[Case("nothing_selected", lambda: M.MaskedPositionsMLM(_bert())(
           torch.tensor([[2, 5, 6, 3]]), labels=torch.full((1, 4), -100)), "all labels are -100")]),
    Fn("lmlib.masking.evaluate_mlm",
       valid=lambda: dict(model=_bert(), batches=[{"input_ids": torch.tensor([[2, 5, 6, 3], [2, 7, 6, 3]]),
                                                   "labels": _labels()}]),
       args={"model": Custom([("str", "bert"), ("none", None), ("linear", torch.nn.Linear(2, 2))]),
             "batches": Custom([("str", "ab"), ("dict", {"labels": _labels()}), ("none", None),
                                ("tuple_batches", [(torch.zeros(1, 2, dtype=torch.long), _labels())]),
                                ("float_labels", [{"input_ids": torch.zeros(2, 4, dtype=torch.long),
                                                   "labels": _labels().float()}]),
                                ("labels_out_of_vocab", [{"input_ids": torch.zeros(2, 4, dtype=torch.long),
                                                          "labels": torch.full((2, 4), V)}])])},
       cases=[Case("nothing_selected", lambda: M.evaluate_mlm(_bert(), [{"input_ids": torch.zeros(1, 4, dtype=torch.long),
                                                                          "labels": torch.full((1, 4), -100)}]),
                   "no selected positions")]),
    Fn("lmlib.masking.MLMBatch.to", valid=lambda: dict(device="cpu"),
       call=lambda **kw: M.collate_mlm([[5]], pad_id=PAD, mask_id=MASK, vocab_size=V).to(**kw),
       args={"device": Custom([("unknown", "gpu"), ("missing_cuda", "cuda:99" if torch.cuda.is_available() else "cuda"),
                                ("int", 3)])}),
]

test_bad_input = make_test(SPECS)

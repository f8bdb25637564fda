"""Byte-level BPE: lmlib (pure Python) against Hugging Face `tokenizers` (Rust) and `tiktoken` (Rust).

Usage::

    python benchmarks/bench_tokenizers.py            # the whole corpus (5 MB), 4,096 ids
    python benchmarks/bench_tokenizers.py --quick    # 1 MB, 1,024 ids: a smoke run

In one run, on the same text:

* training: ``lmlib.tokenizers.BPETokenizer.train`` and ``tokenizers``' ``BpeTrainer`` (same
  vocabulary size, same GPT-2 pre-tokenization, same special token);
* encoding: lmlib, ``tiktoken.Encoding`` built from lmlib's merge ranks, the lmlib tokenizer
  exported to ``tokenizers``, and the ``tokenizers``-trained tokenizer;
* agreement: lmlib's ids against tiktoken's and against the exported tokenizer's (must be
  identical), and the token counts and shared vocabulary of the two independently trained
  tokenizers (expected close, not identical: tie-breaking and details differ).

Times are printed as ratios measured side by side, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tiktoken  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

from lmlib.data import corpus_text  # noqa: E402
from lmlib.tokenizers import ENDOFTEXT, GPT2_PATTERN, BPETokenizer, bytes_to_unicode  # noqa: E402


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def hf_train(passages: list[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(GPT2_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[ENDOFTEXT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(passages, trainer=trainer)
    return tok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 MB of text and 1,024 ids")
    parser.add_argument("--vocab-size", type=int, default=None)
    args = parser.parse_args()

    text = corpus_text()
    vocab_size = 4096
    if args.quick:
        text, vocab_size = text[:1_000_000], 1024
    vocab_size = args.vocab_size or vocab_size
    passages = text.split("\n\n")  # for the batch encoders; lmlib and tiktoken see the whole text
    print(f"text: {len(text):,} characters, {len(text.encode()):,} bytes; vocabulary {vocab_size:,}; "
          f"{os.cpu_count()} CPU cores visible")

    # -- training ---------------------------------------------------------------------------
    ours, t_train_ours = timed(BPETokenizer.train, text, vocab_size)
    theirs, t_train_hf = timed(hf_train, passages, vocab_size)
    print("\ntraining")
    print(f"  lmlib BPETokenizer.train        {t_train_ours:7.2f} s")
    print(f"  tokenizers BpeTrainer           {t_train_hf:7.2f} s   (lmlib / tokenizers = "
          f"{t_train_ours / t_train_hf:.1f}x)")

    # -- encoding ----------------------------------------------------------------------------
    enc = tiktoken.Encoding(name="bench", pat_str=ours.pattern, mergeable_ranks=ours.mergeable_ranks,
                            special_tokens=ours.special_tokens)
    exported = ours.to_hf().backend_tokenizer
    ids_cold, t_cold = timed(ours.encode, text)  # fills the pre-token cache
    ids_ours, t_ours = timed(ours.encode, text)
    ids_tik, t_tik = timed(enc.encode, text, allowed_special="all")
    batch_exp, t_exp = timed(exported.encode_batch, passages)
    batch_hf, t_hf = timed(theirs.encode_batch, passages)
    print("\nencoding the same text")
    print(f"  lmlib encode (empty cache)      {t_cold:7.2f} s")
    print(f"  lmlib encode (warm cache)       {t_ours:7.2f} s")
    print(f"  tiktoken encode (lmlib ranks)   {t_tik:7.2f} s   (lmlib warm / tiktoken = {t_ours / t_tik:.1f}x)")
    print(f"  tokenizers, lmlib export, batch {t_exp:7.2f} s   (lmlib warm / tokenizers = {t_ours / t_exp:.1f}x)")
    print(f"  tokenizers, own training, batch {t_hf:7.2f} s")

    # -- agreement -----------------------------------------------------------------------------
    per_passage_ours = [ours.encode(p) for p in passages]
    same_export = sum(e.ids == o for e, o in zip(batch_exp, per_passage_ours))
    n_ours = len(ids_ours)
    n_hf = sum(len(e.ids) for e in batch_hf)
    n_ours_passages = sum(len(o) for o in per_passage_ours)
    hf_vocab = {"".join(t) for t in theirs.get_vocab()}
    b2u = bytes_to_unicode()
    our_vocab = {"".join(b2u[b] for b in v) for v in ours.vocab} | set(ours.special_tokens)
    shared = len(hf_vocab & our_vocab) / len(our_vocab)
    print("\nagreement")
    print(f"  lmlib == tiktoken on the whole text: {ids_ours == ids_tik} ({n_ours:,} tokens); "
          f"cold == warm: {ids_cold == ids_ours}")
    print(f"  lmlib == tokenizers export: {same_export}/{len(passages)} passages identical")
    print(f"  independently trained: lmlib {n_ours_passages:,} tokens, tokenizers {n_hf:,} tokens "
          f"(ratio {n_hf / n_ours_passages:.4f}); {shared:.1%} of lmlib's vocabulary also in tokenizers'")
    if ids_ours != ids_tik or same_export != len(passages) or ids_cold != ids_ours:
        raise SystemExit("DISAGREEMENT: lmlib must encode exactly like tiktoken and its own export")


if __name__ == "__main__":
    main()

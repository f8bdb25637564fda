"""Generate text with a zoo model from the command line.

    python -m lmlib.generate --model gpt-bpe --prompt "HAMLET:" --max-new-tokens 100 --top-p 0.9 --seed 0

Only the generated texts (each the prompt followed by its continuation) go to standard output;
with ``--num-samples N`` they are separated by ``--separator`` (default: a line ``---``). A
progress bar (``tqdm``) goes to standard error when standard error is a terminal, or always with
``--progress`` (``--no-progress`` turns it off). Bad arguments exit with status 2 and a message
that names the argument: an unknown model, an empty prompt, characters the model's tokenizer
cannot encode, numbers out of range, an unavailable device.

The samples are made in one batch, seeded by ``--seed``, with :func:`lmlib.generation.generate`
(the KV cache on), in chunks of :data:`CHUNK` tokens so that the progress bar can move; the
chunking does not depend on whether the bar is shown, so a seed gives the same text either way.
"""

from __future__ import annotations

import argparse
import math
import sys

__all__ = ["main"]

CHUNK = 16  #: tokens per generate() call (the progress bar's step)
GENERATORS = ("gpt-char", "gpt-bpe", "llama-char")  #: the zoo models that generate (bert-mlm does not)


def _number(kind, *, min=None, min_open=False, max=None):
    """An argparse ``type=`` that parses an int or a finite float and checks its range."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if min is not None and (value < min or (min_open and value == min)):
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if min_open else '>='} {min}")
        if max is not None and value > max:
            raise argparse.ArgumentTypeError(f"{text} must be <= {max}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lmlib.generate", description="Generate text with a zoo model.")
    p.add_argument("--model", required=True, help=f"zoo model: one of {', '.join(GENERATORS)}")
    p.add_argument("--prompt", required=True, help="the text to continue (not empty)")
    p.add_argument("--max-new-tokens", type=_number(int, min=0), default=100)
    p.add_argument("--temperature", type=_number(float, min=0.0, min_open=True), default=1.0)
    p.add_argument("--top-k", type=_number(int, min=1), default=None)
    p.add_argument("--top-p", type=_number(float, min=0.0, min_open=True, max=1.0), default=None)
    p.add_argument("--repetition-penalty", type=_number(float, min=0.0, min_open=True), default=1.0)
    p.add_argument("--greedy", action="store_true", help="take the most probable token (no sampling)")
    p.add_argument("--seed", type=_number(int), default=0)
    p.add_argument("--num-samples", type=_number(int, min=1, max=1024), default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--separator", default="\n---\n", help="printed between samples")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_const", const=True, default=None,
                     help="show a progress bar on stderr (default: only when stderr is a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_const", const=False)
    return p


def _unencodable(tokenizer, text: str) -> list[str]:
    """The distinct characters of ``text`` that ``tokenizer`` cannot encode, in order of appearance."""
    bad = []
    for c in dict.fromkeys(text):
        try:
            tokenizer.encode(c)
        except ValueError:
            bad.append(c)
    return bad


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.model not in GENERATORS:
        from lmlib.zoo import ZOO_NAMES
        why = " is a masked language model and does not generate" if args.model in ZOO_NAMES else " is not a zoo model"
        parser.error(f"argument --model: {args.model!r}{why}; choose one of {', '.join(GENERATORS)} "
                     f"(the zoo: {', '.join(ZOO_NAMES)})")
    if not args.prompt:
        parser.error("argument --prompt: the prompt is empty; give at least one character")

    import torch

    from lmlib import zoo
    from lmlib.generation import generate
    from lmlib.progress import tqdm
    from lmlib.validation import check_device

    try:
        device = check_device("device", args.device, who="lmlib.generate")
    except (TypeError, ValueError) as exc:
        parser.error(f"argument --device: {exc}")
    z = zoo.load(args.model, device=device)
    bad = _unencodable(z.tokenizer, args.prompt)
    if bad:
        parser.error(f"argument --prompt: the tokenizer of {args.model} cannot encode the character(s) "
                     f"{', '.join(repr(c) for c in bad)}; remove them or choose another model")
    ids = torch.tensor([z.tokenizer.encode(args.prompt)] * args.num_samples, dtype=torch.long, device=device)
    kw = dict(do_sample=not args.greedy, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
              repetition_penalty=args.repetition_penalty,
              generator=torch.Generator(device=device).manual_seed(args.seed))
    show = sys.stderr.isatty() if args.progress is None else args.progress
    out = ids
    with tqdm(total=args.max_new_tokens, desc=f"{args.model}", unit="tok", disable=not show, file=sys.stderr) as bar:
        done = 0
        while done < args.max_new_tokens:
            n = min(CHUNK, args.max_new_tokens - done)
            out = generate(z.model, out, n, **kw)
            done += n
            bar.update(n)
    texts = [z.tokenizer.decode(row) for row in out.tolist()]
    sys.stdout.write(args.separator.join(texts) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

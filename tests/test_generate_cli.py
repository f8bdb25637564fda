"""Tests for the command line ``python -m lmlib.generate``: stdout holds only the text, a seed
makes it reproducible, and the output equals lmlib.generation on the same settings."""

import subprocess
import sys

import pytest
import torch

from lmlib import generate as cli
from lmlib import zoo
from lmlib.generation import generate


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "lmlib.generate", *args], capture_output=True, text=True,
                          timeout=600)


def test_subprocess_stdout_is_only_the_text_and_seeded():
    args = ("--model", "gpt-char", "--prompt", "HAMLET:\n", "--max-new-tokens", "20", "--seed", "3",
            "--top-k", "10")
    a, b = run_cli(*args), run_cli(*args, "--progress")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout                       # the bar changes nothing on stdout
    assert a.stdout.startswith("HAMLET:\n") and len(a.stdout) == len("HAMLET:\n") + 20 + 1
    assert "tok" in b.stderr and "tok" not in a.stderr  # the bar went to stderr, only when asked
    c = run_cli(*args[:-4], "--seed", "4", "--top-k", "10")
    assert c.returncode == 0 and c.stdout != a.stdout


def test_main_in_process_equals_the_library(capsys):
    z = zoo.load("gpt-char")
    assert cli.main(["--model", "gpt-char", "--prompt", "To be", "--max-new-tokens", "40", "--greedy",
                     "--repetition-penalty", "1.3", "--no-progress"]) == 0
    out = capsys.readouterr()
    ids = torch.tensor([z.tokenizer.encode("To be")])
    ref = generate(z.model, ids, 40, do_sample=False, repetition_penalty=1.3)
    assert out.out == z.tokenizer.decode(ref[0].tolist()) + "\n"
    assert out.err == ""


def test_num_samples_are_separated_and_differ(capsys):
    assert cli.main(["--model", "gpt-bpe", "--prompt", "KING:", "--max-new-tokens", "20", "--num-samples", "3",
                     "--top-p", "0.9", "--seed", "1", "--separator", "\n@@\n"]) == 0
    texts = capsys.readouterr().out[:-1].split("\n@@\n")
    assert len(texts) == 3 and all(t.startswith("KING:") for t in texts) and len(set(texts)) > 1
    assert cli.main(["--model", "gpt-bpe", "--prompt", "KING:", "--max-new-tokens", "20", "--num-samples", "3",
                     "--top-p", "0.9", "--seed", "1", "--separator", "\n@@\n"]) == 0
    assert capsys.readouterr().out[:-1].split("\n@@\n") == texts


def test_zero_new_tokens_prints_the_prompt(capsys):
    assert cli.main(["--model", "llama-char", "--prompt", "ROMEO:", "--max-new-tokens", "0"]) == 0
    assert capsys.readouterr().out == "ROMEO:\n"

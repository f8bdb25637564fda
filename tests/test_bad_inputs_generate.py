"""Bad command lines of ``python -m lmlib.generate``: each exits with status 2 and a message on
stderr that names the argument (and, where it helps, what would be valid)."""

import subprocess
import sys

import pytest

from lmlib import generate as cli

EXEMPT = {"lmlib.generate.main": "a command line: bad arguments exit with status 2 (SystemExit), not "
                                 "TypeError/ValueError; every case is tested below, in-process and by subprocess"}

BASE = ["--max-new-tokens", "5", "--no-progress"]

CASES = [
    ("unknown_model", ["--model", "gpt-5", "--prompt", "a"], ["--model", "gpt-char, gpt-bpe, llama-char", "bert-mlm"]),
    ("masked_lm", ["--model", "bert-mlm", "--prompt", "a"], ["--model", "masked language model"]),
    ("no_model", ["--prompt", "a"], ["--model"]),
    ("empty_prompt", ["--model", "gpt-char", "--prompt", ""], ["--prompt", "empty"]),
    ("unencodable", ["--model", "gpt-char", "--prompt", "Hello 世界 ~"], ["--prompt", "'世'", "'界'", "gpt-char"]),
    ("negative_tokens", ["--model", "gpt-char", "--prompt", "a", "--max-new-tokens", "-1"], ["--max-new-tokens"]),
    ("float_tokens", ["--model", "gpt-char", "--prompt", "a", "--max-new-tokens", "2.5"], ["--max-new-tokens"]),
    ("zero_temperature", ["--model", "gpt-char", "--prompt", "a", "--temperature", "0"], ["--temperature"]),
    ("nan_temperature", ["--model", "gpt-char", "--prompt", "a", "--temperature", "nan"], ["--temperature"]),
    ("str_temperature", ["--model", "gpt-char", "--prompt", "a", "--temperature", "hot"], ["--temperature"]),
    ("zero_top_k", ["--model", "gpt-char", "--prompt", "a", "--top-k", "0"], ["--top-k"]),
    ("top_p_above_1", ["--model", "gpt-char", "--prompt", "a", "--top-p", "1.5"], ["--top-p"]),
    ("top_p_zero", ["--model", "gpt-char", "--prompt", "a", "--top-p", "0"], ["--top-p"]),
    ("zero_penalty", ["--model", "gpt-char", "--prompt", "a", "--repetition-penalty", "0"], ["--repetition-penalty"]),
    ("inf_penalty", ["--model", "gpt-char", "--prompt", "a", "--repetition-penalty", "inf"], ["--repetition-penalty"]),
    ("float_seed", ["--model", "gpt-char", "--prompt", "a", "--seed", "0.5"], ["--seed"]),
    ("zero_samples", ["--model", "gpt-char", "--prompt", "a", "--num-samples", "0"], ["--num-samples"]),
    ("bad_device", ["--model", "gpt-char", "--prompt", "a", "--device", "gpu"], ["--device"]),
]


@pytest.mark.parametrize(("label", "argv", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_command_line_in_process(label, argv, words, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv + BASE[2:] if "--max-new-tokens" in argv else argv + BASE)
    assert info.value.code == 2
    out = capsys.readouterr()
    assert out.out == ""
    for w in words:
        assert w in out.err, (label, out.err)


@pytest.mark.parametrize("label", ["unknown_model", "unencodable", "top_p_above_1"])
def test_bad_command_line_in_a_subprocess(label):
    argv, words = next((a, w) for l, a, w in CASES if l == label)
    r = subprocess.run([sys.executable, "-m", "lmlib.generate", *argv, *BASE], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 2 and r.stdout == ""
    assert all(w in r.stderr for w in words), r.stderr

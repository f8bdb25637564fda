"""Tests for lmlib.hub: offline detection is fast and the fallback loads the local course model."""

import socket
import threading
import time

import pytest
import torch

from lmlib import hub
from lmlib.gpt import GPT, GPTConfig
from lmlib.hf import gpt_to_hf
from lmlib.tokenizers import CharTokenizer, to_hf


@pytest.fixture()
def fallback_folder(tmp_path):
    """A small course-style model exported as a Hugging Face folder with its char tokenizer."""
    tok = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz :\n"))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16))
    folder = tmp_path / "course-hf"
    gpt_to_hf(model).save_pretrained(str(folder))
    to_hf(tok, folder)
    return folder, model, tok


def test_env_offline_needs_no_network(monkeypatch, fallback_folder):
    """HF_HUB_OFFLINE=1: no socket is opened, and the course model in the fallback folder is used."""
    folder, model, tok = fallback_folder
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(folder.parent / "empty-hf-home"))  # gpt2 is certainly not cached

    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was attempted while HF_HUB_OFFLINE=1")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    loaded = hub.load_causal_lm("gpt2", fallback_dir=folder, verbose=False)
    assert loaded.source == "course-fallback" and loaded.path == str(folder)
    assert "OFFLINE" in loaded.description and "course" in loaded.description
    # it is our model: same logits as the lmlib GPT on the same tokens, and the same tokenizer
    ids = loaded.tokenizer("to be: or not", return_tensors="pt")["input_ids"]
    assert ids[0].tolist() == tok.encode("to be: or not")
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(ids).logits, model(ids)[0], rtol=1e-4, atol=1e-5)


def test_unreachable_hub_is_detected_within_the_timeout(monkeypatch):
    """A connection that never completes (a black-holed address) is given up after `timeout`."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    released = threading.Event()

    def hang(*args, **kwargs):
        released.wait(30)
        raise TimeoutError("simulated black hole")

    monkeypatch.setattr(socket, "create_connection", hang)
    t = time.perf_counter()
    try:
        assert hub.hub_reachable(timeout=0.3) is False
        assert time.perf_counter() - t < 5  # far below the 30 s the connection attempt would take
    finally:
        released.set()  # let the abandoned attempt finish instead of outliving the test


def test_offline_env_values(monkeypatch):
    for value, expected in [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)]:
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        assert hub.offline_by_env() is expected


def test_endpoint_is_read_from_hf_endpoint(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://localhost:1")
    assert hub._hub_address() == ("localhost", 1)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert hub.hub_reachable(timeout=1.0) is False  # nothing listens on port 1


def test_a_failed_fallback_keeps_both_reasons(monkeypatch, tmp_path):
    """When the requested model and the course fallback both fail, the error says why for each."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    broken = tmp_path / "broken-fallback"
    broken.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):  # "complete", but junk
        (broken / name).write_text("not what transformers expects")
    with pytest.raises(ValueError) as info:
        hub.load_causal_lm(str(tmp_path / "no-such-model"), fallback_dir=broken, verbose=False)
    msg = str(info.value)
    assert "no-such-model" in msg and "from the local files" in msg, msg
    assert "course fallback" in msg and str(broken) in msg, msg
    assert info.value.__cause__ is not None


def test_arguments_are_checked_before_any_network_access(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    for kwargs, word in ((dict(timeout=-1.0), "timeout"), (dict(timeout=float("nan")), "timeout"),
                         (dict(name=""), "name"), (dict(name=None), "name"), (dict(verbose=1), "verbose"),
                         (dict(fallback_dir=3), "fallback_dir")):
        with pytest.raises((TypeError, ValueError), match=word):
            hub.load_causal_lm(**kwargs)

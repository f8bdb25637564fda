"""Load a causal language model with ``transformers``: the real one when online, ours when not.

The classic ``transformers`` example loads GPT-2 from the Hugging Face Hub::

    tokenizer = AutoTokenizer.from_pretrained("gpt2")
    model = AutoModelForCausalLM.from_pretrained("gpt2")

Without a network, ``from_pretrained`` retries for a long time before it fails. :func:`load_causal_lm`
runs the same code path but decides first, in under ``timeout`` seconds, where the model comes from:

1. **Offline?** ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set to ``1``/``true``/``yes``/``on``
   means offline, with no network access at all. Otherwise one TCP connection to the Hub's host
   (port 443) is attempted in a background thread; if it does not succeed within ``timeout``
   seconds (default 1.5) we are offline. DNS lookups that hang are covered too, because the
   thread is simply abandoned.
2. **Online:** ``from_pretrained(name)`` downloads (or reuses) the real model.
3. **Offline, but the model is in the local Hugging Face cache:** ``from_pretrained(name,
   local_files_only=True)`` loads it without touching the network.
4. **Otherwise, the fallback:** the course's own character-level GPT (:func:`lmlib.pretrained.course_gpt`)
   is exported once as a local Hugging Face folder (``config.json``, ``model.safetensors`` and the
   character tokenizer's ``tokenizer.json``) and loaded from there with the same
   ``AutoModelForCausalLM`` / ``AutoTokenizer`` calls.

The returned :class:`LoadedLM` says which model it is (``.description``), and :func:`load_causal_lm`
prints it, so a reader always knows whether the text comes from GPT-2 or from the course model.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lmlib.pretrained import display_path
from lmlib.validation import check_bool, check_float, check_str
from lmlib.validation import check_path

__all__ = ["offline_by_env", "hub_reachable", "LoadedLM", "export_course_model", "load_causal_lm"]

_TRUE = {"1", "true", "yes", "on"}


def offline_by_env() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` asks for offline mode."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_address() -> tuple[str, int]:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    u = urlparse(endpoint)
    return u.hostname or "huggingface.co", u.port or (443 if u.scheme != "http" else 80)


def hub_reachable(timeout: float = 1.5) -> bool:
    """Can a TCP connection to the Hub be opened within ``timeout`` seconds? (False at once when
    the environment asks for offline mode.) Never blocks longer than ``timeout``."""
    check_float("timeout", timeout, min=0.0, min_open=True, who="hub_reachable")
    if offline_by_env():
        return False
    host, port = _hub_address()
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


@dataclass
class LoadedLM:
    """A ``transformers`` causal LM with its tokenizer, and where they came from.

    ``source``: ``"hub"`` (downloaded/validated online), ``"hf-cache"`` (the requested model from
    the local Hugging Face cache, offline) or ``"course-fallback"`` (the course's own model).
    """

    model: Any
    tokenizer: Any
    name: str
    source: str
    path: str
    reason: str

    @property
    def description(self) -> str:
        if self.source == "course-fallback":
            return (f"OFFLINE ({self.reason}): using the course's own character-level GPT from {display_path(self.path)} "
                    f"instead of {self.name!r}")
        if self.source == "hf-cache":
            return f"offline ({self.reason}): using {self.name!r} from the local Hugging Face cache"
        return f"online: using {self.name!r} from the Hugging Face Hub"


def export_course_model(folder: str | os.PathLike | None = None, *, verbose: bool = False) -> Path:
    """Save the course GPT (trained or loaded from the cache) as a Hugging Face folder with its
    tokenizer; returns the folder. Reuses an existing export of the same recipe."""
    from lmlib.hf import gpt_to_hf
    from lmlib.pretrained import course_gpt
    from lmlib.tokenizers import to_hf

    if folder is not None:
        check_path("folder", folder, who="export_course_model")
    check_bool("verbose", verbose, who="export_course_model")

    def complete(f: Path) -> bool:
        return all((f / n).exists() for n in ("config.json", "model.safetensors", "tokenizer.json"))

    if folder is not None and complete(Path(folder)):
        return Path(folder)
    course = course_gpt(progress=verbose, verbose=verbose)
    folder = Path(folder) if folder is not None else course.path.parent / "hf"
    if complete(folder):
        return folder
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    with _quiet_transformers():
        gpt_to_hf(course.model).save_pretrained(str(tmp))
    to_hf(course.tokenizer, tmp)
    if folder.exists():  # a partial export
        import shutil
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


class _quiet_transformers:
    """Switch off transformers' progress bars (loading/saving shards) inside a ``with`` block."""

    def __enter__(self):
        from transformers.utils import logging as hf_logging

        self._was = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        return self

    def __exit__(self, *exc):
        from transformers.utils import logging as hf_logging

        if self._was:
            hf_logging.enable_progress_bar()
        return False


def _load_folder_or_name(name: str, **kw):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _quiet_transformers():
        tok = AutoTokenizer.from_pretrained(name, **kw)
        model = AutoModelForCausalLM.from_pretrained(name, use_safetensors=True, **kw)  # never a pickle
    return model.eval(), tok


def load_causal_lm(name: str = "gpt2", *, timeout: float = 1.5, fallback_dir: str | os.PathLike | None = None,
                   verbose: bool = True) -> LoadedLM:
    """``name`` from the Hub when online, from the local HF cache when offline, else the course
    model (see the module docstring). Prints which model is used when ``verbose``.

    When the fallback fails too, the ``ValueError`` names both reasons: why ``name`` could not be
    loaded and why the course model could not (the latter is also chained as ``__cause__``)."""
    check_str("name", name, nonempty=True, who="load_causal_lm")
    check_float("timeout", timeout, min=0.0, min_open=True, who="load_causal_lm")
    if fallback_dir is not None:
        check_path("fallback_dir", fallback_dir, who="load_causal_lm")
    check_bool("verbose", verbose, who="load_causal_lm")
    if offline_by_env():
        online, reason = False, "HF_HUB_OFFLINE is set"
    else:
        online = hub_reachable(timeout)
        reason = "" if online else f"the Hub at {_hub_address()[0]} is not reachable within {timeout:g} s"
    loaded = None
    if online:
        try:
            model, tok = _load_folder_or_name(name)
            loaded = LoadedLM(model, tok, name, "hub", name, "")
        except Exception as exc:  # e.g. the download failed half-way
            reason = f"downloading {name!r} failed: {type(exc).__name__}"
    if loaded is None:
        try:
            model, tok = _load_folder_or_name(name, local_files_only=True)
            loaded = LoadedLM(model, tok, name, "hf-cache", name, reason)
        except Exception as local_exc:
            try:
                folder = export_course_model(fallback_dir)
                model, tok = _load_folder_or_name(str(folder), local_files_only=True)
            except Exception as exc:
                raise ValueError(
                    f"load_causal_lm: {name!r} could not be loaded ({reason or 'online'}; from the local files: "
                    f"{type(local_exc).__name__}: {local_exc}), and neither could the course fallback from "
                    f"fallback_dir={fallback_dir!r} ({type(exc).__name__}: {exc})") from exc
            loaded = LoadedLM(model, tok, name, "course-fallback", str(folder), reason)
    if verbose:
        print(loaded.description)
    return loaded

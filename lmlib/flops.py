"""Where a GPT's compute goes, and the ``6·N·D`` rule for the cost of training.

A matrix multiply of an ``(m × k)`` matrix by a ``(k × n)`` matrix does ``m·k·n`` multiply-adds,
which we count as ``2·m·k·n`` floating-point operations (FLOPs). Per token, the course GPT
(:mod:`lmlib.gpt`: ``L`` pre-norm blocks of width ``C``, an FFN of width ``4C``, vocabulary ``V``,
the output head tied to the token embedding) does, in its forward pass::

    attention projections   L · 2 · 4C²        Q, K, V and the output projection
    attention scores        L · 2 · T · C      q·k with the T keys of the context (all heads)
    attention weighted sum  L · 2 · T · C      the weights times the T values
    MLP                     L · 2 · 8C²        C -> 4C -> C
    output head             2 · C · V          the (tied) V × C matrix

The weights contribute ``2`` FLOPs each (one multiply-add per token); the two attention terms
use no weights and grow with the context length ``T``. Not counted (as in the literature):
biases, LayerNorm, GELU, softmax, residual additions, the embedding lookups (a gather, not a
multiply) and the loss: ``O(C)`` or ``O(V)`` work per token against ``O(C²)`` for the matmuls.

:func:`gpt_flops_breakdown` returns this table for a :class:`~lmlib.gpt.GPTConfig`; its total is
:func:`lmlib.counting.gpt_flops_per_token`. :func:`training_flops` is the estimate ``6·N·D``
and :func:`non_embedding_params` the ``N`` it is usually quoted with.
"""

from __future__ import annotations

import numbers
from typing import Any

from lmlib.validation import check_bool, check_float, check_int

__all__ = ["gpt_flops_breakdown", "non_embedding_params", "training_flops"]


def gpt_flops_breakdown(config, seq_len: int | None = None, *, causal: bool = False) -> dict[str, int]:
    """Forward-pass matmul FLOPs per token of :class:`lmlib.gpt.GPT`, by component.

    ``seq_len`` is the context length ``T`` (default ``config.block_size``). Returns
    ``{"attention_projections", "attention_scores", "attention_weighted_sum", "mlp",
    "output_head", "total"}`` (see the module docstring). With ``causal=False`` (the default)
    every query is counted against all ``T`` keys, which is what a dense attention kernel
    computes (the masked half of the ``T × T`` scores is computed, then discarded);
    ``causal=True`` counts only the keys a query may see, ``(T + 1) / 2`` on average.
    Forward plus backward is 3 times the total (see :func:`training_flops`).
    """
    from lmlib.gpt import GPTConfig

    who = "gpt_flops_breakdown"
    if not isinstance(config, GPTConfig):
        raise TypeError(f"{who}: config must be a GPTConfig, got {type(config).__name__}")
    T = config.block_size if seq_len is None else check_int("seq_len", seq_len, min=1, max=config.block_size, who=who)
    check_bool("causal", causal, who=who)
    L, C, V = config.n_layer, config.n_embd, config.vocab_size
    keys_per_query_x2 = T + 1 if causal else 2 * T      # twice the mean number of keys, an integer
    f = {
        "attention_projections": L * 2 * 4 * C * C,
        "attention_scores": L * keys_per_query_x2 * C,
        "attention_weighted_sum": L * keys_per_query_x2 * C,
        "mlp": L * 2 * 2 * C * 4 * C,
        "output_head": 2 * C * V,
    }
    f["total"] = sum(f.values())
    return f


def non_embedding_params(model_or_config) -> int:
    """Parameters of a GPT without the token and position embeddings: the ``N`` of the scaling
    laws (Kaplan et al., 2020). The output head is tied to the token embedding, so it is not
    counted either, although it costs ``2·C·V`` FLOPs per token.

    Takes a :class:`lmlib.gpt.GPT` (its parameters are counted) or a
    :class:`~lmlib.gpt.GPTConfig` (the count is computed by :func:`lmlib.counting.gpt_params`).
    """
    from lmlib.counting import gpt_params
    from lmlib.gpt import GPT, GPTConfig

    if isinstance(model_or_config, GPT):
        return model_or_config.num_params(non_embedding=True)
    if isinstance(model_or_config, GPTConfig):
        return gpt_params(model_or_config, non_embedding=True)
    raise TypeError(f"non_embedding_params: model_or_config must be a GPT or a GPTConfig, "
                    f"got {type(model_or_config).__name__}")


def _count(name: str, value: Any) -> int | float:
    """A count >= 0: an int stays an int (exact), a float (``3e11``) is accepted as a float."""
    check_float(name, value, min=0.0, who="training_flops")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def training_flops(n_params: int | float, n_tokens: int | float) -> int | float:
    """``6 · n_params · n_tokens``: the usual estimate of the FLOPs needed to train a model of
    ``N = n_params`` parameters on ``D = n_tokens`` tokens.

    Where the 6 comes from: every weight takes part in one multiply-add per token in the forward
    pass (2 FLOPs), and in two in the backward pass (4 FLOPs): one to pass the gradient back to
    the layer's input (``dX = dY·Wᵀ``) and one for the gradient of the weight itself
    (``dW = Xᵀ·dY``). So forward + backward = 2 + 4 = 6 FLOPs per parameter per token.

    What it leaves out:

    - attention's context-dependent term, which involves no parameters: ``3 · 4·L·T·C`` FLOPs
      per token for context length ``T`` (the ``attention_scores`` and ``attention_weighted_sum``
      of :func:`gpt_flops_breakdown`, times 3 for forward + backward). It is small while
      ``T ≪ 6C`` (``12C²`` weights per block against ``2TC`` per block for the two terms);
    - whatever ``N`` does not count: with ``N =`` :func:`non_embedding_params`, the tied output
      head's ``6·C·V`` per token, large for a small model with a large vocabulary;
    - everything that is not a matmul (LayerNorm, GELU, softmax, the loss), the optimiser's
      update (a few FLOPs per parameter per *step*, not per token) and recomputation when
      activations are checkpointed.

    Integer inputs give an exact ``int``; floats (``3e11`` tokens) a ``float``.
    """
    return 6 * _count("n_params", n_params) * _count("n_tokens", n_tokens)

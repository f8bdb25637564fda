"""The chapter-6 checkers accept right answers and give specific hints for typical wrong ones."""

import torch
import torch.nn.functional as F

from lmlib.exercises import ch06
from lmlib.masking import mask_tokens


def test_loss_positions():
    assert ch06.check_loss_positions(32 * 64 * 0.15, quiet=True)
    v = ch06.check_loss_positions(32 * 64 * 0.15 * 0.8, quiet=True)
    assert not v and "[MASK]" in v.message
    assert not ch06.check_loss_positions(None, quiet=True)


def good_mask(ids, mask_id, vocab_size, generator):
    return mask_tokens(ids, mask_id=mask_id, vocab_size=vocab_size, generator=generator)


def test_mask_tokens_right_and_wrong():
    assert ch06.check_mask_tokens(good_mask, quiet=True)

    def all_mask(ids, mask_id, vocab_size, generator):
        sel = torch.rand(ids.shape, generator=generator) < 0.15
        return ids.masked_fill(sel, mask_id), torch.where(sel, ids, -100)

    v = ch06.check_mask_tokens(all_mask, quiet=True)
    assert not v and "random token" in v.message

    def labels_everywhere(ids, mask_id, vocab_size, generator):
        c, _ = good_mask(ids, mask_id, vocab_size, generator)
        return c, ids.clone()

    v = ch06.check_mask_tokens(labels_everywhere, quiet=True)
    assert not v and "-100" in v.message

    def corrupted_labels(ids, mask_id, vocab_size, generator):
        c, lab = good_mask(ids, mask_id, vocab_size, generator)
        return c, torch.where(lab != -100, c, lab)

    v = ch06.check_mask_tokens(corrupted_labels, quiet=True)
    assert not v and "ORIGINAL" in v.message
    assert not ch06.check_mask_tokens(None, quiet=True)

    def raises(*a):
        raise NotImplementedError

    assert not ch06.check_mask_tokens(raises, quiet=True)


def test_mlm_loss():
    def good(logits, labels):
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)

    assert ch06.check_mlm_loss(good, quiet=True)

    def over_all(logits, labels):
        ce = F.cross_entropy(logits.flatten(0, 1), labels.clamp(min=0).flatten(), reduction="none")
        return (ce * (labels.flatten() != -100)).sum() / labels.numel()

    v = ch06.check_mlm_loss(over_all, quiet=True)
    assert not v and "ALL positions" in v.message


def test_attention_pairs():
    assert ch06.check_attention_pairs(64, 36, quiet=True)
    v = ch06.check_attention_pairs(64, 28, quiet=True)
    assert not v and "itself" in v.message
    v = ch06.check_attention_pairs(36, 36, quiet=True)
    assert not v and "both directions" in v.message


def test_placeholders_give_hints_not_errors():
    assert not ch06.check_mlm_loss(lambda logits, labels: None, quiet=True)
    assert not ch06.check_mask_tokens(lambda *a: None, quiet=True)

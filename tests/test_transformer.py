"""The character-level transformer: shapes, causality, tied head, parameter count, recipes."""

import pytest
import torch
from torch import nn

from optbench.errors import OptbenchError
from optbench.models import build_model
from optbench.runners.recipes import build_optimizer, split_parameters
from optbench.specs import parse_optimizer
from optbench.transformer import TINY, Transformer, TransformerConfig, count_parameters


def tiny(vocab=11, **sizes):
    torch.manual_seed(0)
    return Transformer(TransformerConfig(vocab_size=vocab, **{**TINY, **sizes}))


def test_logits_shape_and_tied_head():
    model = tiny()
    logits = model(torch.randint(0, 11, (3, 16)))
    assert logits.shape == (3, 16, 11)
    assert model.lm_head.weight is model.wte.weight


def test_changing_a_future_token_never_changes_an_earlier_logit():
    model = tiny().eval()
    idx = torch.randint(0, 11, (1, 16), generator=torch.Generator().manual_seed(1))
    base = model(idx)
    for t in range(16):
        changed = idx.clone()
        changed[0, t] = (changed[0, t] + 1) % 11
        out = model(changed)
        assert torch.equal(out[0, :t], base[0, :t]), f"position {t} leaked backwards"
        assert not torch.allclose(out[0, t], base[0, t])  # the changed position itself does move


def test_attention_equals_explicit_masked_softmax():
    """SDPA with is_causal=True against attention written out from Vaswani et al. (2017), eq. 1."""
    model = tiny().double()
    attn = model.blocks[0].attn
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    q, k, v = attn.c_attn(x).split(32, dim=2)
    heads = [t.view(2, 7, 2, 16).transpose(1, 2) for t in (q, k, v)]
    scores = heads[0] @ heads[1].transpose(-2, -1) / 16**0.5
    scores = scores.masked_fill(torch.ones(7, 7, dtype=torch.bool).triu(1), float("-inf"))
    y = (scores.softmax(-1) @ heads[2]).transpose(1, 2).reshape(2, 7, 32)
    torch.testing.assert_close(attn(x), attn.c_proj(y))


def test_default_size_matches_nanogpt_cpu_config():
    # nanoGPT's shakespeare_char CPU run prints "number of parameters: 0.80M" for vocab 65; its count
    # leaves out the position table. 4 layers x 12 n_embd^2 + the token table, computed here:
    model = Transformer(TransformerConfig(vocab_size=65))
    assert count_parameters(model, embeddings=False) == 4 * 12 * 128**2 + 65 * 128 + 4 * 2 * 128 + 128
    assert count_parameters(model) == count_parameters(model, embeddings=False) + 64 * 128


def test_context_longer_than_block_and_bad_sizes_are_errors():
    with pytest.raises(OptbenchError, match="exceeds the model's block_size 16"):
        tiny()(torch.zeros(1, 17, dtype=torch.int64))
    with pytest.raises(OptbenchError, match="divisible by n_head"):
        TransformerConfig(vocab_size=5, n_embd=30, n_head=4).check()
    with pytest.raises(OptbenchError, match="n_layer must be a positive integer"):
        TransformerConfig(vocab_size=5, n_layer=0).check()


def test_muon_recipe_puts_only_block_matrices_on_muon():
    model = tiny()
    matrices, kernels, rest = split_parameters(model)
    block_matrices = [m.weight for block in model.blocks for m in block.modules() if isinstance(m, nn.Linear)]
    assert [id(p) for p in matrices] == [id(p) for p in block_matrices] and not kernels
    assert {id(p) for p in rest} == {
        id(p) for p in model.parameters() if all(p is not m for m in block_matrices)
    }
    assert any(p is model.wte.weight for p in rest) and any(p is model.wpe.weight for p in rest)
    optimizer = build_optimizer(parse_optimizer("muon"), "muon", model, lambda _spec: {})
    muon = optimizer.optimizers[0]
    assert {id(p) for g in muon.param_groups for p in g["params"]} == {id(p) for p in block_matrices}


def test_classifier_head_rule_unchanged_for_image_models():
    """The output layer is still each image model's last weight matrix."""
    for name in ("mlp", "lenet", "resnet"):
        model = build_model(name, (1, 8, 8), 10)
        weights = [p for p in model.parameters() if p.ndim >= 2]
        matrices, kernels, _ = split_parameters(model)
        assert {id(p) for p in matrices + kernels} == {id(p) for p in weights[:-1]}


def test_no_decay_recipe_spares_norms_biases_and_embeddings():
    model = tiny(bias=True)
    optimizer = build_optimizer(
        parse_optimizer("adamw:weight_decay=0.1"), "no-decay", model, lambda _spec: {}
    )
    decayed, undecayed = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and undecayed["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith(".weight") and "ln" not in names[id(p)] for p in decayed["params"])
    assert {names[id(p)] for p in undecayed["params"]} >= {"wte.weight", "wpe.weight", "ln_f.weight"}
    assert any(names[id(p)].endswith(".bias") for p in undecayed["params"])

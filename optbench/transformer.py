"""A small decoder-only transformer for character-level language modelling (GPT-2's layout, as in
nanoGPT): token + learned position embeddings, `n_layer` pre-norm blocks of causal self-attention
and a 4x GELU MLP, a final LayerNorm, and an output head tied to the token embedding.

The attention is `torch.nn.functional.scaled_dot_product_attention(..., is_causal=True)`, so a
position sees itself and the positions before it, never a later one. The initialisation is GPT-2's
(Radford et al. 2019, section 2.3, as nanoGPT implements it): weights N(0, 0.02²), biases zero, and
each residual branch's output projection N(0, (0.02 / sqrt(2 n_layer))²).

The default sizes are nanoGPT's documented CPU configuration for shakespeare_char
(4 layers, 4 heads, width 128, context 64, no dropout, no biases): about 0.8 M parameters.
The weight matrices of the blocks are its hidden weights; the embeddings (and the head tied to
the token embedding) are `nn.Embedding` tables, which the parameter-group recipes keep off Muon and
free of weight decay (`runners/recipes.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import OptbenchError


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of the model. `block_size` is the longest context it reads (the position table's rows)."""

    vocab_size: int
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False  # biases in the Linear and LayerNorm layers (nanoGPT's default: none)

    def check(self) -> None:
        """OptbenchError for sizes no model can have."""
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise OptbenchError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise OptbenchError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not 0 <= self.dropout < 1:
            raise OptbenchError(f"dropout must be in [0, 1), got {self.dropout}")


# A configuration that trains in seconds: the tests' and quick sweeps' model.
TINY = dict(block_size=16, n_layer=2, n_head=2, n_embd=32)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t attends to positions <= t."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, width = x.shape
        q, k, v = self.c_attn(x).split(width, dim=2)
        q, k, v = (t.view(batch, time, self.n_head, width // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(batch, time, width)))


class MLP(nn.Module):
    """Linear (width -> 4 width), GELU, Linear (4 width -> width)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """Token ids `[batch, time]` (int64, time <= block_size) -> logits `[batch, time, vocab_size]`."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        config.check()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied (Press & Wolf 2017)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for projection in (block.attn.c_proj, block.mlp.c_proj):
                nn.init.normal_(projection.weight, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        time = idx.shape[1]
        if time > self.config.block_size:
            raise OptbenchError(
                f"context of {time} tokens exceeds the model's block_size {self.config.block_size}"
            )
        positions = torch.arange(time, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(positions))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def count_parameters(model: nn.Module, embeddings: bool = True) -> int:
    """Trainable parameters, each shared tensor once; `embeddings=False` leaves out the position
    table, as nanoGPT's reported count does."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if not embeddings and isinstance(model, Transformer):
        total -= model.wpe.weight.numel()
    return total

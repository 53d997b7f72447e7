"""Hugging Face transformers: ``attn_implementation="unisparse"``.

Importing this module registers an attention function (and its mask
function) under the name ``"unisparse"`` with ``transformers.AttentionInterface``
/ ``AttentionMaskInterface``::

    import unisparse.integrations.hf  # registers "unisparse"
    model = AutoModelForCausalLM.from_pretrained(..., attn_implementation="unisparse")
    model.config.unisparse_config = {"tau": 0.95, "c_k": 8}   # optional, per model

The configuration is, in order: ``model.config.unisparse_config`` (a dict
of :class:`unisparse.Config` fields, or a ``Config``), else the one given to
:func:`register` (default ``Config()``). The model's ``scaling`` replaces
``Config.scale``; causality follows the module (``is_causal``).

What runs where:

* prefill self-attention (query length == key length), no padding: UniSparse
  through ``torch.ops.unisparse.attention``, with GQA read natively (no
  ``repeat_kv``);
* anything UniSparse does not model falls back to exact dense attention
  (transformers' ``sdpa`` function), logging the reason once: decoding or
  chunked prefill with a KV cache (query length != key length), a padding
  or custom attention mask, dropout > 0, a sliding window, a softcap, or
  ``output_attentions``.

The mask function is transformers' ``sdpa_mask``, which returns no mask for
unpadded causal inputs; a non-trivial mask therefore means padding (or a
custom mask). Under ``torch.compile`` transformers materialises the causal
mask; a mask that equals the causal one is recognised outside tracing only,
so a compiled model falls back to dense attention when it receives a mask.
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from ..config import Config
from ..torch_ops import config_args

__all__ = ["register", "unisparse_attention_forward", "DEFAULT_NAME"]

DEFAULT_NAME = "unisparse"
_log = logging.getLogger(__name__)
_warned: set[str] = set()
_DEFAULT_CONFIGS: dict[str, Config] = {}


def _warn_once(reason: str):
    if reason not in _warned:
        _warned.add(reason)
        _log.warning("unisparse: falling back to dense sdpa attention: %s", reason)


def _config_for(module, name: str) -> Config:
    cfg = getattr(getattr(module, "config", None), "unisparse_config", None)
    if cfg is None:
        return _DEFAULT_CONFIGS.get(name, Config())
    if isinstance(cfg, (Config, dict)):
        return Config.parse(cfg)
    raise TypeError(f"config.unisparse_config must be a dict or unisparse.Config, got {type(cfg).__name__}")


def _is_plain_causal(mask: torch.Tensor, q_len: int) -> bool:
    if torch.compiler.is_compiling() or mask.ndim != 4 or mask.shape[-1] != q_len or mask.shape[-2] != q_len:
        return False
    causal = torch.ones(q_len, q_len, dtype=torch.bool, device=mask.device).tril()
    if mask.dtype == torch.bool:
        return bool(torch.equal(mask, causal.expand_as(mask)))
    # additive float mask: 0 where visible, very negative elsewhere
    visible = mask == 0
    return bool(torch.equal(visible, causal.expand_as(mask))) and bool((mask[~visible] < -1e4).all())


def _dense(module, query, key, value, attention_mask, dropout, scaling, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)


def unisparse_attention_forward(
    module,
    query,
    key,
    value,
    attention_mask,
    dropout: float = 0.0,
    scaling: float | None = None,
    *,
    _name: str = DEFAULT_NAME,
    **kwargs,
):
    """The attention function registered with ``AttentionInterface``.

    ``query`` ``[B, Hq, Nq, D]``, ``key``/``value`` ``[B, Hkv, Nk, D]`` (not
    repeated for GQA); returns ``(attn_output [B, Nq, Hq, D], None)``.
    """
    q_len, kv_len = query.shape[2], key.shape[2]
    reason = None
    if q_len != kv_len:
        reason = "query length != key length (decoding / chunked prefill with a KV cache)"
    elif dropout and dropout > 0.0:
        reason = f"dropout = {dropout}"
    elif kwargs.get("sliding_window") is not None:
        reason = "sliding-window attention"
    elif kwargs.get("softcap") is not None:
        reason = "logit softcap"
    elif kwargs.get("output_attentions", False):
        reason = "output_attentions=True"
    elif attention_mask is not None and not _is_plain_causal(attention_mask, q_len):
        reason = "an attention mask other than plain causal (padding or a custom mask)"
    if reason is not None:
        _warn_once(reason)
        return _dense(module, query, key, value, attention_mask, dropout, scaling, **kwargs)

    cfg = _config_for(module, _name)
    is_causal = kwargs.get("is_causal")
    causal = bool(getattr(module, "is_causal", True) if is_causal is None else is_causal)
    changes = {"causal": causal}
    if scaling is not None:
        changes["scale"] = float(scaling)
    cfg = dataclasses.replace(cfg, **changes)
    # [B, H, N, D] views of [B, N, H, D] projections: the kernel wants them contiguous.
    q, k, v = (x.contiguous() for x in (query, key, value))
    if layout_hooks and not torch.compiler.is_compiling():
        out, _, counts, _ = torch.ops.unisparse.attention_layout(q, k, v, *config_args(cfg))
        for hook in layout_hooks:
            hook(cfg, counts.cpu().numpy())
    else:
        out, _ = torch.ops.unisparse.attention(q, k, v, *config_args(cfg))
    return out.transpose(1, 2).contiguous(), None


#: Called with ``(cfg, counts)`` (a NumPy array) after each UniSparse
#: attention, for tests and the fidelity report to read the density the model
#: ran at. While a hook is registered the call returns the layout it used
#: (``unisparse::attention_layout``, still one estimation).
layout_hooks: list = []


def register(name: str = DEFAULT_NAME, config: Config | None = None) -> str:
    """Registers UniSparse attention under ``name`` (default ``"unisparse"``)
    with ``config`` as its default configuration; returns ``name``."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if config is not None and not isinstance(config, Config):
        raise TypeError(f"config must be a unisparse.Config, got {type(config).__name__}")
    _DEFAULT_CONFIGS[name] = config or Config()

    def forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        return unisparse_attention_forward(
            module, query, key, value, attention_mask, dropout, scaling, _name=name, **kwargs
        )

    forward.__name__ = f"unisparse_attention_forward_{name}"
    AttentionInterface.register(name, forward)
    AttentionMaskInterface.register(name, sdpa_mask)
    return name


register()

"""The fidelity harness: sweeps of configurations, their layouts from the
NumPy reference, the shared dense pass, recall / output error / needle
retrieval per configuration, and the exact top-p floor
(see :mod:`unisparse.fidelity`)."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from .. import reference as ref
from ..config import Config, parse_fields, preset, text_items
from ..peaked import peaked_qkv
from ..reference import twolevel
from ..synthetic import needle_span_hits, structured_qkv
from .cost import scoring_cost

__all__ = [
    "SWEEPS",
    "GENERATORS",
    "ORACLE_TAUS",
    "parse_config",
    "family",
    "label",
    "layouts",
    "sample_rows",
    "evaluate",
    "oracle_curve",
    "needle_rows",
    "row_oracle_spans",
    "floor_at",
    "per_head",
    "run",
]

#: The synthetic generators (``--generator``): the project's own and the
#: independently written peaked one (:mod:`unisparse.peaked`), which the
#: estimators were not chosen on.
GENERATORS = {
    "structured": lambda B, Hq, Hkv, N, D, seed, peak, needles: structured_qkv(
        B, Hq, Hkv, N, D, seed=seed, peak=peak, needles=needles
    ),
    "peaked": lambda B, Hq, Hkv, N, D, seed, peak, needles: peaked_qkv(
        B, Hq, Hkv, N, D, seed=seed, peak=peak, needles=needles
    ),
}

#: Named sweeps: each entry is a dict of Config fields over mean pooling
#: (``preset("mean")``, the default when they were logged; block 128 unless
#: given): :func:`parse_config` reads them.
SWEEPS = {
    "quick": [
        dict(tau=0.9),
        dict(tau=0.99, c_k=8),
    ],
    "default": [
        dict(tau=0.9),  # the design's starting default
        dict(tau=0.95),
        dict(tau=0.99),
        dict(tau=0.9, c_k=8),
        dict(tau=0.95, c_k=8),
        dict(tau=0.98, c_k=8),
        dict(tau=0.99, c_k=8),  # the proposed default
        dict(tau=0.995, c_k=8),
        dict(tau=0.99, c_k=4),
        dict(tau=0.99, c_q=8, c_k=8),
        dict(tau=0.99, c_k=8, c_h=2),
        dict(tau=0.95, local_blocks=2),
        dict(tau=0.95, min_blocks=8),
    ],
}
#: The estimator families of docs/Fidelity.md, each over a range of tau: the
#: Pareto curves (density against recall) that the default is chosen from.
_MODE_FAMILIES = {
    "mean": (dict(), (0.9, 0.95, 0.98, 0.99, 0.995)),
    "mean,max": (dict(query_reduce="max"), (0.9, 0.95, 0.98, 0.99)),
    "antidiag": (dict(estimator="antidiag", c_q=8, c_k=8), (0.9, 0.95, 0.98, 0.99)),
    "antidiag_lse": (dict(estimator="antidiag_lse", c_q=8, c_k=8), (0.9, 0.95, 0.97, 0.98, 0.99)),
    "antidiag_lse,max": (
        dict(estimator="antidiag_lse", c_q=8, c_k=8, query_reduce="max"),
        (0.9, 0.95, 0.97, 0.98, 0.99),
    ),
    "antidiag_lse16,max": (
        dict(estimator="antidiag_lse", c_q=16, c_k=16, query_reduce="max"),
        (0.95, 0.97, 0.98, 0.99),
    ),
    "outlier,max": (dict(estimator="outlier", c_q=16, c_k=32, query_reduce="max"), (0.98, 0.99, 0.995, 0.998)),
}
SWEEPS["modes"] = [dict(kw, tau=t) for kw, taus in _MODE_FAMILIES.values() for t in taus]
#: A shorter set for 64K-128K (``--device cuda``): the families and the tau
#: values that bracket the targets.
SWEEPS["modes-long"] = [
    dict(tau=0.95),
    dict(tau=0.99),
    dict(tau=0.995),
    dict(estimator="antidiag", c_q=8, c_k=8, tau=0.95),
    dict(estimator="antidiag", c_q=8, c_k=8, tau=0.99),
    dict(estimator="antidiag_lse", c_q=8, c_k=8, tau=0.97),
    dict(estimator="antidiag_lse", c_q=8, c_k=8, tau=0.99),
] + [dict(estimator="antidiag_lse", c_q=8, c_k=8, query_reduce="max", tau=t) for t in (0.95, 0.97, 0.98, 0.99)]
#: The compiled default next to the outlier-aware estimator around the chosen tau.
SWEEPS["presets"] = [dict(tau=0.99)] + [
    dict(estimator="antidiag_lse", c_q=8, c_k=8, query_reduce="max", tau=t) for t in (0.98, 0.985, 0.99, 0.995)
]
#: The candidates of the Pareto plot (ratio to the floor against scoring
#: cost, ``python -m unisparse.fidelity.pareto``): the compiled default, the
#: paper's starting point, XAttention, the outlier-aware antidiagonal preset
#: and the outlier estimator around its chosen tau (docs/Fidelity.md).
SWEEPS["pareto"] = [
    dict(tau=0.99),
    dict(tau=0.95),
    dict(tau=0.9, c_k=16),
    dict(estimator="antidiag", c_q=8, c_k=8, tau=0.95),
    dict(estimator="antidiag_lse", c_q=8, c_k=8, query_reduce="max", tau=0.99),
    dict(estimator="outlier", c_q=16, c_k=16, q_outliers=1, k_outliers=1, query_reduce="max", tau=0.995),
    dict(estimator="outlier", c_q=16, c_k=32, query_reduce="sum", tau=0.995),
    dict(estimator="outlier", c_q=16, c_k=32, k_outliers=3, query_reduce="max", tau=0.995),
] + [dict(estimator="outlier", c_q=16, c_k=32, query_reduce="max", tau=t) for t in (0.99, 0.995, 0.998)]
#: The same without the antidiagonal estimators (their NumPy scoring is the
#: slow one: 16x the default's products), for 64K-128K on the CPU.
SWEEPS["pareto-long"] = [d for d in SWEEPS["pareto"] if d.get("estimator") not in ("antidiag", "antidiag_lse")]
#: Issue 17's Pareto plot as the default stands (docs/Fidelity.md, "The
#: estimators against the default"): the paper's starting point, the `mean`
#: preset, XAttention's antidiagonal and its outlier-aware form, the
#: outlier first pass alone (`recommended`) and the default (the `peaked`
#: preset, two-level) at its tau and on either side of it.
SWEEPS["frontier"] = [
    dict(tau=0.9, c_k=16),
    dict(preset="mean"),
    dict(estimator="antidiag", c_q=8, c_k=8, tau=0.95),
    dict(estimator="antidiag_lse", c_q=8, c_k=8, query_reduce="max", tau=0.99),
    dict(preset="recommended"),
] + [dict(preset="peaked", tau=t) for t in (0.995, 0.9965, 0.998)]
#: The same without the antidiagonal estimators (16x the products), for 128K.
SWEEPS["frontier-long"] = [d for d in SWEEPS["frontier"] if d.get("estimator") not in ("antidiag", "antidiag_lse")]
SWEEPS["wide"] = SWEEPS["default"] + [
    dict(tau=0.8),
    dict(tau=0.95, c_k=4),
    dict(tau=0.999, c_k=8),
    dict(tau=0.99, c_h=2),
    dict(tau=0.99, c_q=32, c_k=8),
    dict(tau=0.9, min_blocks=16),
    dict(tau=0.99, block=64, c_k=8),
]


def parse_config(spec):
    """``"tau=0.95,c_k=8"`` (or a dict of fields) -> mean pooling with those
    fields, ``preset("mean", tau=0.95, c_k=8)``: the harness's fields are
    over mean pooling, the default when the runs of docs/Fidelity.md were
    logged, so that their command lines keep their meaning (the default
    configuration, the peaked one, is ``preset=peaked`` or its fields
    spelled out). ``last_q=M`` without ``refine=`` also sets
    ``refine=slash`` (the two-level estimation refined from the ``M`` last
    queries; the form the logged runs use); ``preset=NAME`` starts from
    another preset of :data:`unisparse.config.PRESETS`."""
    if isinstance(spec, Config):
        return spec
    items = dict(text_items(spec) if isinstance(spec, str) else spec)
    name = items.pop("preset", "mean")
    fields = parse_fields(items)
    if "last_q" in fields and "refine" not in fields:
        fields["refine"] = "slash"
    return preset(name, **fields)


def family(cfg: Config) -> str:
    """The estimator family of ``cfg``: its label without tau (one Pareto curve per family)."""
    base = preset("mean")
    parts = []
    hidden = {"tau", "estimator", "q_outliers", "k_outliers", "refine", "last_q"}
    if cfg.refine != "slash":
        hidden |= {"n_offsets", "rows_per_block", "width"}
    if cfg.estimator == "outlier":
        parts.append(f"outlier(c={cfg.c_q}/{cfg.c_k},r={cfg.q_outliers}/{cfg.k_outliers})")
        hidden |= {"c_q", "c_k"}
    elif cfg.estimator != "mean":
        parts.append(f"{cfg.estimator}(s={cfg.c_q})")
        hidden |= {"c_q", "c_k"}
    for f in dataclasses.fields(Config):
        if f.name in hidden:
            continue
        if getattr(cfg, f.name) != getattr(base, f.name):
            parts.append(f"{f.name}={getattr(cfg, f.name)}")
    if _last_q(cfg):
        parts.append(f"last_q={_last_q(cfg)}")
    return ",".join(parts) or "mean"


def label(cfg: Config) -> str:
    """Short label: tau, then the fields that differ from mean pooling
    (``preset("mean")``)."""
    fam = family(cfg)
    return f"tau={cfg.tau:g}" + ("" if fam == "mean" else "," + fam)


def _last_q(cfg) -> int:
    """The last queries of a two-level configuration, 0 for a plain one."""
    return cfg.last_q if cfg.refine == "slash" else 0


# --------------------------------------------------------------------------- #
# Layouts (NumPy reference, shared compression and scoring)
# --------------------------------------------------------------------------- #


def layouts(q, k, configs, device=None):
    """``{cfg: (counts, indices)}`` from the NumPy reference; the block scores
    (:func:`unisparse.reference.estimate`, or its torch transcription
    :func:`unisparse.estimate_torch.estimate` on ``device`` when given) are
    computed once per (block, c_q, c_k, c_h, causal, scale, estimator,
    query_reduce), and refined by :func:`unisparse.reference.twolevel.refine`
    once more per ``last_q`` of a two-level configuration."""
    if device is None:
        est = ref.estimate
    else:
        from functools import partial

        from ..estimate_torch import estimate as torch_estimate

        est = partial(torch_estimate, device=device)
    scores, out = {}, {}
    for cfg in configs:
        kw = cfg.reference_kwargs()
        skey = (
            cfg.block,
            cfg.c_q,
            cfg.c_k,
            cfg.c_h,
            cfg.causal,
            cfg.scale,
            cfg.estimator,
            cfg.query_reduce,
            cfg.q_outliers,
            cfg.k_outliers,
        )
        if skey not in scores:
            scores[skey] = est(
                q,
                k,
                cfg.block,
                cfg.c_q,
                cfg.c_k,
                cfg.c_h,
                causal=cfg.causal,
                scale=kw["scale"],
                estimator=cfg.estimator,
                query_reduce=cfg.query_reduce,
                q_outliers=cfg.q_outliers,
                k_outliers=cfg.k_outliers,
            )
        s = scores[skey]
        if _last_q(cfg):
            rkey = skey + (
                _last_q(cfg),
                cfg.local_blocks,
                cfg.sink,
                cfg.n_offsets,
                cfg.rows_per_block,
                cfg.width,
                cfg.refine_norm,
            )
            if rkey not in scores:
                scores[rkey] = twolevel.refine_config(s, q, k, cfg, scale=kw["scale"])
            s = scores[rkey]
        out[cfg] = ref.block_select(
            s,
            cfg.tau,
            local_blocks=cfg.local_blocks,
            sink=cfg.sink,
            min_blocks=cfg.min_blocks,
            max_blocks=cfg.max_blocks,
            causal=cfg.causal,
        )
    return out


# --------------------------------------------------------------------------- #
# Metrics against dense attention
# --------------------------------------------------------------------------- #


def sample_rows(N: int, block: int, rows_per_block: int | None, seed: int) -> np.ndarray:
    """All rows, or ``rows_per_block`` rows drawn from every block of ``block``
    tokens (the last block may be partial), sorted."""
    if rows_per_block is None:
        return np.arange(N)
    rng = np.random.default_rng(seed + 7919)
    rows = []
    for i0 in range(0, N, block):
        i1 = min(N, i0 + block)
        rows.append(np.sort(rng.choice(np.arange(i0, i1), size=min(rows_per_block, i1 - i0), replace=False)))
    return np.concatenate(rows)


def _dense_chunks_numpy(q, k, v, rows, fine, scale, causal, chunk_elems):
    """The dense pass in NumPy float64 (see :func:`evaluate`)."""
    _, Hq, N, D = q.shape
    Hkv = k.shape[1]
    NBf = -(-N // fine)
    pad = NBf * fine - N
    step = max(1, chunk_elems // max(1, N))
    for h in range(Hq):
        kh = h // (Hq // Hkv)
        kf = k[0, kh].astype(np.float64)
        vf = v[0, kh].astype(np.float64)
        vblk = (np.concatenate([vf, np.zeros((pad, D))]) if pad else vf).reshape(NBf, fine, D)
        for r0 in range(0, len(rows), step):
            rr = rows[r0 : r0 + step]
            logits = (q[0, h, rr].astype(np.float64) @ kf.T) * scale
            if causal:
                logits[np.arange(N)[None, :] > rr[:, None]] = -np.inf
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            del logits
            if pad:
                p = np.concatenate([p, np.zeros((len(rr), pad))], axis=1)
            pb = p.reshape(len(rr), NBf, fine)
            yield h, r0, pb.sum(axis=2), np.matmul(pb.transpose(1, 0, 2), vblk).transpose(1, 0, 2)


def evaluate(q, k, v, configs, lays, rows, *, scale=None, causal=True, chunk_elems=1 << 24, device=None):
    """Recall and output error of each layout on the query ``rows``.

    Returns ``{cfg: dict(recall=[Hq, R] float64, err2=float, ref2=float)}``
    where ``err2``/``ref2`` are the squared norms of ``O_sparse - O_dense``
    and ``O_dense`` over the rows (summed over heads and batch 0), plus
    ``"block_mass"``: each row's dense softmax mass per key block of the
    finest block size, float32 ``[Hq, R, NBf]``. Only batch 0 is evaluated.
    The dense pass runs in NumPy, or on torch ``device`` (float64,
    :func:`unisparse.estimate_torch.dense_chunks`) when given.
    """
    _, Hq, N, D = q.shape
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    fine = math.gcd(*(c.block for c in configs))
    NBf = -(-N // fine)
    R = len(rows)
    res = {c: dict(recall=np.empty((Hq, R)), err2=0.0, ref2=0.0) for c in configs}
    res["block_mass"] = np.empty((Hq, R, NBf), dtype=np.float32)  # normalised, per fine block
    # layout of each config expanded to fine key blocks: [Hg, NBq, NBf] bool
    fine_masks = {}
    for c in configs:
        counts, indices = lays[c]
        m = ref.layout_mask(counts[:1], indices[:1])[0]  # [Hg, NB, NB]
        fine_masks[c] = np.repeat(m, c.block // fine, axis=-1)[..., :NBf]
    if device is None:
        chunks = _dense_chunks_numpy(q, k, v, rows, fine, scale, causal, chunk_elems)
        xp, as_x = np, (lambda m: m.astype(np.float64))
    else:  # the same arithmetic on torch tensors, so that nothing large leaves the device
        import torch

        from ..estimate_torch import dense_chunks

        chunks = dense_chunks(q, k, v, rows, fine, causal=causal, scale=scale, device=device)
        xp, as_x = torch, (lambda m: torch.as_tensor(m, dtype=torch.float64, device=device))
        fine_masks = {c: torch.as_tensor(m, device=device) for c, m in fine_masks.items()}
    for h, r0, mass, wsum in chunks:
        rr = rows[r0 : r0 + len(mass)]
        l = mass.sum(1)
        res["block_mass"][h, r0 : r0 + len(rr)] = _host(mass / l[:, None])
        o_dense = wsum.sum(1) / l[:, None]
        for c in configs:
            g = h // c.c_h
            sel = as_x(fine_masks[c][g, rr // c.block])  # [r, NBf]
            kept = (mass * sel).sum(1)
            res[c]["recall"][h, r0 : r0 + len(rr)] = _host(kept / l)
            o_sp = xp.matmul(sel[:, None, :], wsum)[:, 0] / xp.where(kept > 0, kept, 1.0)[:, None]
            res[c]["err2"] += float(((o_sp - o_dense) ** 2).sum())
            res[c]["ref2"] += float((o_dense**2).sum())
    return res


def _host(x):
    """A NumPy array from a NumPy array or a torch tensor."""
    return x if isinstance(x, np.ndarray) else x.cpu().numpy()


#: The tau grid of the exact top-p curve (:func:`oracle_curve`).
ORACLE_TAUS = (
    0.5,
    0.6,
    0.7,
    0.8,
    0.85,
    0.9,
    0.92,
    0.94,
    0.95,
    0.96,
    0.97,
    0.975,
    0.98,
    0.985,
    0.99,
    0.993,
    0.995,
    0.997,
    0.998,
    0.999,
    0.9995,
    0.9999,
    1.0,
)


def oracle_curve(block_mass, rows, N, fine, block, taus=ORACLE_TAUS, needles=(), local_blocks=None, by_head=False):
    """Exact top-p on the true block masses, one point per ``tau``.

    For each (head, query block) the evaluated rows' mean dense distribution
    over key blocks is kept, largest first (ties: smaller block first), until
    it reaches ``tau`` (no forced blocks, one layout per head): the floor of
    any estimator on this data. Returns ``(density, recall_mean, recall_p1,
    spans)`` arrays over ``taus`` (recall per evaluated row, as for the
    estimators; ``spans``: needle spans of ``needles`` whose key blocks the
    exact top-p keeps for every head and needle query block, judged on the
    blocks' evaluated rows).

    With ``local_blocks`` (an int), the top-p keeps the estimators' forced
    blocks first (the sink, the diagonal and ``local_blocks`` before it),
    then the largest of the rest: the floor of an estimator that forces them.

    With ``by_head``, returns ``(curve, heads)``: ``heads[h]`` is head
    ``h``'s own ``(density, recall_mean)`` over ``taus`` (what this function
    gives for ``block_mass[h : h + 1]``; the top-p is per head already, so
    the curve's density and mean recall are the heads' means).
    """
    Hq, R, NBf = block_mass.shape
    r = block // fine
    NB = -(-N // block)
    bm = np.pad(block_mass.astype(np.float64), ((0, 0), (0, 0), (0, NB * r - NBf))).reshape(Hq, R, NB, r).sum(-1)
    taus = np.asarray(taus, dtype=np.float64)
    kept = np.zeros((len(taus), Hq))
    rec = np.ones((len(taus), Hq, R))
    span_ok = np.ones((len(taus), len(needles)), dtype=bool)
    by_qblock = {}
    for n_i, nd in enumerate(needles):
        kb = np.arange(nd["k_start"] // block, (nd["k_stop"] - 1) // block + 1)
        for I in range(nd["q_start"] // block, (nd["q_stop"] - 1) // block + 1):
            by_qblock.setdefault(I, []).append((n_i, kb))
    for I in range(NB):
        sel = np.flatnonzero((rows // block) == I)
        if not sel.size:
            continue
        rowm = bm[:, sel, : I + 1]  # [Hq, r, I+1]
        d = rowm.mean(axis=1)
        n_forced = 0
        if local_blocks is None:
            order = np.argsort(-d, axis=-1, kind="stable")
        else:
            J = np.arange(I + 1)
            forced = (J == 0) | (J >= I - local_blocks)
            n_forced = int(forced.sum())
            order = np.argsort(np.where(forced, -np.inf, -d), axis=-1, kind="stable")
        ds = np.take_along_axis(d, order, axis=-1)
        cum = np.cumsum(ds, axis=-1)
        tot = cum[:, -1:]
        crow = np.cumsum(np.take_along_axis(rowm, order[:, None, :], axis=-1), axis=-1)  # [Hq, r, I+1]
        for i, tau in enumerate(taus):
            if tau >= 1.0:
                need = np.full(Hq, I + 1)
            else:
                need = np.minimum((cum < tau * tot * (1 - 1e-9)).sum(-1) + 1, I + 1)
            need = np.maximum(need, n_forced)
            kept[i] += need
            rec[i][:, sel] = np.take_along_axis(crow, (need - 1)[:, None, None], axis=-1)[..., 0]
        if I in by_qblock:
            rank = np.argsort(order, axis=-1)  # [Hq, I+1]: position of each key block
            for n_i, kb in by_qblock[I]:
                worst = rank[:, kb].max(axis=-1)  # [Hq]
                for i, tau in enumerate(taus):
                    need = (
                        (I + 1)
                        if tau >= 1.0
                        else np.maximum(np.minimum((cum < tau * tot * (1 - 1e-9)).sum(-1) + 1, I + 1), n_forced)
                    )
                    span_ok[i, n_i] &= bool(np.all(worst < need))
    grid = NB * (NB + 1) / 2
    flat = rec.reshape(len(taus), -1)
    curve = (kept.sum(-1) / (Hq * grid), flat.mean(-1), np.percentile(flat, 1, axis=-1), span_ok.sum(-1))
    if not by_head:
        return curve
    return curve, [(kept[:, h] / grid, rec[:, h].mean(-1)) for h in range(Hq)]


def needle_rows(needles) -> np.ndarray:
    """Every query row of every needle span, ascending, once each."""
    if not needles:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate([np.arange(nd["q_start"], nd["q_stop"]) for nd in needles]))


def row_oracle_spans(mass, rows, needles, fine, block, taus, *, sink=True, local_blocks=None):
    """Needle spans kept by the exact top-p of each query *row*: the finest
    selection a top-p can make, one layout row per token instead of per
    query block.

    ``mass [Hq, R, NBf]`` is the true causal softmax mass of each of ``rows``
    (every row of every needle's query span, :func:`needle_rows`) per key
    block of ``fine`` tokens, normalised per row. Each (head, row) keeps its
    forced blocks (with ``local_blocks`` an int: the sink block where
    ``sink``, the diagonal and ``local_blocks`` before it), then its largest
    other visible key blocks of ``block`` tokens (ties: the smaller block)
    until their mass reaches ``tau`` (as :func:`oracle_curve`). A span counts
    where every (head, row) of its query span keeps every key block of its
    key span, the rule of :func:`unisparse.synthetic.needle_hits`. Returns
    a bool array ``[len(taus), len(needles)]``: which spans it keeps.

    A span this rule drops at ``tau`` is one whose key blocks some row of
    some head does not need to keep ``tau`` of its own mass: a block-level
    estimator that keeps it keeps a block the attention does not use there.
    """
    taus = np.asarray(taus, dtype=np.float64)
    if not needles:
        return np.zeros((len(taus), 0), dtype=bool)
    Hq, R, NBf = mass.shape
    r = block // fine
    NB = -(-NBf // r)
    bm = np.pad(np.asarray(mass, np.float64), ((0, 0), (0, 0), (0, NB * r - NBf))).reshape(Hq, R, NB, r).sum(-1)
    where = {int(i): n for n, i in enumerate(rows)}
    ok = np.ones((len(taus), len(needles)), dtype=bool)
    for n_i, nd in enumerate(needles):
        kb = np.arange(nd["k_start"] // block, (nd["k_stop"] - 1) // block + 1)
        for i in range(nd["q_start"], nd["q_stop"]):
            I = i // block
            x = bm[:, where[i], : I + 1]  # [Hq, I+1]
            J = np.arange(I + 1)
            forced = np.zeros(I + 1, dtype=bool)
            if local_blocks is not None:
                forced = (J >= I - local_blocks) | ((J == 0) & sink)
            n_forced = int(forced.sum())
            order = np.argsort(np.where(forced, -np.inf, -x), axis=-1, kind="stable")
            cum = np.cumsum(np.take_along_axis(x, order, axis=-1), axis=-1)
            worst = np.argsort(order, axis=-1)[:, kb].max(axis=-1)  # [Hq]: the needle's last block in the order
            for t_i, tau in enumerate(taus):
                if tau >= 1.0:
                    continue
                need = np.minimum((cum < tau * cum[:, -1:] * (1 - 1e-9)).sum(-1) + 1, I + 1)
                ok[t_i, n_i] &= bool(np.all(worst < np.maximum(need, n_forced)))
    return ok


def floor_at(curve, recall):
    """Density of the exact top-p (:func:`oracle_curve`) at the same mean
    recall, by linear interpolation along the curve; where several points
    reach the same recall (e.g. 1.0), the sparsest of them."""
    dens, rmean = np.asarray(curve[0]), np.asarray(curve[1])
    order = np.lexsort((dens, rmean))
    r, d = rmean[order], dens[order]
    first = np.r_[True, np.diff(r) > 0]
    return float(np.interp(recall, r[first], d[first]))


def run(
    N,
    configs,
    *,
    heads=4,
    kv_heads=2,
    dim=128,
    peak=1.5,
    needles=16,
    seed=0,
    full_rows=8192,
    rows_per_block=8,
    check_compiled=False,
    log=print,
    device=None,
    generator="structured",
):
    """Generates the data for ``N`` (``generator``: a key of
    :data:`GENERATORS`) and returns one row dict per config."""
    if generator not in GENERATORS:
        raise ValueError(f"generator must be one of {sorted(GENERATORS)}, got {generator!r}")
    t0 = time.perf_counter()
    q, k, v, nd = GENERATORS[generator](1, heads, kv_heads, N, dim, seed, peak, needles)
    t1 = time.perf_counter()
    lays = layouts(q, k, configs, device=device)
    t2 = time.perf_counter()
    if check_compiled:
        _check_compiled(q, k, lays, log)
    block = min(c.block for c in configs)
    sampled = N > full_rows
    rows = sample_rows(N, block, rows_per_block if sampled else None, seed)
    res = evaluate(q, k, v, configs, lays, rows, device=device)
    t3 = time.perf_counter()
    log(
        f"  N={N}: data {t1 - t0:.1f} s, layouts {t2 - t1:.1f} s, dense pass over "
        f"{len(rows)} rows x {heads} heads {t3 - t2:.1f} s"
    )
    fine = math.gcd(*(c.block for c in configs))
    # Every needle row's own block masses, for the per-row top-p's spans.
    nrows = needle_rows(nd)
    nmass = np.zeros((heads, len(nrows), -(-N // fine)))
    if len(nrows):
        scale = 1.0 / math.sqrt(dim)
        if device is None:
            chunks = _dense_chunks_numpy(q, k, v, nrows, fine, scale, True, 1 << 24)
        else:
            from ..estimate_torch import dense_chunks

            chunks = dense_chunks(q, k, v, nrows, fine, causal=True, scale=scale, device=device)
        for h, r0, mass, _ in chunks:
            mass = _host(mass)
            nmass[h, r0 : r0 + len(mass)] = mass / mass.sum(1, keepdims=True)
    row_spans = {}
    # The exact top-p's curve per block size, and each head's own (per_head).
    curves, head_curves = {}, {}
    for b in sorted({c.block for c in configs}):
        curves[b], head_curves[b] = oracle_curve(res["block_mass"], rows, N, fine, b, needles=nd, by_head=True)
    # The same with the estimators' forced blocks (sink, diagonal, local).
    forced_curves = {(c.block, c.local_blocks): None for c in configs if c.sink}
    for b, lb in forced_curves:
        forced_curves[(b, lb)] = oracle_curve(res["block_mass"], rows, N, fine, b, local_blocks=lb)
    out = []
    for c in configs:
        counts, indices = lays[c]
        rec = res[c]["recall"]
        nbq = -(-N // c.block)
        # per (head, query block) mean recall over the evaluated rows
        qb = rows // c.block
        blk = np.stack([np.bincount(qb, weights=rec[h], minlength=nbq) for h in range(heads)])
        blk = blk / np.maximum(np.bincount(qb, minlength=nbq), 1)
        hit_rate, kept = needle_span_hits(nd, counts, indices, c.block, heads)
        cost = scoring_cost(c, N, dim)
        rkey = (c.block, c.tau, c.sink, c.local_blocks)
        if rkey not in row_spans:
            row_spans[rkey] = row_oracle_spans(
                nmass, nrows, nd, fine, c.block, [c.tau], sink=c.sink, local_blocks=c.local_blocks
            )[0]
        # The spans the per-row top-p keeps (the attention needs them at tau)
        # and this layout drops.
        lost = int((row_spans[rkey] & ~kept).sum())
        out.append(
            dict(
                N=N,
                config=label(c),
                family=family(c),
                cfg=c,
                tau=c.tau,
                peak=peak,
                seed=seed,
                generator=generator,
                cost=cost["rel_default"],
                cost_dense=cost["rel_dense"],
                exps=cost["exps_rel_default"],
                density=ref.density(counts, N, c.block, c.causal),
                floor=floor_at(curves[c.block], float(rec.mean())),
                recall_mean=float(rec.mean()),
                recall_p1=float(np.percentile(rec, 1)),
                block_p1=float(np.percentile(blk, 1)),
                recall_min=float(rec.min()),
                needles=hit_rate,
                spans=f"{int(kept.sum())}/{len(nd)}",
                spans_row=f"{int(row_spans[rkey].sum())}/{len(nd)}",
                spans_lost=lost,
                rel_l2=math.sqrt(res[c]["err2"] / res[c]["ref2"]) if res[c]["ref2"] else 0.0,
                rows="sampled" if sampled else "all",
                n_rows=len(rows),
                heads=per_head(c, counts, rec, head_curves[c.block], N),
            )
        )
        out[-1]["ratio"] = out[-1]["density"] / max(out[-1]["floor"], 1e-12)
        fc = forced_curves.get((c.block, c.local_blocks))
        out[-1]["ratio_f"] = (
            out[-1]["density"] / max(floor_at(fc, out[-1]["recall_mean"]), 1e-12) if fc is not None else float("nan")
        )
    for b, (dens, rmean, rp1, sp) in curves.items():
        log(
            f"  N={N} exact top-p (block {b}), density/mean/p1/spans at tau 0.9 .. 0.995: "
            + ", ".join(
                f"{d:.3f}/{m:.4f}/{p:.3f}/{k}"
                for t, d, m, p, k in zip(ORACLE_TAUS, dens, rmean, rp1, sp)
                if t in (0.9, 0.95, 0.97, 0.98, 0.99, 0.995)
            )
        )
    if out:
        out[0]["curves"] = curves
    return out


def per_head(cfg, counts, recall, curves, N):
    """One dict per query head of batch 0: the density of its head group's
    layout, its own floor (the exact top-p on that head's true block masses,
    ``curves[h]`` of :func:`oracle_curve`'s ``by_head``, at the head's mean
    recall), their ratio, and the mean and 1st-percentile recall of its
    evaluated rows (``recall [Hq, R]``): where a run's excess or lost tail
    sits. The run's density and mean recall are the means of the heads';
    its floor is not the mean of theirs (it is read off the heads' mean
    curve at the run's mean recall, theirs each at its own)."""
    out = []
    for h, curve in enumerate(curves):
        g = h // cfg.c_h
        dens = ref.density(counts[:1, g : g + 1], N, cfg.block, cfg.causal)
        mean = float(recall[h].mean())
        fl = floor_at(curve, mean)
        out.append(
            dict(
                density=dens,
                floor=fl,
                ratio=dens / max(fl, 1e-12),
                recall_mean=mean,
                recall_p1=float(np.percentile(recall[h], 1)),
            )
        )
    return out


def _check_compiled(q, k, lays, log):
    """Compares the reference layouts with the compiled CPU path (f32)."""
    from ..api import compile as compile_

    for c, (counts, indices) in lays.items():
        kern = compile_(c, heads=q.shape[1], kv_heads=k.shape[1], head_dim=q.shape[3], dtype="f32")
        _, cc, ci = kern.layout(np.ascontiguousarray(q, np.float32), np.ascontiguousarray(k, np.float32))
        same = float((np.all(ci == indices, axis=-1) & (cc == counts)).mean())
        log(f"  compiled layout vs reference ({label(c)}): {same * 100:.2f}% of rows identical")


# --------------------------------------------------------------------------- #

"""A second peaked generator, written independently of :mod:`unisparse.synthetic`.

The estimators are chosen on :func:`unisparse.synthetic.structured_qkv`; to
check that the choice does not fit that generator's structure alone, the
fidelity harness also runs on this one (``--generator peaked``), whose
components differ on purpose:

* **heads of different sharpness**: every query head has its own inverse
  temperature, uniform in ``[0.8, 1.8] * peak``, so one sequence has
  diffuse and very peaked heads side by side;
* **a sink in about two heads of three** only (token 0);
* **one-token vertical lines**, 6 per kv head at random positions, half
  of them *late*: only queries after a random position attend to them;
* **topic clusters**: 5% of the keys carry one of 8 topics, and the
  queries carry a topic that changes every 2048 tokens (content-based
  attention spread over the whole sequence);
* **two slash lines** per kv head (offsets 128-512 and 1K-8K) and a
  **local window** of per-head width 16-256 tokens, both from positional
  phases;
* **short needles straddling composites**: key spans of 2-6 tokens placed
  across a 16-token (half the time a 128-token) boundary, query spans of
  8-24 rows, half of them across a 16-row boundary too;
* Laplace (heavy-tailed) key noise and Gaussian query noise.

Components live in orthonormal directions of a random frame per kv head
(random unit vectors past ``D`` of them), in logit units: a component of
strength ``a`` on both sides adds ``a²`` to ``q . k / sqrt(D)`` before the
head's sharpness multiplies it. ``needle_info`` has the format of
:func:`unisparse.synthetic.structured_qkv` (so
:func:`unisparse.synthetic.needle_hits` applies). Everything is a
deterministic function of ``seed``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["peaked_qkv"]


def peaked_qkv(
    B: int,
    Hq: int,
    Hkv: int,
    N: int,
    D: int,
    seed: int,
    dtype=np.float32,
    peak: float = 1.0,
    needles: int = 16,
    planted: dict | None = None,
):
    """``q [B, Hq, N, D]``, ``k, v [B, Hkv, N, D]`` and, when ``needles > 0``,
    the needle list (see the module docstring); ``peak`` scales every
    head's sharpness.

    ``planted``: if a dict, it is filled with the planted components (the
    outputs do not change), per ``(b, kh)``: ``planted["vertical"]`` the
    ``(start, stop)`` key ranges of the one-token lines,
    ``planted["slash"]`` the two offsets, ``planted["topic"]`` the pair
    ``(key_topic [N], query_topic [N])`` (-1: a key without a topic; a query
    attends the keys of its own topic), ``planted["local"]`` the window
    width in tokens, ``planted["sink"]`` which of the kv head's query heads
    have the sink, ``planted["sharpness"]`` each query head's inverse
    temperature (:mod:`unisparse.fidelity.diagnose` attributes missed mass
    to them)."""
    for name, val in (("B", B), ("Hq", Hq), ("Hkv", Hkv), ("N", N), ("D", D)):
        if int(val) < 1:
            raise ValueError(f"{name} must be >= 1, got {val}")
    if Hq % Hkv:
        raise ValueError(f"Hq = {Hq} must be a multiple of Hkv = {Hkv}")
    if needles < 0:
        raise ValueError(f"needles must be >= 0, got {needles}")
    if needles and N < 512:
        raise ValueError(f"N = {N} is too short for needles (needs N >= 512)")
    if planted is not None:
        for key in ("vertical", "slash", "topic", "local", "sink", "sharpness"):
            planted[key] = {}
    rng = np.random.default_rng(seed + 1_000_003)
    G = Hq // Hkv
    sq = math.sqrt(math.sqrt(D))
    q = np.zeros((B, Hq, N, D))
    k = np.zeros((B, Hkv, N, D))
    v = rng.standard_normal((B, Hkv, N, D))
    info = []
    pos = np.arange(N)
    for b in range(B):
        nds = []
        for _ in range(needles):
            lk = int(rng.integers(2, 7))
            lq = int(rng.integers(8, 25))
            # straddle a composite (and often a block) boundary on the key side
            bnd = int(rng.integers(N // 16, N // 2)) // 16 * 16
            if rng.random() < 0.5:
                bnd = bnd // 128 * 128
            ks = max(1, bnd - int(rng.integers(1, lk)))
            qs = int(rng.integers(max(ks + lk + 64, N // 2), N - lq))
            if rng.random() < 0.5:  # query span across a composite boundary too
                qb = qs // 16 * 16 + 16
                qs = min(N - lq, max(ks + lk + 64, qb - int(rng.integers(1, min(lq, 16)))))
            nds.append(dict(batch=b, q_start=qs, q_stop=qs + lq, k_start=ks, k_stop=ks + lk))
        info += nds
        for kh in range(Hkv):
            n_dirs = 1 + 6 + 8 + 2 * 32 + 32 + needles
            U, _ = np.linalg.qr(rng.standard_normal((D, min(D, n_dirs))))
            if U.shape[1] < n_dirs:
                U = np.concatenate([U, rng.standard_normal((D, n_dirs - U.shape[1])) / math.sqrt(D)], 1)
            col = 0
            kk = np.zeros((N, D))
            qq = np.zeros((G, N, D))
            sharp = rng.uniform(0.8, 1.8, size=G) * peak
            # sink
            u = U[:, col]
            col += 1
            kk[0] += 3.0 * sq * u
            has_sink = rng.random(G) < 0.67
            qq[has_sink] += (3.0 * sq * u)[None, None, :]
            lines = []
            # vertical one-token lines, some late
            for _ in range(6):
                u = U[:, col]
                col += 1
                p0 = int(rng.integers(1, N))
                st = rng.uniform(2.0, 3.0)
                kk[p0] += st * sq * u
                start = p0 if rng.random() < 0.5 else int(rng.integers(p0, N))
                qq[:, start:] += st * sq * u * rng.uniform(0.7, 1.3, size=(G, 1, 1))
                lines.append((p0, p0 + 1))
            # topics
            T = 8
            topics = U[:, col : col + T]
            col += T
            ktop = np.where(rng.random(N) < 0.05, rng.integers(0, T, N), -1)
            kk[ktop >= 0] += 1.3 * sq * topics[:, ktop[ktop >= 0]].T
            seg = rng.integers(0, T, size=N // 2048 + 1)
            qq += (1.3 * sq * topics[:, seg[pos // 2048]].T)[None]
            offsets = []
            # slash lines
            for lo, hi in ((128, 512), (1024, 8192)):
                F = 16
                Us = U[:, col : col + F]
                col += F
                Us2 = U[:, col : col + F]
                col += F
                lo = min(lo, max(1, N // 4))  # short sequences: offsets within N / 2
                off = int(rng.integers(lo, max(lo, min(hi, N // 2)) + 1))
                offsets.append(off)
                om = rng.uniform(0.3, math.pi, F)
                c = math.sqrt(3.0 * math.sqrt(D) / F)
                fk = np.cos(pos[:, None] * om) @ Us.T + np.sin(pos[:, None] * om) @ Us2.T
                fq = np.cos((pos - off)[:, None] * om) @ Us.T + np.sin((pos - off)[:, None] * om) @ Us2.T
                kk += c * fk
                qq += c * fq[None] * rng.uniform(0.5, 1.5, size=(G, 1, 1))
            # local window: many low-frequency phases ~ decay over width w
            w = float(rng.uniform(16, 256))
            F = 16
            Ul = U[:, col : col + 2 * F]
            col += 2 * F
            om = np.abs(rng.standard_normal(F)) / w
            c = math.sqrt(3.0 * math.sqrt(D) / F)
            fl = np.concatenate([np.cos(pos[:, None] * om), np.sin(pos[:, None] * om)], 1) @ Ul.T
            kk += c * fl
            qq += c * fl[None]
            if planted is not None:
                planted["vertical"][(b, kh)] = lines
                planted["slash"][(b, kh)] = offsets
                planted["topic"][(b, kh)] = (ktop, seg[pos // 2048])
                planted["local"][(b, kh)] = w
                planted["sink"][(b, kh)] = has_sink
                planted["sharpness"][(b, kh)] = sharp
            # needles
            for nd in nds:
                u = U[:, col]
                col += 1
                kk[nd["k_start"] : nd["k_stop"]] += 3.2 * sq * u
                qq[:, nd["q_start"] : nd["q_stop"]] += 3.2 * sq * u * rng.uniform(0.8, 1.2, size=(G, 1, 1))
            # Laplace key noise, Gaussian query noise
            kk += rng.laplace(scale=0.12, size=(N, D))
            qq += 0.4 * rng.standard_normal((G, N, D))
            k[b, kh] = kk
            q[b, kh * G : (kh + 1) * G] = qq * sharp[:, None, None]
    out = (q.astype(dtype), k.astype(dtype), v.astype(dtype))
    return out + (info,) if needles else out

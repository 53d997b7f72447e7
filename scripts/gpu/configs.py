"""The configurations compiled ahead of time for the GPU checks and benchmarks.

Shared by prepare.sh (which compiles them here, where LLVM is) and by
check.py / bench/bench_gpu.py (which load them on the GPU machine).

Every configuration says its estimator: the entries written when mean pooling
was the default (before 2026-12-04) are wrapped in :func:`mean`, which adds
``estimator=mean``, ``query_reduce=sum``, ``refine=none`` where they leave
them out (and they give ``c_k=8``, ``tau=0.99``), so that the recorded names keep their meaning
(``default_*``, ``est_default``: mean pooling); the entries of the default
configuration today (the peaked one, ``Config()``) are ``peaked_*`` and
``est_peaked_default`` (test_configs checks that ``DEFAULT`` is
``Config()``).
"""


def mean(text: str) -> str:
    """``text`` with mean pooling's fields (``estimator=mean``,
    ``query_reduce=sum``, ``refine=none``) appended where it does not give
    them: the entries written when mean pooling was the default."""
    given = {part.partition("=")[0] for part in text.split(",")}
    extra = [
        f"{k}={v}" for k, v in (("estimator", "mean"), ("query_reduce", "sum"), ("refine", "none")) if k not in given
    ]
    return ",".join([text, *extra])


#: The default configuration (``Config()``: the ``peaked`` preset), spelled
#: out, and its first pass (the same without the refinement).
DEFAULT = (
    "block=128,c_q=16,c_k=32,tau=0.9965,estimator=outlier,query_reduce=max,q_outliers=1,k_outliers=2,"
    "refine=slash,last_q=16,n_offsets=16,rows_per_block=8,width=1,refine_norm=true"
)
DEFAULT_FIRST = DEFAULT.partition(",refine=")[0] + ",refine=none"

# The first passes of the slash refinement's checks.
SLASH_ANTIDIAG = "block=128,c_q=8,c_k=8,tau=0.95,estimator=antidiag_lse,query_reduce=max"
SLASH_MEAN = "block=64,c_q=16,c_k=16,c_h=2,tau=0.9,local_blocks=2,estimator=mean,query_reduce=sum"
SLASH_DEFAULT = "block=128,c_q=16,c_k=8,tau=0.99,estimator=mean,query_reduce=sum"
SLASH_OUTLIER = "block=128,c_q=16,c_k=32,tau=0.995,estimator=outlier,query_reduce=max"

# name -> (config text for unisparse-compile, Hq, Hkv, D, dtype, targets)
CHECK = {
    "gqa_bf16_d128": (mean("block=128,c_q=16,c_k=16,tau=0.9"), 8, 2, 128, "bf16", ("cuda", "cpu")),
    "dense_bf16_d128": (mean("block=128,c_q=16,c_k=16,tau=1.0"), 8, 2, 128, "bf16", ("cuda",)),
    "noncausal_f16_d64": (mean("block=64,c_q=16,c_k=16,tau=0.8,causal=false"), 8, 2, 64, "f16", ("cuda", "cpu")),
    "ch2_bf16_d128": (mean("block=128,c_q=16,c_k=16,c_h=2,tau=0.9"), 8, 2, 128, "bf16", ("cuda", "cpu")),
    "dense_f16_d64_noncausal": (mean("block=64,c_q=16,c_k=16,tau=1.0,causal=false"), 8, 8, 64, "f16", ("cuda",)),
    # NaN/Inf inputs with min_blocks past the forced blocks: the row keeps
    # every visible block, so the NaN reaches the output as in dense attention.
    "nan_minblocks_bf16_d64": (
        mean("block=64,c_q=16,c_k=16,tau=0.8,min_blocks=4,max_blocks=4"),
        4,
        2,
        64,
        "bf16",
        ("cuda", "cpu"),
    ),
    # A million tokens: T = N / 16 = 65536 composites, one past blockIdx.z's
    # limit, where the estimation kernels used to put T.
    "long_bf16_d64": (mean("block=128,c_q=16,c_k=16,tau=0.9"), 1, 1, 64, "bf16", ("cuda",)),
    # The tensor-core scoring kernel's shapes: the default config (key blocks
    # of 16 composites), a max over query composites, and key blocks of 2
    # composites (block 64, c_k 32) with f16 inputs, non-causal.
    "default_bf16_d128": (mean("block=128,c_q=16,c_k=8,tau=0.99"), 8, 2, 128, "bf16", ("cuda", "cpu")),
    "qmax_bf16_d128": (mean("block=128,c_q=16,c_k=16,tau=0.9,query_reduce=max"), 8, 2, 128, "bf16", ("cuda", "cpu")),
    "rk2_f16_d64": (mean("block=64,c_q=16,c_k=32,tau=0.8,causal=false"), 4, 4, 64, "f16", ("cuda", "cpu")),
    # The same three through the fused epilogue (CHECK_FLAGS; the default is
    # the separate epilogue kernel).
    "default_fused_bf16_d128": (mean("block=128,c_q=16,c_k=8,tau=0.99"), 8, 2, 128, "bf16", ("cuda", "cpu")),
    "qmax_fused_bf16_d128": (
        mean("block=128,c_q=16,c_k=16,tau=0.9,query_reduce=max"),
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "rk2_fused_f16_d64": (mean("block=64,c_q=16,c_k=32,tau=0.8,causal=false"), 4, 4, 64, "f16", ("cuda", "cpu")),
    # The separate epilogue in many chunks (CHECK_FLAGS: 3 CTAs, a 1-byte
    # budget, so a chunk is one wave of 3 units): causal pairs of query tiles
    # (an odd count at N = 5000, whose middle tile is a unit alone) and
    # non-causal single tiles, a shorter last chunk.
    "default_chunk_bf16_d128": (mean("block=128,c_q=16,c_k=8,tau=0.99"), 8, 2, 128, "bf16", ("cuda", "cpu")),
    # The scoring kernel's partial sums in f32 (score-partials=f32; f16 is
    # the default), fused and separate epilogues.
    "default_f32p_bf16_d128": (mean("block=128,c_q=16,c_k=8,tau=0.99"), 8, 2, 128, "bf16", ("cuda", "cpu")),
    "default_f32p_fused_bf16_d128": (mean("block=128,c_q=16,c_k=8,tau=0.99"), 8, 2, 128, "bf16", ("cuda", "cpu")),
    "rk2_chunk_f16_d64": (mean("block=64,c_q=16,c_k=32,tau=0.8,causal=false"), 4, 4, 64, "f16", ("cuda", "cpu")),
    # The antidiagonal estimators on the tensor-core kernel (K = s * D):
    # antidiag_lse + max at c 8 and tau 0.99 (the preset the issue names
    # "recommended"), antidiag at c 8; antidiag at stride 16 with c_h = 2,
    # f16, not causal (block 64: 4 composites a block); antidiag_lse (sum)
    # at c_h = 4, stride 4, block 64, keys not shared by head groups.
    "antidiag_lse_max_bf16_d128": (
        "block=128,c_q=8,c_k=8,tau=0.99,estimator=antidiag_lse,query_reduce=max,refine=none",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "antidiag_bf16_d128": (
        "block=128,c_q=8,c_k=8,tau=0.95,estimator=antidiag,query_reduce=sum,refine=none",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "antidiag_ch2_f16_d64": (
        "block=64,c_q=16,c_k=16,c_h=2,tau=0.9,causal=false,estimator=antidiag,query_reduce=sum,refine=none",
        8,
        2,
        64,
        "f16",
        ("cuda", "cpu"),
    ),
    "antidiag_lse_ch4_bf16_d64": (
        "block=64,c_q=4,c_k=4,c_h=4,tau=0.9,estimator=antidiag_lse,query_reduce=sum,refine=none",
        8,
        2,
        64,
        "bf16",
        ("cuda", "cpu"),
    ),
    # A million tokens through the antidiagonal kernel (T = N / 8 = 131072).
    "long_antidiag_lse_bf16_d64": (
        "block=128,c_q=8,c_k=8,tau=0.9,estimator=antidiag_lse,query_reduce=max,refine=none",
        1,
        1,
        64,
        "bf16",
        ("cuda",),
    ),
    # The outlier estimator (its composites by the outlier compress kernels,
    # OutlierCompressKernel.cpp, in bf16; its scoring kernel
    # OutlierScoreKernel.cpp) as the
    # `recommended` preset, and with head groups of 2, f16, d 64, not causal
    # (one key outlier); and the preset at 32 / 8 heads (checked at 32K).
    "outlier_bf16_d128": (
        "block=128,c_q=16,c_k=32,tau=0.995,estimator=outlier,query_reduce=max,q_outliers=1,k_outliers=2,refine=none",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "outlier_h32_bf16_d128": (
        "block=128,c_q=16,c_k=32,tau=0.995,estimator=outlier,query_reduce=max,q_outliers=1,k_outliers=2,refine=none",
        32,
        8,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    # The preset with the scoring kernel's partial sums in f32
    # (score-partials=f32; f16 is the default).
    "outlier_f32p_bf16_d128": (
        "block=128,c_q=16,c_k=32,tau=0.995,estimator=outlier,query_reduce=max,q_outliers=1,k_outliers=2,refine=none",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    # The preset with every exponential of the scoring kernel's pass 2 on the
    # FMA pipe on unmasked key tiles (score-outlier-exp2-poly=8: the
    # polynomial's whole error) and the scores with per-key-tile factors
    # (score-outlier-tile-factors).
    "outlier_poly_bf16_d128": (
        "block=128,c_q=16,c_k=32,tau=0.995,estimator=outlier,query_reduce=max,q_outliers=1,k_outliers=2,refine=none",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "outlier_ch2_f16_d64": (
        "block=64,c_q=16,c_k=16,c_h=2,tau=0.9,causal=false,estimator=outlier,q_outliers=1,k_outliers=1,query_reduce=sum,refine=none",
        8,
        2,
        64,
        "f16",
        ("cuda", "cpu"),
    ),
    # The outlier scoring kernel's other key-block shapes (block / c_k = 8
    # and 2; the presets have 4): lanes of a quad holding 1 and 4 key blocks.
    "outlier_ck8_f16_d64": (
        "block=64,c_q=16,c_k=8,tau=0.99,estimator=outlier,query_reduce=max,q_outliers=1,k_outliers=2,refine=none",
        8,
        2,
        64,
        "f16",
        ("cuda", "cpu"),
    ),
    "outlier_ck2_bf16_d128": (
        "block=64,c_q=16,c_k=32,tau=0.99,estimator=outlier,query_reduce=max,q_outliers=1,k_outliers=2,refine=none",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    # The slash refinement (unisparse.slash_refine, the refinement kernels)
    # with the antidiagonal first pass of its measured configuration, on
    # the tensor cores in bf16 and (CHECK_FLAGS) in f32; and with mean
    # pooling, head groups of 2, 2 local blocks, width 2, f16. Each with a
    # `_first` twin: the same configuration and flags without the
    # refinement, whose scores the check refines in float64.
    "slash_bf16_d128": (
        SLASH_ANTIDIAG + ",refine=slash,last_q=16,refine_norm=false",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "slash_bf16_d128_first": (SLASH_ANTIDIAG + ",refine=none", 8, 2, 128, "bf16", ("cuda", "cpu")),
    "slash_f32_d128": (
        SLASH_ANTIDIAG + ",refine=slash,last_q=16,refine_norm=false",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "slash_f32_d128_first": (SLASH_ANTIDIAG + ",refine=none", 8, 2, 128, "bf16", ("cuda", "cpu")),
    "slash_ch2_f16_d64": (
        SLASH_MEAN + ",refine=slash,last_q=16,n_offsets=6,width=2,refine_norm=false",
        8,
        2,
        64,
        "f16",
        ("cuda", "cpu"),
    ),
    "slash_ch2_f16_d64_first": (SLASH_MEAN + ",refine=none", 8, 2, 64, "f16", ("cuda", "cpu")),
    # The same as slash_bf16_d128 through the loop path (--refine-kernels=
    # false): the two GPU lowerings checked in one run.
    "slash_loops_bf16_d128": (
        SLASH_ANTIDIAG + ",refine=slash,last_q=16,refine_norm=false",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "slash_loops_bf16_d128_first": (SLASH_ANTIDIAG + ",refine=none", 8, 2, 128, "bf16", ("cuda", "cpu")),
    # The default first pass refined at 32 / 8 heads, 32K and 100000 tokens
    # (batch 1; the GPU against float64, no CPU path), where the loop path's
    # thread per query block and host loop of launches were slow.
    # The `peaked` preset: the outlier first pass (its compress and scoring
    # kernels) refined.
    "slash_peaked_bf16_d128": (
        SLASH_OUTLIER + ",refine=slash,last_q=16,refine_norm=false",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "slash_peaked_bf16_d128_first": (SLASH_OUTLIER + ",refine=none", 8, 2, 128, "bf16", ("cuda", "cpu")),
    "slash_h32_bf16_d128": (SLASH_DEFAULT + ",refine=slash,last_q=16,refine_norm=false", 32, 8, 128, "bf16", ("cuda",)),
    "slash_h32_bf16_d128_first": (SLASH_DEFAULT + ",refine=none", 32, 8, 128, "bf16", ("cuda",)),
    # The `peaked` preset's refinement normalised (refine_norm: R / (1 +
    # sum_J R), the probe kernel's combination); the same first pass.
    "slash_norm_bf16_d128": (
        SLASH_OUTLIER + ",refine=slash,last_q=16,refine_norm=true",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "slash_norm_bf16_d128_first": (SLASH_OUTLIER + ",refine=none", 8, 2, 128, "bf16", ("cuda", "cpu")),
    # The refinement's probe kernel with a partial tile of probe rows (12:
    # one of 8 and one of 4) and an odd number of offsets (7: the last unit
    # of two offsets half empty), normalised, on the outlier first pass.
    "slash_odd_bf16_d128": (
        SLASH_OUTLIER + ",refine=slash,last_q=16,n_offsets=7,rows_per_block=12,refine_norm=true",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "slash_odd_bf16_d128_first": (SLASH_OUTLIER + ",refine=none", 8, 2, 128, "bf16", ("cuda", "cpu")),
    # The widest candidates the probe kernel takes (width 8: 17 keys an
    # offset, a unit's 34 slot rules two ballot words, entries computed per
    # unit) with an odd number of offsets, normalised.
    "slash_w8_bf16_d128": (
        SLASH_OUTLIER + ",refine=slash,last_q=16,n_offsets=5,width=8,refine_norm=true",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "slash_w8_bf16_d128_first": (SLASH_OUTLIER + ",refine=none", 8, 2, 128, "bf16", ("cuda", "cpu")),
    # The probe kernel applying each slot's rule itself (slotRule): more
    # candidate slots (40 offsets of 17 keys: 680) than the evidence row
    # holds (N + last_q: 616 and 666 at the check's 600 and 650 tokens), so
    # topOffsets writes no rule table; its unit's rules still two ballot
    # words. Not normalised: at 40 offsets of 600 tokens the normalisation
    # moves the scores too little on some inputs for its control (10x the
    # bound; 8x seen), and slash_odd / slash_w8 check it.
    "slash_rule_bf16_d128": (
        SLASH_OUTLIER + ",refine=slash,last_q=16,n_offsets=40,width=8,refine_norm=false",
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "slash_rule_bf16_d128_first": (SLASH_OUTLIER + ",refine=none", 8, 2, 128, "bf16", ("cuda", "cpu")),
    # The narrow probe kernel (one warp a CTA): more key blocks than a
    # 4-warp CTA's E rows fit in workgroup memory (NB > 14,528, or 12,896
    # where the forced keys are staged beside them; 16,386
    # blocks of 64 at the check's 2^20 + 100 tokens). One head, 4 offsets
    # (clear of near ties at that length, where 16 are not); the GPU
    # against float64 only.
    "slash_narrow_bf16_d64": (
        SLASH_OUTLIER.replace("block=128", "block=64") + ",refine=slash,last_q=16,n_offsets=4,refine_norm=true",
        1,
        1,
        64,
        "bf16",
        ("cuda",),
    ),
    "slash_narrow_bf16_d64_first": (
        SLASH_OUTLIER.replace("block=128", "block=64") + ",refine=none",
        1,
        1,
        64,
        "bf16",
        ("cuda",),
    ),
    # The default configuration (the peaked one; DEFAULT): the refinement
    # checked as the slash_* entries are, at 8 / 2 heads (the CPU path too)
    # and at 32 / 8 heads and long lengths (the GPU against float64); and
    # non-causal, where the default's refinement is none (the outlier first
    # pass alone, as Config(causal=False) resolves it).
    "peaked_bf16_d128": (DEFAULT, 8, 2, 128, "bf16", ("cuda", "cpu")),
    "peaked_bf16_d128_first": (DEFAULT_FIRST, 8, 2, 128, "bf16", ("cuda", "cpu")),
    "peaked_h32_bf16_d128": (DEFAULT, 32, 8, 128, "bf16", ("cuda",)),
    "peaked_h32_bf16_d128_first": (DEFAULT_FIRST, 32, 8, 128, "bf16", ("cuda",)),
    "peaked_noncausal_f16_d64": (DEFAULT.partition(",refine=")[0] + ",causal=false", 8, 2, 64, "f16", ("cuda", "cpu")),
    # The scoring kernel pooling its query composites itself (the default,
    # named by CHECK_FLAGS): heads pooled by 1 (the default config), 2 (f16,
    # block 64) and 4 (not causal); each with an `_unfused` twin (the
    # compress kernel writes the composites) that check.py runs on the same
    # inputs, scores and layouts equal bit for bit.
    "qfuse_bf16_d128": (mean("block=128,c_q=16,c_k=8,tau=0.99"), 8, 2, 128, "bf16", ("cuda", "cpu")),
    "qfuse_bf16_d128_unfused": (mean("block=128,c_q=16,c_k=8,tau=0.99"), 8, 2, 128, "bf16", ("cuda",)),
    "qfuse_ch2_f16_d64": (mean("block=64,c_q=16,c_k=16,c_h=2,tau=0.9"), 8, 2, 64, "f16", ("cuda", "cpu")),
    "qfuse_ch2_f16_d64_unfused": (mean("block=64,c_q=16,c_k=16,c_h=2,tau=0.9"), 8, 2, 64, "f16", ("cuda",)),
    "qfuse_ch4_bf16_d128": (
        mean("block=128,c_q=16,c_k=16,c_h=4,tau=0.9,causal=false"),
        8,
        2,
        128,
        "bf16",
        ("cuda", "cpu"),
    ),
    "qfuse_ch4_bf16_d128_unfused": (
        mean("block=128,c_q=16,c_k=16,c_h=4,tau=0.9,causal=false"),
        8,
        2,
        128,
        "bf16",
        ("cuda",),
    ),
}

# Extra unisparse-compile flags of CHECK entries, for their CUDA libraries.
CHECK_FLAGS = {
    "outlier_f32p_bf16_d128": ["--score-partials=f32"],
    "outlier_poly_bf16_d128": ["--score-outlier-exp2-poly=8", "--score-outlier-tile-factors"],
    "default_fused_bf16_d128": ["--score-epilogue=fused"],
    "qmax_fused_bf16_d128": ["--score-epilogue=fused"],
    "rk2_fused_f16_d64": ["--score-epilogue=fused"],
    "default_chunk_bf16_d128": ["--score-epilogue=separate", "--score-ctas=3", "--score-scratch-bytes=1"],
    "rk2_chunk_f16_d64": ["--score-epilogue=separate", "--score-ctas=3", "--score-scratch-bytes=1"],
    "default_f32p_bf16_d128": ["--score-partials=f32"],
    "default_f32p_fused_bf16_d128": ["--score-partials=f32", "--score-epilogue=fused"],
    "slash_f32_d128": ["--score-precision=f32"],
    "slash_f32_d128_first": ["--score-precision=f32"],
    "slash_loops_bf16_d128": ["--refine-kernels=false"],
    "est_refine_loops": ["--refine-kernels=false"],
    "qfuse_bf16_d128": ["--score-fuse-query-pooling=true"],
    "qfuse_bf16_d128_unfused": ["--score-fuse-query-pooling=false"],
    "qfuse_ch2_f16_d64": ["--score-fuse-query-pooling=true"],
    "qfuse_ch2_f16_d64_unfused": ["--score-fuse-query-pooling=false"],
    "qfuse_ch4_bf16_d128": ["--score-fuse-query-pooling=true"],
    "qfuse_ch4_bf16_d128_unfused": ["--score-fuse-query-pooling=false"],
}

BENCH = {
    "bench_causal": (mean("block=128,c_q=16,c_k=16,tau=0.9"), 32, 8, 128, "bf16", ("cuda",)),
    "bench_noncausal": (mean("block=128,c_q=16,c_k=16,tau=0.9,causal=false"), 32, 8, 128, "bf16", ("cuda",)),
}


# Estimation alone (bench/bench_gpu_estimation.py): mean pooling (the
# default config until 2026-12-04: est_default keeps that meaning), c = 16,
# ..., and the default configuration today (est_peaked_default: the
# `peaked` preset, Config()).
BENCH_ESTIMATION = {
    "est_peaked_default": (DEFAULT, 32, 8, 128, "bf16", ("cuda",)),
    "est_default": (mean("block=128,c_q=16,c_k=8,tau=0.99"), 32, 8, 128, "bf16", ("cuda",)),
    "est_c16": (mean("block=128,c_q=16,c_k=16,tau=0.9"), 32, 8, 128, "bf16", ("cuda",)),
    "est_qmax": (mean("block=128,c_q=16,c_k=8,tau=0.99,query_reduce=max"), 32, 8, 128, "bf16", ("cuda",)),
    "est_antidiag": (
        "block=128,c_q=8,c_k=8,tau=0.95,estimator=antidiag,query_reduce=sum,refine=none",
        32,
        8,
        128,
        "bf16",
        ("cuda",),
    ),
    # The default refined by the slash refinement (its kernels; `_loops`:
    # the loop path, --refine-kernels=false, timed up to 32K).
    "est_refine": (
        "block=128,c_q=16,c_k=8,tau=0.99,refine=slash,last_q=16,estimator=mean,query_reduce=sum,refine_norm=false",
        32,
        8,
        128,
        "bf16",
        ("cuda",),
    ),
    "est_refine_loops": (
        "block=128,c_q=16,c_k=8,tau=0.99,refine=slash,last_q=16,estimator=mean,query_reduce=sum,refine_norm=false",
        32,
        8,
        128,
        "bf16",
        ("cuda",),
    ),
    "est_antidiag_lse": (
        "block=128,c_q=8,c_k=8,tau=0.99,estimator=antidiag_lse,query_reduce=max,refine=none",
        32,
        8,
        128,
        "bf16",
        ("cuda",),
    ),
    # The `recommended` preset: the outlier estimator (its compress kernels,
    # in the compress column, and its scoring kernel).
    "est_outlier": (
        "block=128,c_q=16,c_k=32,tau=0.995,estimator=outlier,query_reduce=max,q_outliers=1,k_outliers=2,refine=none",
        32,
        8,
        128,
        "bf16",
        ("cuda",),
    ),
    # The `peaked` preset (two-level): the outlier estimator refined by the
    # slash refinement's kernels; its whole call against cuDNN with --e2e.
    "est_peaked": (
        "block=128,c_q=16,c_k=32,tau=0.995,estimator=outlier,query_reduce=max,q_outliers=1,k_outliers=2,"
        "refine=slash,last_q=16,refine_norm=false",
        32,
        8,
        128,
        "bf16",
        ("cuda",),
    ),
    # The same with the refinement normalised (refine_norm): one more sum
    # and a division per block in the probe kernel.
    "est_peaked_norm": (
        "block=128,c_q=16,c_k=32,tau=0.995,estimator=outlier,query_reduce=max,q_outliers=1,k_outliers=2,"
        "refine=slash,last_q=16,refine_norm=true",
        32,
        8,
        128,
        "bf16",
        ("cuda",),
    ),
}

# Tile-knob variants of an estimation config for the scoring kernel's tuning
# (compile_all.py --only tuning; bench_gpu_estimation.py --tuning): name ->
# (BENCH_ESTIMATION entry, extra unisparse-compile flags; None: a library
# placed in the AOT directory by hand, e.g. an earlier commit's build or a
# build with a patch applied, which compile_all.py compiles only with
# --before BUILD_DIR and --names, never as the plain entry).
TUNING = {
    "tune_before": ("est_default", None),
    # The separate epilogue as an earlier commit built it (one launch over
    # every CTA tile, scratch rows for every query composite), by hand.
    "tune_separate_before": ("est_default", None),
    # A build between "before" and the current one (one change measured
    # alone), by hand.
    "tune_between": ("est_default", None),
    "tune_default": ("est_default", []),
    # The default as built before the lane-major register sort and the
    # fused total / kept-mass pass (the v3 selection: chunks of 256 keys,
    # the total and the walk as two chains), by hand: so that the
    # selection's before and after run in one process.
    "tune_select_v3": ("est_default", None),
    # The block scores at the end of each CTA tile (the default until the
    # separate epilogue was bounded).
    "tune_fused": ("est_default", ["--score-epilogue=fused"]),
    # The scoring kernel's block scores by a second, memory-bound kernel, in
    # chunks of whole waves of units (causal pairs of CTA tiles) within the
    # default 256 MiB of scratch; with every unit in one chunk (the scratch
    # of N * NBk floats); and with a 1 GiB budget (fewer, longer launches).
    "tune_separate": ("est_default", ["--score-epilogue=separate"]),
    "tune_separate_unbounded": ("est_default", ["--score-epilogue=separate", "--score-scratch-bytes=0"]),
    "tune_separate_1g": ("est_default", ["--score-epilogue=separate", "--score-scratch-bytes=1073741824"]),
    "tune_qmax_separate": ("est_qmax", ["--score-epilogue=separate"]),
    # The key loop and epilogue before the f16 partial sums, the key-tile-major
    # scratch and the own-row reduce-scatter (commit ba06ab5), by hand; the
    # current kernel with f32 partial sums (the f16 default is tune_default).
    "tune_keyloop_before": ("est_default", None),
    "tune_partials_f32": ("est_default", ["--score-partials=f32"]),
    "tune_qmax_partials_f32": ("est_qmax", ["--score-partials=f32"]),
    # The query composites pooled by the scoring kernel as it loads its tile
    # (the default since) against the compress kernel writing them.
    "tune_qfuse": ("est_default", ["--score-fuse-query-pooling=true"]),
    "tune_unfused": ("est_default", ["--score-fuse-query-pooling=false"]),
    # The fused pooling without the L2 prefetch of each tile's raw queries:
    # at 32K the first wave prefetches 264 tiles x 512 KiB = 132 MiB at once,
    # more than the 50 MiB L2 (does the prefetch evict lines before the
    # pooling reads them?).
    "tune_noprefetch": ("est_default", ["--score-prefetch-queries=false"]),
    # The slash refinement's kernels (est_refine) as built before issue 17's
    # second rewrite (main 4e83987: six launches, a warp per query block's
    # probe rows), by hand (scripts/gpu/refine_prepare.sh), against the
    # current ones in one process.
    "tune_refine_before": ("est_refine", None),
    "tune_refine": ("est_refine", []),
    # The default configuration as main builds it (tune_peaked_before, by hand
    # with a build of main: bench/logs/2026-12-05-s16-prep/prepare.sh) against
    # the same built with a pending rewrite applied (tune_peaked, below), in
    # one process.
    "tune_peaked_before": ("est_peaked_default", None),
    # The outlier estimator's scoring kernel: an earlier form built by hand
    # with an earlier compiler (scripts/gpu/prepare_outlier_fold.sh --before:
    # the three-pass form before the fold, a CTA per tile, A fragments in
    # registers; prepare_oscore128.sh: the fold as session 8 merged it); the
    # fold at its default key tile of 32 and at 64 (a spill, one CTA per
    # SM).
    "tune_outlier_before": ("est_outlier", None),
    "tune_outlier": ("est_outlier", []),
    "tune_outlier_kt64": ("est_outlier", ["--score-outlier-key-tile=64"]),
    # Issue 13 at 128K (scripts/gpu/prepare_oscore128.sh): the fold as
    # merged in session 8 (tune_outlier_before, built by main's compiler),
    # against this form with its default f16 partial sums (tune_outlier) and
    # with f32 ones (the instruction mix and the coalesced scratch alone).
    "tune_outlier_f32p": ("est_outlier", ["--score-partials=f32"]),
    # Issue 13's last 3% at 128K (scripts/gpu/prepare_oscore_mufu.sh): the
    # scores' scale factors once per key tile (tf), and with it n of each 8
    # exponentials of pass 2 on the FMA pipe (poly<n>). Since session 10 the
    # default is tf with 2 of 8 (tune_outlier, the fastest on the H200);
    # tune_outlier_exact is the kernel before (neither).
    "tune_outlier_exact": ("est_outlier", ["--score-outlier-exp2-poly=0", "--score-outlier-tile-factors=false"]),
    "tune_outlier_tf": ("est_outlier", ["--score-outlier-exp2-poly=0"]),
    "tune_outlier_poly1": ("est_outlier", ["--score-outlier-exp2-poly=1"]),
    "tune_outlier_poly4": ("est_outlier", ["--score-outlier-exp2-poly=4"]),
    # The outlier compress kernels before the session-9 rewrite (main
    # 9d34bc8), built by hand with that compiler
    # (scripts/gpu/prepare_ocompress2.sh prepare --before BUILD_DIR), against
    # tune_outlier (the current compiler) in one process.
    "tune_ocompress_before": ("est_outlier", None),
    # The default's outlier scoring kernel at key tile 16: ptxas 13.0 gives
    # 168 registers (24 bytes of spill) and 62 KB of workgroup memory, so 3
    # CTAs (12 warps) an SM where key tile 32 (the default: 255 registers,
    # 88 KB) fits 2; with the persistent grid at 264 CTAs (2 an SM) and at
    # 396 (3 an SM). Measured in session 15 (bench/RESULTS.md): 1.34-1.38x
    # slower than key tile 32 (1.18x with 396 CTAs), so the default stays.
    "tune_peaked": ("est_peaked_default", []),
    "tune_peaked_kt16": ("est_peaked_default", ["--score-outlier-key-tile=16"]),
    "tune_peaked_kt16_c396": ("est_peaked_default", ["--score-outlier-key-tile=16", "--score-ctas=396"]),
    # The default's outlier scoring kernel with its key slot loops unrolled
    # (session 17): ptxas 13.0 gives pass 2's unmasked key tile 1295
    # instructions (192 HMMA, 64 LDSM: the A fragments loaded once for the
    # three slots) against 3 x 461 (96 LDSM), and may issue a slot's mma.sync
    # among the previous slot's epilogue; the same operations in the same
    # order (scripts/gpu/layout_same.py checks the bits).
    "tune_peaked_unroll": ("est_peaked_default", ["--score-outlier-unroll-slots"]),
    # The default's outlier scoring kernel on wgmma (session 20: as fast as
    # mma.sync, so off by default), and key tile 16 with ptxas's register
    # budget for 3 CTAs an SM (168 registers; 58.6 KB of workgroup memory on
    # wgmma, 62.2 KB on mma.sync) and 396 persistent CTAs (3 on each of 132
    # SMs), on wgmma and on mma.sync (both ~18% slower).
    "tune_peaked_wgmma": ("est_peaked_default", ["--score-outlier-wgmma"]),
    "tune_peaked_wkt16_m3": (
        "est_peaked_default",
        ["--score-outlier-wgmma", "--score-outlier-key-tile=16", "--score-min-ctas-per-sm=3", "--score-ctas=396"],
    ),
    "tune_peaked_mkt16_m3": (
        "est_peaked_default",
        ["--score-outlier-key-tile=16", "--score-min-ctas-per-sm=3", "--score-ctas=396"],
    ),
    # session 18: the probe rows' forced keys loaded a step ahead (the default
    # since; tune_peaked is the library before it when compiled by an earlier
    # build)
    "tune_peaked_pf": ("est_peaked_default", None),
    # session 21: the outlier compress's center in CTAs a split (tune_peaked)
    # and with it each composite warp prefetching into L2 the tokens of the
    # composite a wave of warps later (tune_peaked_cpf), built by hand with
    # the compiler of each, and with both the key composites' groups' picks
    # interleaved (tune_peaked_kint; bench/logs/2026-12-05-s21/README.md)
    "tune_peaked_cpf": ("est_peaked_default", None),
    "tune_peaked_kint": ("est_peaked_default", None),
    # session 22: the query composites' kernel with a hint of 5 and 6 CTAs an
    # SM (ptxas 13.0: 96 registers, no spill; 80 registers, 128 bytes of
    # spill; 119 without), built by hand with query_min_ctas.patch
    # (bench/logs/2026-12-06-s22/README.md): no faster, rejected
    "tune_peaked_q5": ("est_peaked_default", None),
    "tune_peaked_q6": ("est_peaked_default", None),
}


def parse_config(text):
    """'block=128,tau=0.9,causal=false' -> the fields of that Config, as a
    dict (unisparse.Config.parse is the one parser)."""
    import dataclasses
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
    from unisparse.config import Config

    return dataclasses.asdict(Config.parse(text))


# unisparse-compile's default --score-outlier-exp2-poly (UnisparseToGPU.h's
# outlierExp2Poly; test_configs checks that the two agree): of each 8
# exponentials of the outlier scoring kernel's pass 2, how many the FMA pipe
# computes by the polynomial.
OUTLIER_EXP2_POLY_DEFAULT = 2


def outlier_exp2_poly(flags):
    """The --score-outlier-exp2-poly that a library compiled with `flags`
    has (the last one given, else the default)."""
    n = OUTLIER_EXP2_POLY_DEFAULT
    for f in flags:
        if f.startswith("--score-outlier-exp2-poly="):
            n = int(f.split("=", 1)[1])
    return n


def lib_name(name, target):
    return f"lib{name}_{target}.so"


# Signatures that scripts/gpu/check_torch.py runs through unisparse.compile /
# torch.ops.unisparse.* / Hugging Face on CUDA: (Config fields, Hq, Hkv, D,
# dtype). Libraries are named by unisparse.gpu.library_name, so
# unisparse.compile(device="cuda") finds them in $UNISPARSE_AOT_DIR.
TORCH_OP = dict(block=64, c_q=16, c_k=16, tau=0.8, estimator="mean", query_reduce="sum", refine="none")
#: The default configuration (Config(): the peaked one) at the op check's
#: shape (check_torch.py: output against float64 on the op's own layout,
#: opcheck, torch.compile, CUDA graphs).
TORCH_OP_DEFAULT = dict(block=64)
HF_HEADS, HF_KV_HEADS, HF_HEAD_DIM = 4, 2, 64
TORCH = [
    (TORCH_OP, 4, 2, 64, "bf16"),
    (TORCH_OP, 4, 2, 64, "f16"),
    (TORCH_OP_DEFAULT, 4, 2, 64, "bf16"),
    (TORCH_OP_DEFAULT, 4, 2, 64, "f16"),
    # Hugging Face (check_torch.py registers these two configs under their own
    # names) passes the module's scaling, head_dim ** -0.5: tau = 1 and the
    # default configuration (the peaked one since 2026-12-04) at block 64.
    (dict(block=64, tau=1.0, scale=0.125), HF_HEADS, HF_KV_HEADS, HF_HEAD_DIM, "bf16"),
    (dict(block=64, scale=0.125), HF_HEADS, HF_KV_HEADS, HF_HEAD_DIM, "bf16"),
    # python -m unisparse.demo at its defaults (the default config, the
    # peaked one since 2026-12-04, and tau = 1).
    (dict(), 8, 2, 64, "bf16"),
    (dict(tau=1.0), 8, 2, 64, "bf16"),
]

"""GPU benchmark of the estimation (compress + block_score + block_select,
the compiled ``@layout`` of ``unisparse-to-nvptx``; with ``refine = slash``
the refinement too) by stage, next to a plain
unfused PyTorch estimator, and the whole call against cuDNN causal attention
(``--e2e``; ``--peak 1.5 2.5`` adds rows on the project's generator at those
sharpnesses, so layouts of lower density; ``--graph`` adds the same calls
replayed from a CUDA graph, what a caller that captures them gets, without
the host's launches between the estimation's kernels; ``--fa4`` adds FlashAttention-4's
causal call).

    UNISPARSE_CUDA_RUNTIME=... UNISPARSE_AOT_DIR=... \\
        python3 bench/bench_gpu_estimation.py [--n 32768 131072] [--only est_default ...]

The libraries are configs.BENCH_ESTIMATION (scripts/gpu/compile_all.py
--only estimation). Batch 1, 32 query / 8 kv heads, head dim 128, bf16,
causal, structured inputs; medians of CUDA-event timings (bench_gpu.time_ms).
Per-stage times come from one profiled call (torch.profiler, CUDA kernel
durations grouped by kernel name: ``unisparse_block_score*`` = score,
``unisparse_block_select*`` = select, ``unisparse_slash*`` = refine (the
slash refinement's kernels), the remaining linalg kernels of ``@layout`` =
other; through the refinement's loop path, ``est_refine_loops``, its kernels
are in other). Every estimator is scored by a tensor-core kernel (the
antidiagonal ones with K = s * D; ``outlier`` by its own kernels,
``unisparse_outlier_*`` = score, its composites by the outlier compress
kernels, ``unisparse_compress_outlier_*`` = compress); the loop path of
the refinement is timed at the smaller sizes only (``--structured-max-n``). The scoring's TFLOP/s count
the estimator's multiply-adds (s * D per composite pair for the
antidiagonal estimators, (q_outliers + 1) (k_outliers + 1) D for
``outlier``: one pass of its slot products, though its kernel makes two and
a half; causal: half).

``--host`` reports, instead, where one call's time goes, several times in
one process (``--host-repeat``), for the libraries of ``--only`` (default
``est_default``; tuning variants by their names too): the call's host time (wall clock of ``layout()`` with the
GPU idle), of it the Python side alone (checks, outputs, descriptors) and
the compiled entry (``call_entry`` on ready outputs), the host time of the
runtime's pieces on the same stream (the workspace check, an allocation
and free of the scoring scratch's size from the runtime's pool), the
kernels' sum (torch.profiler), one call's CUDA events with the GPU idle
(what ``estimation`` above reports: host time the GPU waits for counts),
the same events around a call queued behind ~1 ms of GPU work (the call's
device span alone: kernels and the gaps between them), and calls back to
back.
"""

import argparse
import os
import pathlib
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts" / "gpu"))
sys.path.insert(0, str(ROOT / "bench"))

import configs  # noqa: E402
from bench_gpu import load_aot, structured, time_ms  # noqa: E402

from unisparse import gpu  # noqa: E402
from unisparse import reference as ref  # noqa: E402


def torch_estimator(q, k, block, cq, ck):
    """Unfused PyTorch estimation of block scores (mean pooling, causal)."""
    b, hq, n, d = q.shape
    g = hq // k.shape[1]
    tq, tk = -(-n // cq), -(-n // ck)
    qp = torch.nn.functional.pad(q, (0, 0, 0, tq * cq - n)).view(b, hq, tq, cq, d).float().sum(3)
    qp = (qp / torch.clamp(n - torch.arange(tq, device=q.device) * cq, max=cq)[:, None]).bfloat16()
    kp = torch.nn.functional.pad(k, (0, 0, 0, tk * ck - n)).view(b, k.shape[1], tk, ck, d).float().sum(3)
    kp = (kp / torch.clamp(n - torch.arange(tk, device=q.device) * ck, max=ck)[:, None]).bfloat16()
    kp = kp.repeat_interleave(g, 1)
    logits = (qp @ kp.transpose(-1, -2)).float() * d**-0.5
    t = torch.arange(tq, device=q.device)[:, None]
    u = torch.arange(tk, device=q.device)[None, :]
    logits.masked_fill_(u * ck > (t + 1) * cq - 1, float("-inf"))
    p = torch.softmax(logits, -1)
    rq, rk = block // cq, block // ck
    nb = -(-n // block)
    p = torch.nn.functional.pad(p, (0, nb * rk - tk, 0, nb * rq - tq))
    return p.view(b, hq, nb, rq, nb, rk).sum((3, 5))


def torch_estimator_antidiag(q, k, block, c, estimator, query_reduce, chunk_elems=1 << 29):
    """Unfused PyTorch estimation of the antidiagonal estimators (causal):
    composites of c tokens side by side (queries reversed) in bf16, the
    logits of antidiag as one bf16 GEMM with K = c D, antidiag_lse's c slot
    logits by a batched bf16 GEMM and their log-mean-exp in f32, an f32
    softmax, block sums, over chunks of query blocks (the slot logits of
    every pair would not fit at 128K)."""
    b, hq, n, d = q.shape
    g = hq // k.shape[1]
    t = -(-n // c)
    qs = torch.nn.functional.pad(q, (0, 0, 0, t * c - n)).view(b, hq, t, c, d).flip(3)
    ks = torch.nn.functional.pad(k, (0, 0, 0, t * c - n)).view(b, k.shape[1], t, c, d).repeat_interleave(g, 1)
    r = block // c
    nb = -(-n // block)
    out = torch.empty(b, hq, nb, nb, device=q.device)
    u = torch.arange(t, device=q.device)[None, :]
    step = max(1, chunk_elems // (b * hq * r * t * (c if estimator == "antidiag_lse" else 1)))
    for i0 in range(0, nb, step):
        i1 = min(nb, i0 + step)
        t0, t1 = i0 * r, min(t, i1 * r)
        if estimator == "antidiag":
            x = (qs[:, :, t0:t1].flatten(3) @ ks.flatten(3).transpose(-1, -2)).float() * (d**-0.5 / c)
        else:
            xs = (qs[:, :, t0:t1].transpose(2, 3) @ ks.permute(0, 1, 3, 4, 2)).float() * d**-0.5
            x = torch.logsumexp(xs, 2) - torch.log(torch.tensor(float(c)))
            del xs
        x.masked_fill_(u > torch.arange(t0, t1, device=q.device)[:, None], float("-inf"))
        p = torch.softmax(x, -1)
        p = torch.nn.functional.pad(p, (0, nb * r - t, 0, (i1 - i0) * r - (t1 - t0)))
        pb = p.view(b, hq, i1 - i0, r, nb, r).sum(5)
        out[:, :, i0:i1] = pb.sum(3) if query_reduce == "sum" else pb.amax(3)
    return out


def stage_times(fn):
    """Kernel milliseconds of one call of `fn`, grouped by stage."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    out = {"compress": 0.0, "score": 0.0, "select": 0.0, "refine": 0.0, "other": 0.0, "epilogue": 0.0}
    for e in prof.events():
        if e.device_type != torch.autograd.DeviceType.CUDA:
            continue
        name = e.name
        ms = e.device_time_total / 1000.0 if hasattr(e, "device_time_total") else e.cuda_time_total / 1e3
        if "block_score" in name or "unisparse_outlier" in name:
            # (the outlier estimator: its key norms, query spread and
            # scoring kernels)
            out["score"] += ms
            if "block_score_epilogue" in name:  # --score-epilogue=separate
                out["epilogue"] += ms
        elif "block_select" in name:
            out["select"] += ms
        elif "compress" in name:
            out["compress"] += ms
        elif "unisparse_slash" in name:  # the refinement kernels
            out["refine"] += ms
        else:  # the structured path's kernels (other estimators), copies
            out["other"] += ms
    return out


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def host_split(lib, q, k, reps=30):
    """Where one layout() call's time goes (ms; medians of `reps`): see the
    module docstring's ``--host``."""
    import ctypes
    import time

    from torch.profiler import ProfilerActivity, profile

    from unisparse import _runtime

    for _ in range(3):
        lib.layout(q, k)
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    host, events = [], []
    for _ in range(reps):
        torch.cuda.synchronize()
        s.record()
        t0 = time.perf_counter()
        lib.layout(q, k)
        host.append((time.perf_counter() - t0) * 1e3)
        e.record()
        torch.cuda.synchronize()
        events.append(s.elapsed_time(e))
    # The Python side alone: what layout() does before the entry point.
    python = []
    for _ in range(reps):
        t0 = time.perf_counter()
        lib.check_inputs(q, k)
        out = lib.layout_buffers(q, scores=True)
        gpu.packed_descriptors([q, k, *out])
        python.append((time.perf_counter() - t0) * 1e3)
    # The compiled entry on ready outputs (with its descriptors and stream).
    entry = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        lib.layout_into(q, k, out)
        entry.append((time.perf_counter() - t0) * 1e3)
    torch.cuda.synchronize()
    # The runtime's pieces, on the stream the call uses: the workspace check
    # of a size the runtime's pool holds unused after the calls above (1 MiB)
    # and of one it cannot hold (1 TiB: the free-memory query, then the
    # refusal, cleared), and an allocation + free of 64 MiB from the pool.
    rt = _runtime.loaded()
    rt.mgpuMemAlloc.restype = ctypes.c_void_p
    rt.mgpuMemAlloc.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_int8]
    rt.mgpuMemFree.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    rt.unisparse_rt_check_workspace.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int32]
    stream = torch.cuda.current_stream().cuda_stream or gpu.CU_STREAM_LEGACY
    check, check_big, alloc = [], [], []
    rt.unisparse_rt_set_current_stream(stream)
    try:
        for size, times in ((1 << 20, check), (1 << 40, check_big)):
            for _ in range(reps):
                t0 = time.perf_counter()
                rt.unisparse_rt_check_workspace(size, q.shape[0], q.shape[2], 1)
                times.append((time.perf_counter() - t0) * 1e3)
                rt.unisparse_rt_clear_error()
        for _ in range(reps):
            t0 = time.perf_counter()
            rt.mgpuMemFree(rt.mgpuMemAlloc(64 << 20, stream, 0), stream)
            alloc.append((time.perf_counter() - t0) * 1e3)
    finally:
        rt.unisparse_rt_set_current_stream(None)
    gpu.check_runtime()
    torch.cuda.synchronize()
    # Events around a call queued behind ~1 ms of GPU work (2M cycles): the
    # call's device span, with the host far ahead.
    queued = []
    for _ in range(reps):
        torch.cuda._sleep(2_000_000)
        s.record()
        lib.layout(q, k)
        e.record()
        torch.cuda.synchronize()
        queued.append(s.elapsed_time(e))
    s.record()
    for _ in range(reps):
        lib.layout(q, k)
    e.record()
    torch.cuda.synchronize()
    batched = s.elapsed_time(e) / reps
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        lib.layout(q, k)
        torch.cuda.synchronize()
    kernels = sum(
        ev.device_time_total / 1e3 for ev in prof.events() if ev.device_type == torch.autograd.DeviceType.CUDA
    )
    return dict(
        host=_median(host),
        python=_median(python),
        entry=_median(entry),
        check=_median(check),
        check_big=_median(check_big),
        alloc=_median(alloc),
        kernels=kernels,
        events=_median(events),
        queued=_median(queued),
        batched=batched,
    )


def host_report(a):
    """--host: host_split for each config of --only and N, --host-repeat
    times in this process."""
    import statistics

    for name in a.only or ["est_default"]:
        base = configs.TUNING[name][0] if name in configs.TUNING else name  # a tuning variant's config
        _, hq, hkv, d, _, _ = configs.BENCH_ESTIMATION[base]
        lib, _ = load_aot(name, configs.BENCH_ESTIMATION[base])
        for n in a.n:
            q, k, v = structured(n, hq, hkv, d, seed=n)
            rows = []
            for r in range(a.host_repeat):
                h = host_split(lib, q, k)
                rows.append(h)
                print(
                    f"{name} N={n} [{r + 1}/{a.host_repeat}]: one call (events) {h['events']:.3f} ms = "
                    f"kernels {h['kernels']:.3f} + {h['events'] - h['kernels']:.3f}; "
                    f"queued behind GPU work {h['queued']:.3f}; back to back {h['batched']:.3f}/call; "
                    f"host {h['host']:.3f} (python {h['python']:.3f}, compiled entry {h['entry']:.3f}; "
                    f"runtime pieces: workspace check {h['check']:.4f} held by the pool / {h['check_big']:.4f} not, "
                    f"pool alloc+free {h['alloc']:.4f})",
                    flush=True,
                )
            ev = [h["events"] for h in rows]
            print(
                f"{name} N={n}: one call (events) over {len(rows)} repeats: min {min(ev):.3f}, "
                f"median {statistics.median(ev):.3f}, max {max(ev):.3f} ms",
                flush=True,
            )
            q = k = None
            torch.cuda.empty_cache()


def flops_score(n, hq, d, cq, ck, causal=True):
    """Multiply-adds x 2 of the composite QK^T (causal: half)."""
    f = 2.0 * hq * (n / cq) * (n / ck) * d
    return f / 2 if causal else f


def generator_inputs(n, hq, hkv, d, peak):
    """(q, k, v) of the project's generator (16 needles, seed 0) at `peak`,
    bf16 on the GPU."""
    import numpy as np

    from unisparse.synthetic import structured_qkv

    q, k, v, _ = structured_qkv(1, hq, hkv, n, d, seed=0, dtype=np.float32, peak=peak, needles=16)
    return tuple(torch.from_numpy(x).cuda().to(torch.bfloat16).contiguous() for x in (q, k, v))


def graph_ms(fn, min_reps=5, budget_ms=1000.0):
    """Median time of one replay of fn() captured in a CUDA graph, after two
    eager calls on a side stream (the runtime's pool and modules warm; the
    compiled call queues everything on PyTorch's current stream with no host
    synchronisation, so it captures whole)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    torch.cuda.synchronize()
    gpu.check_runtime()
    return time_ms(graph.replay, min_reps=min_reps, budget_ms=budget_ms)


def end_to_end(lib, qkv, c, inputs, fa4, graph=False):
    """One row: the whole compiled call (estimation + sparse attention) on
    `qkv` (described by `inputs`) against cuDNN causal (and
    FlashAttention-4's causal dense call)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = qkv
    _, hq, n, _ = q.shape
    _, counts, _ = lib.layout(q, k)
    dens = ref.density(counts.cpu().numpy(), n, c["block"], c["causal"])
    t_est = time_ms(lambda: lib.layout(q, k), min_reps=5, budget_ms=1000.0)
    t_att = time_ms(lambda: lib.attention(q, k, v), min_reps=3, budget_ms=2000.0)
    g = hq // k.shape[1]
    kr, vr = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        t_dense = time_ms(
            lambda: torch.nn.functional.scaled_dot_product_attention(q, kr, vr, is_causal=True),
            min_reps=3,
            budget_ms=2000.0,
        )
    kr = vr = None
    t_fa4 = float("nan")
    if fa4:
        from bench_gpu import fa4_call

        run = fa4_call(q, k, v, None, None, c["block"], True, True)
        t_fa4 = time_ms(run, min_reps=3, budget_ms=2000.0)
    in_graph = ""
    if graph:
        g_est = graph_ms(lambda: lib.layout(q, k))
        g_att = graph_ms(lambda: lib.attention(q, k, v), min_reps=3, budget_ms=2000.0)
        in_graph = (
            f"; in a CUDA graph: UniSparse {g_att:.2f} ms (estimation {g_est:.3f}), speedup {t_dense / g_att:.2f}x, "
            f"estimation share {g_est / g_att:.1%}"
        )
    line = (
        f"  end to end N={n} {inputs}: density {dens:.3f}, UniSparse {t_att:.2f} ms (estimation {t_est:.3f}), "
        f"cuDNN causal {t_dense:.2f} ms, speedup {t_dense / t_att:.2f}x (target 0.9/density = {0.9 / dens:.2f}x), "
        f"estimation share {t_est / t_att:.1%}"
        + (f", FA4 causal {t_fa4:.2f} ms ({t_fa4 / t_att:.2f}x)" if fa4 else "")
        + in_graph
    )
    print(line, flush=True)
    return line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="*", default=[32768, 131072])
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--structured-max-n", type=int, default=32768)
    ap.add_argument("--e2e", action="store_true", help="also the whole call vs cuDNN causal")
    ap.add_argument(
        "--peak",
        type=float,
        nargs="*",
        default=[],
        help="with --e2e: also rows on the project's generator (unisparse.synthetic.structured_qkv, 16 needles, "
        "seed 0) at these peaks (inverse temperatures: 1.5 diffuse, 2.5 as sparse as real long-context heads)",
    )
    ap.add_argument(
        "--fa4", action="store_true", help="with --e2e: FlashAttention-4's causal dense call in the same run"
    )
    ap.add_argument(
        "--graph", action="store_true", help="with --e2e: also the calls replayed from a CUDA graph (no host launches)"
    )
    ap.add_argument(
        "--tuning", action="store_true", help="the scoring kernel's knob variants (configs.TUNING), not the estimators"
    )
    ap.add_argument("--host", action="store_true", help="where one call's time goes (host, kernels, events)")
    ap.add_argument("--host-repeat", type=int, default=5, help="--host: measurements in this process")
    a = ap.parse_args()
    print(torch.cuda.get_device_name(), flush=True)
    if a.host:
        host_report(a)
        return
    rows = []
    table = configs.BENCH_ESTIMATION
    if a.tuning:
        table = {name: configs.BENCH_ESTIMATION[base] for name, (base, _) in configs.TUNING.items()}
    for name, (cfg, hq, hkv, d, dtype, _) in table.items():
        if a.only and name not in a.only:
            continue
        if not (pathlib.Path(os.environ["UNISPARSE_AOT_DIR"]) / configs.lib_name(name, "cuda")).exists():
            print(f"{name}: no library (compile_all.py --only tuning)", flush=True)
            continue
        lib, c = load_aot(name, (cfg, hq, hkv, d, dtype, ()))
        # The refinement through the loop path (--refine-kernels=false) is
        # timed at the smaller sizes only, as the structured estimators.
        tensor_core = not name.endswith("_loops")
        for n in a.n:
            if not tensor_core and n > a.structured_max_n:
                print(f"{name} N={n}: skipped (structured path above --structured-max-n)", flush=True)
                continue
            q, k, v = structured(n, hq, hkv, d, seed=n)
            try:
                t_est = time_ms(lambda: lib.layout(q, k), min_reps=5, budget_ms=1000.0)
                st = stage_times(lambda: lib.layout(q, k))
                _, counts, _ = lib.layout(q, k)
                dens = ref.density(counts.cpu().numpy(), n, c["block"], c["causal"])
            except Exception as e:  # report and go on (e.g. out of memory)
                t_est, st, dens = float("nan"), {}, float("nan")
                print(f"  {name} N={n}: {type(e).__name__}: {e}", flush=True)
            t_torch = float("nan")
            if c["estimator"] == "mean":
                t_torch = time_ms(
                    lambda: torch_estimator(q, k, c["block"], c["c_q"], c["c_k"]), min_reps=3, budget_ms=500.0
                )
            elif c["estimator"] != "outlier":
                t_torch = time_ms(
                    lambda: torch_estimator_antidiag(q, k, c["block"], c["c_q"], c["estimator"], c["query_reduce"]),
                    min_reps=3,
                    budget_ms=500.0,
                )
            per_pair = {"mean": 1, "outlier": (c["q_outliers"] + 1) * (c["k_outliers"] + 1)}
            tf = flops_score(n, hq, d, c["c_q"], c["c_k"]) * per_pair.get(c["estimator"], c["c_q"])
            score_ms = st.get("score", 0.0) or st.get("other", 0.0)
            score_tflops = tf / (score_ms * 1e-3) / 1e12 if score_ms else float("nan")
            line = (
                f"{name} ({cfg}) N={n}: estimation {t_est:.3f} ms "
                f"[compress {st.get('compress', float('nan')):.3f}, score {st.get('score', float('nan')):.3f} "
                f"({score_tflops:.0f} TFLOP/s"
                + (f"; epilogue kernel {st['epilogue']:.3f}" if st.get("epilogue") else "")
                + f"), select {st.get('select', float('nan')):.3f}, "
                + (f"refine {st['refine']:.3f}, " if c.get("refine") == "slash" else "")
                + f"other {st.get('other', float('nan')):.3f}], "
                f"density {dens:.3f}, unfused PyTorch {t_torch:.2f} ms ({t_torch / t_est:.1f}x)"
            )
            print(line, flush=True)
            rows.append(line)
            if a.e2e and name in configs.BENCH_ESTIMATION and tensor_core:
                # Every estimator's whole call, not only the default's: the
                # outlier and two-level layouts are sparser on peaked inputs.
                rows.append(end_to_end(lib, (q, k, v), c, "bench inputs", a.fa4, a.graph))
                q = k = v = None  # free before the generator's inputs
                for peak in a.peak:
                    qkv = generator_inputs(n, hq, hkv, d, peak)
                    rows.append(end_to_end(lib, qkv, c, f"generator peak={peak:g}", a.fa4, a.graph))
                    qkv = None
                    torch.cuda.empty_cache()
            q = k = v = None  # free before the next size (the lambdas above name them)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()

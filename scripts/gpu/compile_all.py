"""Compiles every configuration of configs.py with unisparse-compile.

    python3 scripts/gpu/compile_all.py --out DIR [--build BUILD_DIR] [--only check|bench] [--names NAME ...]

Needs LLVM (run it where the compiler is built); the output directory is what
a GPU machine without LLVM loads (see run.sh).
"""

import argparse
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import configs  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def compile_command(build, cfg, hq, hkv, d, dtype, target, lib):
    """unisparse-compile's command line for one library."""
    return [
        f"{build}/bin/unisparse-compile",
        f"--config={cfg}",
        f"--heads={hq}",
        f"--kv-heads={hkv}",
        f"--head-dim={d}",
        f"--dtype={dtype}",
        f"--target={target}",
        "-o",
        str(lib),
    ]


def tuning_plan(names, before):
    """The configs.TUNING entries to compile, as (name, base, flags), and the
    named ones left out, as (name, why): without a --before build the entries
    with flags (a hand-built one, flags None, would come out as its plain
    base); with one (`before` true) only the hand-built entries among
    `names` (required then: every hand-built entry is another build's
    library, so one build for all of them would mislabel the rest)."""
    if before and names is None:
        raise ValueError("a --before build compiles only the hand-built entries named with --names")
    plan, skipped = [], []
    for name, (base, flags) in configs.TUNING.items():
        if names is not None and name not in names:
            continue
        if (flags is None) != before:
            if names is not None:
                why = "built by hand: --before BUILD_DIR" if flags is None else "not a hand-built entry"
                skipped.append((name, why))
            continue
        plan.append((name, base, flags))
    return plan, skipped


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--build", default=str(ROOT / "build"))
    p.add_argument("--only", choices=["check", "bench", "torch", "estimation", "tuning"], default=None)
    p.add_argument("--names", nargs="+", default=None, metavar="NAME", help="compile only these entries of the tables")
    p.add_argument(
        "--before",
        default=None,
        metavar="BUILD_DIR",
        help="with --only tuning and --names: compile the named variants built by hand (flags None, e.g. "
        "tune_ocompress_before) with BUILD_DIR's unisparse-compile (a build of an earlier commit, or with a "
        "patch applied), the others not",
    )
    a = p.parse_args()
    if a.before is not None and (a.only != "tuning" or a.names is None):
        # Every hand-built entry is some other build's library: compiling them
        # all with one build would mislabel the rest.
        p.error("--before needs --only tuning and --names (the hand-built entries that build is for)")
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.only in (None, "torch"):
        sys.path.insert(0, str(ROOT / "python"))
        from unisparse.config import Config
        from unisparse.gpu import library_name

        for fields, hq, hkv, d, dtype in configs.TORCH:
            cfg = Config(**fields)
            lib = out / library_name(cfg, hq, hkv, d, dtype)
            subprocess.run(compile_command(a.build, cfg.mlir_attr(), hq, hkv, d, dtype, "cuda", lib), check=True)
            print("compiled", lib.name, "for", cfg.mlir_attr(), hq, hkv, d, dtype)
    tables = {
        "check": [configs.CHECK],
        "bench": [configs.BENCH],
        "torch": [],
        "estimation": [configs.BENCH_ESTIMATION],
        "tuning": [],
        None: [configs.CHECK, configs.BENCH, configs.BENCH_ESTIMATION],
    }
    for table in tables[a.only]:
        for name, (cfg, hq, hkv, d, dtype, targets) in table.items():
            if a.names is not None and name not in a.names:
                continue
            for target in targets:
                lib = out / configs.lib_name(name, target)
                cmd = compile_command(a.build, cfg, hq, hkv, d, dtype, target, lib)
                cmd.append(f"--header={lib.with_suffix('.h')}")
                if target == "cuda":
                    cmd += configs.CHECK_FLAGS.get(name, [])
                if target == "cpu":
                    # It runs on the GPU machine's CPU, not this one's.
                    cmd.append("--host-cpu=generic")
                subprocess.run(cmd, check=True)
                print("compiled", lib.name)

    if a.only in (None, "check") and a.names is None:
        # block_select alone, on scores the caller gives (check_select_scores).
        lib = out / configs.lib_name("select", "cuda")
        cmd = [f"{a.build}/bin/unisparse-compile", str(ROOT / "scripts/gpu/select_entry.mlir"), "--target=cuda"]
        subprocess.run(cmd + ["-o", str(lib)], check=True)
        print("compiled", lib.name)

    if a.only in (None, "check") and (a.names is None or "outlier_compress" in a.names):
        # The outlier compress alone, on inputs the caller gives (check_outlier_compress).
        lib = out / configs.lib_name("outlier_compress", "cuda")
        entry = ROOT / "scripts/gpu/outlier_compress_entry.mlir"
        cmd = [f"{a.build}/bin/unisparse-compile", str(entry), "--target=cuda"]
        subprocess.run(cmd + ["-o", str(lib)], check=True)
        print("compiled", lib.name)

    if a.only == "tuning":
        plan, skipped = tuning_plan(a.names, a.before is not None)
        for name, why in skipped:
            print("skipped", name, f"({why})")
        for name, base, flags in plan:
            cfg, hq, hkv, d, dtype, _ = configs.BENCH_ESTIMATION[base]
            lib = out / configs.lib_name(name, "cuda")
            build = a.before or a.build
            subprocess.run(compile_command(build, cfg, hq, hkv, d, dtype, "cuda", lib) + (flags or []), check=True)
            print("compiled", lib.name, *(flags or []), *(["with", build] if a.before else []))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Tessera's cuda backend beside PyTorch transformers on the same card and the same weights.

Runs on the GPU machine from the repo root (python3 with torch, transformers, safetensors):

    python3 bench/cuda_compare.py --engine BUNDLE/bin/engine --out DIR \
        [--shapes qwen2.5-0.5b,llama-3.2-1b,llama-3.1-8b] [--skip-compile]

Writes JSON Lines to DIR/cuda_compare.jsonl (and stdout), flushed as it goes:
- {"kind": "roofline"}: device copy bandwidth (2 GiB copy_, read + written bytes, best of 5)
  and the bf16 matmul rate (8192^3 torch.matmul, best of 5);
- per shape {"kind": "shape"}: the checkpoint (real config, random bf16 weights made on the GPU
  with torch and saved with save_pretrained under /tmp, deleted afterwards), transformers
  prefill (2048 random tokens) and batch-1 greedy decode (128 tokens, eager; then static cache +
  torch.compile unless --skip-compile), `engine bench --backend cuda -p 2048 -n 128`, and the
  bandwidth floor / fractions / ratios computed from them.

Every stage records an "error" field instead of stopping the run.
"""

import argparse
import gc
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
import make_checkpoint  # noqa: E402  (SHAPES, tokenizer_json)

PROMPT = 2048  # pp test length (both sides)
GEN = 128  # tg test length (both sides)
DECODE_PROMPT = 16  # transformers decode prompt: the engine's tg starts from an empty cache

OUT_FILE = None


def emit(obj):
    line = json.dumps(obj, sort_keys=False)
    print(line, flush=True)
    if OUT_FILE is not None:
        OUT_FILE.write(line + "\n")
        OUT_FILE.flush()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def shape_config(name):
    return dict(make_checkpoint.SHAPES[name])


# ----------------------------------------------------------------------------- roofline


def cuda_time(fn, reps):
    """Seconds of each of `reps` calls of fn, timed with cuda events."""
    import torch

    out = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b) / 1e3)
    return out


def roofline():
    import torch

    r = {"kind": "roofline", "device": torch.cuda.get_device_name(0),
         "torch": torch.__version__}
    try:
        n = 2 << 30  # 2 GiB
        src = torch.empty(n, dtype=torch.uint8, device="cuda")
        dst = torch.empty_like(src)
        src.fill_(1)
        dst.copy_(src)  # warm-up
        torch.cuda.synchronize()
        t = min(cuda_time(lambda: dst.copy_(src), 5))
        r["copy_bytes_per_s"] = 2 * n / t  # read + written
        del src, dst
    except Exception as e:  # noqa: BLE001
        r["copy_error"] = repr(e)
    try:
        m = 8192
        a = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
        b = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
        for _ in range(3):
            torch.matmul(a, b)
        torch.cuda.synchronize()
        t = min(cuda_time(lambda: torch.matmul(a, b), 5))
        r["matmul_bf16_flops_per_s"] = 2.0 * m ** 3 / t
        del a, b
    except Exception as e:  # noqa: BLE001
        r["matmul_error"] = repr(e)
    torch.cuda.empty_cache()
    emit(r)
    return r


# ----------------------------------------------------------------------------- checkpoint


def build_model(cfg):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    kw = {k: v for k, v in cfg.items() if k not in ("model_type", "torch_dtype", "architectures")}
    config = AutoConfig.for_model(cfg["model_type"], **kw)
    torch.manual_seed(0)
    with torch.device("cuda"):
        try:
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        except TypeError:
            model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model = model.to(device="cuda", dtype=torch.bfloat16).eval()
    return model


def save_checkpoint(model, cfg, folder):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    model.save_pretrained(folder, safe_serialization=True)
    # The public config.json as-is (newer transformers rewrite e.g. rope_scaling on save), and
    # the same WordLevel tokenizer make_checkpoint.py writes, so the engine loads the folder.
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        json.dump(make_checkpoint.tokenizer_json(cfg["vocab_size"]), f)
    for extra in ("generation_config.json",):
        p = os.path.join(folder, extra)
        if os.path.exists(p):
            os.remove(p)
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)
               if f.endswith(".safetensors"))


# ----------------------------------------------------------------------------- transformers


def prefill_tps(model, vocab, reps=3):
    import torch

    g = torch.Generator(device="cuda").manual_seed(1)
    ids = torch.randint(0, vocab, (1, PROMPT), device="cuda", generator=g)

    def once():
        try:
            model(ids, logits_to_keep=1)  # last row only, as the engine's graph
        except TypeError:
            model(ids)

    times = []
    with torch.inference_mode():
        once()
        torch.cuda.synchronize()
        for _ in range(reps):
            t0 = time.perf_counter()
            once()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return PROMPT / statistics.median(times)


def decode_tps(model, vocab, reps=3, warmup=1, **gen_kw):
    """Greedy batch-1 decode tokens/s, prefill excluded: (t(128 new) - t(1 new)) / 127."""
    import torch

    g = torch.Generator(device="cuda").manual_seed(2)
    ids = torch.randint(0, vocab, (1, DECODE_PROMPT), device="cuda", generator=g)
    mask = torch.ones_like(ids)
    eos = model.config.eos_token_id
    pad = eos[0] if isinstance(eos, list) else eos

    def gen(n):
        out = model.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                             do_sample=False, pad_token_id=pad, **gen_kw)
        torch.cuda.synchronize()
        assert out.shape[1] == DECODE_PROMPT + n, out.shape

    def timed(n):
        t0 = time.perf_counter()
        gen(n)
        return time.perf_counter() - t0

    with torch.inference_mode():
        for _ in range(warmup):
            gen(GEN)
            gen(1)
        t_full = statistics.median(timed(GEN) for _ in range(reps))
        t_one = statistics.median(timed(1) for _ in range(reps))
    return (GEN - 1) / (t_full - t_one), t_full, t_one


class Budget(Exception):
    pass


def compiled_decode(model, vocab, budget_s):
    import torch

    try:
        torch._dynamo.config.cache_size_limit = 64
    except Exception:  # noqa: BLE001
        pass

    def on_alarm(signum, frame):
        raise Budget(f"torch.compile stage over its {budget_s} s budget")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(budget_s)
    t0 = time.perf_counter()
    try:
        model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
        kw = {"cache_implementation": "static"}
        try:
            # Our own compile only: keep generate() from wrapping the forward a second time.
            tps, t_full, t_one = decode_tps(model, vocab, warmup=2, disable_compile=True, **kw)
        except (TypeError, ValueError) as e:
            if "disable_compile" not in str(e):
                raise
            tps, t_full, t_one = decode_tps(model, vocab, warmup=2, **kw)
        return {"tg_tokens_per_s": tps, "t_gen128_s": t_full, "t_gen1_s": t_one,
                "stage_s": time.perf_counter() - t0}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_transformers(model, cfg, args, rec):
    hf = {}
    vocab = cfg["vocab_size"]
    try:
        hf["pp_tokens_per_s"] = prefill_tps(model, vocab)
    except Exception as e:  # noqa: BLE001
        hf["pp_error"] = repr(e)
    try:
        tps, t_full, t_one = decode_tps(model, vocab)
        hf["tg_eager_tokens_per_s"] = tps
        hf["tg_eager_t_gen128_s"], hf["tg_eager_t_gen1_s"] = t_full, t_one
    except Exception as e:  # noqa: BLE001
        hf["tg_eager_error"] = repr(e)
    log(f"  transformers eager: {hf}")
    if not args.skip_compile:
        try:
            c = compiled_decode(model, vocab, args.compile_budget)
            hf["tg_compiled_tokens_per_s"] = c.pop("tg_tokens_per_s")
            hf["compiled"] = c
        except BaseException as e:  # noqa: BLE001  (Budget, KeyboardInterrupt excluded below)
            if isinstance(e, KeyboardInterrupt):
                raise
            hf["tg_compiled_error"] = repr(e)[:2000]
        log(f"  transformers compiled: {hf.get('tg_compiled_tokens_per_s', hf.get('tg_compiled_error'))}")
    rec["transformers"] = hf


def free_gpu():
    import torch

    try:
        torch._dynamo.reset()  # also drops the cudagraph trees' memory pools
    except Exception:  # noqa: BLE001
        pass
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- engine


def run_engine(engine, folder, reps, timeout, env=None, prompt=PROMPT, gen=GEN, extra_args=()):
    cmd = [engine, "bench", folder, "--backend", "cuda", "-p", str(prompt), "-n", str(gen),
           "-r", str(reps), "--json", *extra_args]
    t0 = time.perf_counter()
    run_env = dict(os.environ, **(env or {}))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=run_env)
    res = {"cmd": " ".join(cmd), "rc": p.returncode, "wall_s": time.perf_counter() - t0}
    tests = {}
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                j = json.loads(line)
                tests[j.get("test", "?")] = j
            except ValueError:
                pass
    res["tests"] = tests
    profile = [ln for ln in p.stderr.splitlines() if ln.startswith("cuda profile:")]
    if profile:
        res["profile"] = profile
    if p.returncode != 0 or not tests:
        res["error"] = f"rc {p.returncode}"
        res["stderr_tail"] = p.stderr[-3000:]
        res["stdout_tail"] = p.stdout[-1000:]
    return res


# ----------------------------------------------------------------------------- analysis


def analyse(cfg, rec, roof):
    """Bytes per token, the bandwidth floor, and the fractions / ratios."""
    L, kvh = cfg["num_hidden_layers"], cfg["num_key_value_heads"]
    h, heads, v = cfg["hidden_size"], cfg["num_attention_heads"], cfg["vocab_size"]
    hd = cfg.get("head_dim", h // heads)
    tied = cfg.get("tie_word_embeddings", False)
    file_bytes = rec.get("weight_file_bytes")
    params = rec.get("params")
    if file_bytes is None or params is None:
        return {"error": "no checkpoint"}
    embed_bytes = 2 * v * h
    # Decode reads every matmul weight once per token; an untied embedding table only one row.
    decode_weight_bytes = file_bytes - (0 if tied else embed_bytes)
    kv_bf16 = 2 * L * kvh * hd * 2  # bytes per cached position, K and V
    kv_f32 = 2 * kv_bf16  # the engine's KV pools are f32
    tg_keys = (GEN + 1) / 2.0  # mean positions attended in a tg128 from an empty cache
    a = {
        "decode_weight_bytes": decode_weight_bytes,
        "kv_bytes_per_position_bf16": kv_bf16,
        "kv_bytes_per_position_f32": kv_f32,
        "bytes_per_token_tg128_f32kv": decode_weight_bytes + tg_keys * kv_f32,
        "bytes_per_token_tg128_bf16kv": decode_weight_bytes + tg_keys * kv_bf16,
        "bytes_per_token_ctx2048_f32kv": decode_weight_bytes + 2048 * kv_f32,
        "bytes_per_token_ctx2048_bf16kv": decode_weight_bytes + 2048 * kv_bf16,
        "note": "tg128 (both sides) decodes positions 0..127 (transformers after a 16-token "
                "prompt); Tessera's KV cache is f32, transformers' bf16",
    }
    bw = roof.get("copy_bytes_per_s")
    mm = roof.get("matmul_bf16_flops_per_s")
    if bw:
        for k in ("tg128_f32kv", "tg128_bf16kv", "ctx2048_f32kv", "ctx2048_bf16kv"):
            a["floor_tokens_per_s_" + k] = bw / a["bytes_per_token_" + k]
    # Prefill FLOPs: 2 * matmul params per token, head for the last row only, causal attention.
    # Layer matmul params: all but the embedding table and the head (counted once when tied).
    matmul_params = params - v * h * (1 if tied else 2)
    pp_flops = (2.0 * matmul_params * PROMPT + 2.0 * v * h
                + L * 4.0 * heads * hd * PROMPT * (PROMPT + 1) / 2)
    a["pp_flops"] = pp_flops
    a["flops_per_token_2x_params"] = 2.0 * params
    tests = rec.get("tessera", {}).get("tests", {})
    pp = tests.get(f"pp{PROMPT}", {}).get("tokens_per_s")
    tg = tests.get(f"tg{GEN}", {}).get("tokens_per_s")
    hf = rec.get("transformers", {})
    if tg and bw:
        a["tessera_tg_fraction_of_floor"] = tg / a["floor_tokens_per_s_tg128_f32kv"]
    if pp and mm:
        a["tessera_pp_fraction_of_matmul"] = pp / PROMPT * pp_flops / mm
    if hf.get("pp_tokens_per_s") and mm:
        a["hf_pp_fraction_of_matmul"] = hf["pp_tokens_per_s"] / PROMPT * pp_flops / mm
    for k in ("tg_eager_tokens_per_s", "tg_compiled_tokens_per_s"):
        if hf.get(k) and bw:
            a["hf_" + k.replace("_tokens_per_s", "") + "_fraction_of_floor"] = (
                hf[k] / a["floor_tokens_per_s_tg128_bf16kv"])
    if pp and hf.get("pp_tokens_per_s"):
        a["ratio_pp_tessera_over_hf"] = pp / hf["pp_tokens_per_s"]
    # Aggregate decode of N sequences in lockstep (engine bench --parallel N): a step reads the
    # weights once and every sequence's KV, and does N tokens' matmuls and attention; its floor
    # is the larger of the copy time and the bf16 matmul time.
    par = rec.get("tessera_parallel", {})
    n_par = par.get("parallel")
    ptg = par.get("tests", {}).get(f"tg{GEN}x{n_par}", {}).get("tokens_per_s") if n_par else None
    if n_par and bw and mm:
        step_bytes = decode_weight_bytes + n_par * tg_keys * kv_f32
        step_flops = n_par * (2.0 * (matmul_params + v * h) + L * 4.0 * heads * hd * tg_keys)
        step_s = max(step_bytes / bw, step_flops / mm)
        a[f"roofline_tokens_per_s_tg{GEN}x{n_par}"] = n_par / step_s
        a["parallel_roofline_bound"] = "memory" if step_bytes / bw >= step_flops / mm else "compute"
        if ptg:
            a[f"tessera_tg{GEN}x{n_par}_fraction_of_roofline"] = ptg * step_s / n_par
    if tg and hf.get("tg_eager_tokens_per_s"):
        a["ratio_tg_tessera_over_hf_eager"] = tg / hf["tg_eager_tokens_per_s"]
    if tg and hf.get("tg_compiled_tokens_per_s"):
        a["ratio_tg_tessera_over_hf_compiled"] = tg / hf["tg_compiled_tokens_per_s"]
    return a


def summary_line(name, rec):
    hf = rec.get("transformers", {})
    tests = rec.get("tessera", {}).get("tests", {})
    a = rec.get("analysis", {})
    ng = rec.get("tessera_no_graphs", {}).get("tests", {})

    def f(x, fmt="{:.1f}"):
        return fmt.format(x) if isinstance(x, (int, float)) else "-"

    return (f"{name}: tessera pp{PROMPT} {f(tests.get(f'pp{PROMPT}', {}).get('tokens_per_s'))} "
            f"tg{GEN} {f(tests.get(f'tg{GEN}', {}).get('tokens_per_s'))} | "
            f"hf pp {f(hf.get('pp_tokens_per_s'))} tg eager {f(hf.get('tg_eager_tokens_per_s'))} "
            f"compiled {f(hf.get('tg_compiled_tokens_per_s'))} | floor tg "
            f"{f(a.get('floor_tokens_per_s_tg128_f32kv'))} frac "
            f"{f(a.get('tessera_tg_fraction_of_floor'), '{:.2f}')} pp/matmul "
            f"{f(a.get('tessera_pp_fraction_of_matmul'), '{:.2f}')}"
            + (f" | no graphs: pp {f(ng.get(f'pp{PROMPT}', {}).get('tokens_per_s'))} "
               f"tg {f(ng.get(f'tg{GEN}', {}).get('tokens_per_s'))}" if ng else ""))


# ----------------------------------------------------------------------------- main


def run_shape(name, args, roof):
    import torch

    t0 = time.perf_counter()
    rec = {"kind": "shape", "shape": name}
    big = name == "llama-3.1-8b"
    folder = os.path.join(args.tmp, name)
    try:
        cfg = shape_config(name)
    except KeyError:
        rec["error"] = f"unknown shape {name}"
        emit(rec)
        return
    model = None
    try:
        log(f"{name}: building on cuda")
        model = build_model(cfg)
        rec["params"] = sum(p.numel() for p in model.parameters())
        t = time.perf_counter()
        rec["weight_file_bytes"] = save_checkpoint(model, cfg, folder)
        rec["save_s"] = time.perf_counter() - t
        log(f"{name}: {rec['params'] / 1e9:.2f}B params, saved in {rec['save_s']:.1f} s")
    except Exception as e:  # noqa: BLE001
        rec["checkpoint_error"] = repr(e)
    if model is not None and not args.skip_hf:
        try:
            run_transformers(model, cfg, args, rec)
        except Exception as e:  # noqa: BLE001
            rec["transformers"] = {"error": repr(e)}
        del model
    free_gpu()
    rec["gpu_mem_allocated_before_engine"] = torch.cuda.memory_allocated()
    if "weight_file_bytes" in rec:
        reps = args.reps_8b if big else args.reps
        timeout = args.engine_timeout * (2 if big else 1)
        try:
            log(f"{name}: engine bench (-r {reps}, timeout {timeout} s)")
            rec["tessera"] = run_engine(args.engine, folder, reps, timeout)
        except subprocess.TimeoutExpired:
            rec["tessera"] = {"error": f"timeout after {timeout} s"}
        except Exception as e:  # noqa: BLE001
            rec["tessera"] = {"error": repr(e)}
        extra = []
        if args.no_graphs_too:
            extra.append(("tessera_no_graphs", {"TESSERA_CUDA_GRAPHS": "0"}, 1, PROMPT, GEN))
        for spec in args.variant:  # NAME:K=V[,K=V...] -> rec["tessera_NAME"]
            vname, _, kvs = spec.partition(":")
            venv = dict(kv.split("=", 1) for kv in kvs.split(",") if "=" in kv)
            extra.append(("tessera_" + vname, venv, 1, args.variant_prompt, GEN))
        if args.profile:
            extra.append(("tessera_profile", {"TESSERA_CUDA_PROFILE": "1"}, 1, PROMPT, 32))
            extra.append(("tessera_profile_exec", {"TESSERA_CUDA_PROFILE": "exec"}, 1, 16, GEN))
        if args.parallel > 1:
            try:
                log(f"{name}: engine bench --parallel {args.parallel}")
                rec["tessera_parallel"] = run_engine(
                    args.engine, folder, 1, timeout, None, 0, GEN,
                    ["--parallel", str(args.parallel)] + (["--greedy"] if args.greedy else []))
                rec["tessera_parallel"]["parallel"] = args.parallel
                tests = rec["tessera_parallel"].get("tests", {})
                if args.greedy:  # the analysis reads tg{GEN}x{N}: greedy is that step's variant
                    tests[f"tg{GEN}x{args.parallel}"] = tests.get(f"tg{GEN}x{args.parallel}-greedy", {})
                    rec["tessera_parallel"]["greedy"] = True
                t = tests.get(f"tg{GEN}x{args.parallel}", {})
                log(f"{name}: tg{GEN}x{args.parallel} {t.get('tokens_per_s')} t/s aggregate")
            except Exception as e:  # noqa: BLE001
                rec["tessera_parallel"] = {"error": repr(e)}
        for key, env, r, pp, tg in extra:
            try:
                log(f"{name}: engine bench with {env}")
                rec[key] = run_engine(args.engine, folder, r, timeout, env, pp, tg)
                vt = rec[key].get("tests", {})
                log(f"{name}: {key}: pp{pp} "
                    f"{vt.get(f'pp{pp}', {}).get('tokens_per_s')} tg{tg} "
                    f"{vt.get(f'tg{tg}', {}).get('tokens_per_s')}")
                for ln in rec[key].get("profile", [])[:40]:
                    log(ln)
            except Exception as e:  # noqa: BLE001
                rec[key] = {"error": repr(e)}
    try:
        rec["analysis"] = analyse(cfg, rec, roof)
    except Exception as e:  # noqa: BLE001
        rec["analysis"] = {"error": repr(e)}
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    rec["shape_s"] = time.perf_counter() - t0
    emit(rec)
    log(summary_line(name, rec))


def main():
    global OUT_FILE
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", required=True, help="engine binary (BUNDLE/bin/engine)")
    ap.add_argument("--out", required=True, help="output folder (cuda_compare.jsonl)")
    ap.add_argument("--shapes", default="qwen2.5-0.5b,llama-3.2-1b,llama-3.1-8b")
    ap.add_argument("--skip-compile", action="store_true",
                    help="skip the static-cache + torch.compile transformers decode")
    ap.add_argument("--compile-budget", type=int, default=240, help="seconds per shape")
    ap.add_argument("--reps", type=int, default=3, help="engine -r for the small shapes")
    ap.add_argument("--reps-8b", type=int, default=2, help="engine -r for llama-3.1-8b")
    ap.add_argument("--engine-timeout", type=int, default=180,
                    help="seconds per engine bench (doubled for the 8B)")
    ap.add_argument("--tmp", default="/tmp/tessera_cuda_compare", help="checkpoint folders")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoint folders")
    ap.add_argument("--skip-hf", action="store_true", help="skip transformers (engine only)")
    ap.add_argument("--profile", action="store_true",
                    help="also run the engine with TESSERA_CUDA_PROFILE=1 (per-op GPU time, "
                         "-p 2048 -n 32) and =exec (GPU vs host time per execute, -p 16 "
                         "-n 128) and print their tables")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME:K=V[,K=V]: also run the engine with these environment variables "
                         "(one rep, -p --variant-prompt, -n 128), recorded as tessera_NAME; "
                         "e.g. off:TESSERA_CUDA_GEMV=off or nopdl:TESSERA_CUDA_PDL=0")
    ap.add_argument("--variant-prompt", type=int, default=PROMPT,
                    help="prompt length of the --variant runs")
    ap.add_argument("--parallel", type=int, default=0,
                    help="also measure aggregate decode of N sequences at once (engine bench "
                         "--parallel N -p 0 -n 128) against its roofline")
    ap.add_argument("--greedy", action="store_true",
                    help="run the --parallel test as greedy requests (engine bench --greedy: the "
                         "tokens picked on the device, one id a row downloaded)")
    ap.add_argument("--no-graphs-too", action="store_true",
                    help="also run the engine with TESSERA_CUDA_GRAPHS=0 (CUDA graphs off)")
    args = ap.parse_args()
    args.engine = os.path.abspath(args.engine)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.tmp, exist_ok=True)
    OUT_FILE = open(os.path.join(args.out, "cuda_compare.jsonl"), "a")
    t0 = time.perf_counter()
    try:
        import torch
        import transformers

        log(f"torch {torch.__version__}, transformers {transformers.__version__}, "
            f"{torch.cuda.get_device_name(0)}")
    except Exception as e:  # noqa: BLE001
        emit({"kind": "error", "error": f"torch/transformers unavailable: {e!r}"})
        return 1
    roof = {}
    try:
        roof = roofline()
        log(f"roofline: copy {roof.get('copy_bytes_per_s', 0) / 1e9:.0f} GB/s, "
            f"bf16 matmul {roof.get('matmul_bf16_flops_per_s', 0) / 1e12:.0f} TFLOP/s")
    except Exception as e:  # noqa: BLE001
        emit({"kind": "roofline", "error": repr(e)})
    for name in [s.strip() for s in args.shapes.split(",") if s.strip()]:
        try:
            run_shape(name, args, roof)
        except Exception as e:  # noqa: BLE001
            emit({"kind": "shape", "shape": name, "error": repr(e)})
    emit({"kind": "done", "total_s": time.perf_counter() - t0})
    OUT_FILE.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

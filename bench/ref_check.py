#!/usr/bin/env python3
"""Tessera's backends against transformers on full-size checkpoints (real configs, random weights).

The golden fixtures (tests/fixtures/models) are tiny, so the kernels that only run at real sizes
(the decode GEMVs and their fusions, the prefill GEMM tiles, split decode attention, long
vocabularies) are not checked against the reference by them. This script is: on the GPU machine,
from the repo root (python3 with torch and transformers):

    python3 bench/ref_check.py --bundle BUNDLE --out DIR [--shapes a,b] [--backends cuda,vulkan,cpu]
        [--tokens 544] [--rows 32]

For each shape: a checkpoint with the public model's config.json and transformers' random
initialisation (bf16, or SHAPE:f16 / SHAPE:f32, saved with save_pretrained under /tmp, deleted afterwards); transformers'
teacher-forced log-probabilities of `--tokens` fixed random ids (the checkpoint reloaded in
float32 with eager attention, TF32 off, as the golden fixtures' references are made); then
BUNDLE/bin/ref_logprobs on each backend in three ways:
- full: the whole sequence in one forward (prefill GEMMs, prefill attention);
- decode: tokens[0, n - rows) in one forward, then one decode step a token;
- chunk8: the same prefix, then 8 tokens a forward (the few-row GEMMs).
The last `--rows` positions are compared: the largest |log p| difference over every vocabulary
entry, mean KL(transformers || engine) and top-1 agreement, beside how far transformers' own rows
move when the first 16 ids are replaced (context_effect: a wrong KV position or attention mask
shows up on that scale). One JSON line per (shape, backend, mode) on stdout and in
DIR/ref_check.jsonl; "pass" is max_abs <= --tolerance. With --quantize q8,q4 the weights are
also quantized at load (full and decode modes): KL against transformers is reported, and each
backend must agree within --tolerance with the CPU's run of the same kind (f32 activations against
the same blocks; the first backend's run where the CPU is skipped).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_checkpoint  # noqa: E402  (SHAPES, tokenizer_json)

# config.json values of public checkpoints beyond make_checkpoint's three (Qwen/Qwen3-0.6B,
# HuggingFaceTB/SmolLM2-135M, google/gemma-3-1b-it, microsoft/Phi-3-mini-4k-instruct,
# google/gemma-2-2b, Qwen/Qwen2.5-1.5B).
EXTRA = {
    "qwen3-0.6b": {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": False,
        "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
        "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
        "max_position_embeddings": 40960, "max_window_layers": 28, "num_attention_heads": 16,
        "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
        "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None,
        "tie_word_embeddings": True, "use_sliding_window": False, "vocab_size": 151936,
    },
    "smollm2-135m": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
        "bos_token_id": 0, "eos_token_id": 0, "head_dim": 64, "hidden_act": "silu",
        "hidden_size": 576, "initializer_range": 0.041666666666666664,
        "intermediate_size": 1536, "max_position_embeddings": 8192, "mlp_bias": False,
        "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 100000,
        "tie_word_embeddings": True, "vocab_size": 49152,
    },
    "gemma-3-1b": {
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
        "attention_bias": False, "attn_logit_softcapping": None, "bos_token_id": 2,
        "eos_token_id": [1, 106], "final_logit_softcapping": None, "head_dim": 256,
        "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 1152, "initializer_range": 0.02,
        "intermediate_size": 6912, "max_position_embeddings": 32768, "num_attention_heads": 4,
        "num_hidden_layers": 26, "num_key_value_heads": 1, "pad_token_id": 0,
        "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000,
        "rope_scaling": None, "rope_theta": 1000000, "sliding_window": 512,
        "sliding_window_pattern": 6, "vocab_size": 262144,
    },
    "phi-3-mini-4k": {
        "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "attention_bias": False,
        "bos_token_id": 1, "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072,
        "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 4096,
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
        "original_max_position_embeddings": 4096, "pad_token_id": 32000, "rms_norm_eps": 1e-05,
        "rope_scaling": None, "rope_theta": 10000.0, "sliding_window": 2047,
        "tie_word_embeddings": False, "vocab_size": 32064,
    },
    "gemma-2-2b": {
        "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "attention_bias": False,
        "attn_logit_softcapping": 50.0, "bos_token_id": 2, "eos_token_id": 1,
        "final_logit_softcapping": 30.0, "head_dim": 256, "hidden_act": "gelu_pytorch_tanh",
        "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304, "initializer_range": 0.02,
        "intermediate_size": 9216, "max_position_embeddings": 8192, "num_attention_heads": 8,
        "num_hidden_layers": 26, "num_key_value_heads": 4, "pad_token_id": 0,
        "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
        "sliding_window": 4096, "vocab_size": 256000,
    },
    "qwen2.5-1.5b": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "bos_token_id": 151643,
        "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 1536,
        "initializer_range": 0.02, "intermediate_size": 8960, "max_position_embeddings": 131072,
        "max_window_layers": 28, "num_attention_heads": 12, "num_hidden_layers": 28,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "sliding_window": 131072, "tie_word_embeddings": True, "use_sliding_window": False,
        "vocab_size": 151936,
    },
}

MODES = {  # name: (prefix, step) given n tokens and r compared rows
    "full": lambda n, r: (0, 0),
    "decode": lambda n, r: (n - r, 1),
    "chunk8": lambda n, r: (n - r, 8),
}


def config_of(shape):
    if shape in EXTRA:
        return dict(EXTRA[shape])
    c = dict(make_checkpoint.SHAPES[shape])
    c.pop("torch_dtype", None)
    return c


def emit(out, obj):
    line = json.dumps(obj)
    print(line, flush=True)
    out.write(line + "\n")
    out.flush()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def make_and_reference(shape, dtype, folder, ids, rows, seed):
    """Saves a random checkpoint of `shape` (weights in `dtype`) to folder; returns transformers'
    log-probs of the last `rows` positions of ids (float32 numpy [rows, vocab]), the largest
    change of them when the first 16 ids are replaced, and the parameter count."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    dtypes = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg = config_of(shape)
    model_type = cfg.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg)
    torch.manual_seed(seed)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtypes[dtype],
                                                 attn_implementation="eager")
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder, safe_serialization=True)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        json.dump(make_checkpoint.tokenizer_json(config.vocab_size), f)
    del model
    torch.cuda.empty_cache()
    # Reloaded in float32, as tests/fixtures/models/make_fixtures.py makes the golden references
    # (not model.float(): buffers made under the bf16 default dtype, e.g. Gemma's embedding
    # scale, would keep their bf16 rounding).
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                     attn_implementation="eager",
                                                     device_map="cuda")
    except (ImportError, ValueError):  # no accelerate: load on the host, then move
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                     attn_implementation="eager").to("cuda")
    model.eval()
    with torch.no_grad():
        def logprobs(seq):
            # logits_to_keep: only the compared rows' logits (long prompts x large vocabularies).
            logits = model(torch.tensor([seq], device="cuda"), logits_to_keep=rows).logits
            logits = logits[0, -rows:].float()
            return torch.log_softmax(logits, dim=-1).cpu().numpy()

        lp = logprobs(ids)
        # How much the far context moves the compared rows: the first 16 ids replaced (the
        # engine's errors mean something only well below this).
        other = [(t + 7919) % config.vocab_size for t in ids[:16]] + ids[16:]
        effect = float(abs(lp - logprobs(other)).max())
    del model
    torch.cuda.empty_cache()
    return lp, effect, params


def compare(ref, got):
    import numpy as np

    d = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    p = np.exp(ref.astype(np.float64))
    kl = np.maximum(0.0, (p * (ref.astype(np.float64) - got.astype(np.float64))).sum(axis=1))
    top1 = float((ref.argmax(axis=1) == got.argmax(axis=1)).mean())
    worst = int(d.argmax())
    return {"max_abs": float(d.max()), "worst_row": worst // ref.shape[1],
            "worst_token": worst % ref.shape[1], "kl_mean": float(kl.mean()),
            "kl_max": float(kl.max()), "top1_agreement": top1}


def run_tool(tool, libs, folder, backend, quant, prefix, step, rows, dump):
    """ref_logprobs once; returns (seconds, None) or (None, error text)."""
    cmd = [tool, "--model", folder, "--backend", backend, "--ids",
           os.path.join(folder, "ids.json"), "--out", dump, "--prefix", str(prefix),
           "--step", str(step), "--keep-last", str(rows), "--quantize", quant]
    for lib in libs:
        cmd += ["--plugin", lib]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "timeout"
    if r.returncode != 0:
        return None, (r.stderr.strip().splitlines() or [f"rc {r.returncode}"])[-1]
    lines = [x for x in r.stdout.splitlines() if x.startswith('{"')]
    return (json.loads(lines[-1])["seconds"] if lines else 0.0), None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="relocatable bundle with bin/ref_logprobs")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shapes", default="qwen2.5-0.5b,llama-3.2-1b,llama-3.1-8b",
                    help="comma list; SHAPE:f16 / SHAPE:f32 store the weights in that dtype")
    ap.add_argument("--backends", default="cuda,vulkan,cpu")
    ap.add_argument("--quantize", default="",
                    help="also run these --quantize kinds (e.g. q8,q4): full and decode modes, "
                         "checked against the CPU's run of the same kind (f32 activations), or "
                         "the first backend's where the CPU is skipped")
    ap.add_argument("--cpu-max-params", type=float, default=3e9,
                    help="skip the cpu backend above this many parameters (time)")
    ap.add_argument("--tokens", type=int, default=544)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--tolerance", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the checkpoints under /tmp")
    args = ap.parse_args()
    import numpy as np

    os.makedirs(args.out, exist_ok=True)
    out = open(os.path.join(args.out, "ref_check.jsonl"), "a")
    tool = os.path.join(args.bundle, "bin", "ref_logprobs")
    plugins = os.path.join(args.bundle, "lib", "tessera", "backends")
    quants = ["none"] + [q for q in args.quantize.split(",") if q]
    failed = 0
    for spec in args.shapes.split(","):
        shape, _, dtype = spec.partition(":")
        dtype = dtype or "bf16"
        folder = f"/tmp/refcheck-{shape}-{dtype}"
        shutil.rmtree(folder, ignore_errors=True)
        vocab = config_of(shape)["vocab_size"]
        rng = np.random.default_rng(args.seed + 1)
        ids = [int(t) for t in rng.integers(0, vocab, size=args.tokens)]
        t0 = time.time()
        try:
            ref, effect, params = make_and_reference(shape, dtype, folder, ids, args.rows,
                                                     args.seed)
        except Exception as e:  # noqa: BLE001  (report and go on)
            emit(out, {"shape": shape, "dtype": dtype, "error": f"transformers: {e!r}"})
            failed += 1
            continue
        log(f"{spec}: checkpoint + reference in {time.time() - t0:.0f} s ({params:.3g} params)")
        with open(os.path.join(folder, "ids.json"), "w") as f:
            json.dump(ids, f)
        backends = [b for b in args.backends.split(",")
                    if b != "cpu" or params <= args.cpu_max_params]
        # The quantized runs' yardstick: the CPU's (f32 activations), else the first backend's.
        backends.sort(key=lambda b: b != "cpu")
        for quant in quants:
            yardstick = None
            for backend in backends:
                libs = [os.path.join(plugins, f"libtessera_backend_{backend}.so")]
                if backend != "cpu":
                    libs.append(os.path.join(plugins, "libtessera_backend_cpu.so"))
                for mode, fn in MODES.items():
                    if quant != "none" and mode == "chunk8":
                        continue
                    prefix, step = fn(args.tokens, args.rows)
                    dump = os.path.join(folder, f"{backend}_{mode}.f32")
                    rec = {"shape": shape, "dtype": dtype, "quantize": quant, "backend": backend,
                           "mode": mode, "tokens": args.tokens, "rows": args.rows,
                           "context_effect": effect}
                    secs, err = run_tool(tool, libs, folder, backend, quant, prefix, step,
                                         args.rows, dump)
                    if err is not None:
                        rec["error"] = err
                        emit(out, rec)
                        failed += 1
                        continue
                    got = np.fromfile(dump, dtype=np.float32).reshape(-1, vocab)
                    os.remove(dump)
                    rec.update(compare(ref, got))
                    rec["seconds"] = secs
                    if quant == "none":
                        rec["pass"] = rec["max_abs"] <= args.tolerance
                    elif yardstick is None:
                        yardstick = (backend, got)  # checked by the others against it
                        rec["pass"] = True
                    else:
                        rec["vs"] = yardstick[0]
                        rec["max_abs_vs"] = compare(yardstick[1], got)["max_abs"]
                        rec["pass"] = rec["max_abs_vs"] <= args.tolerance
                    failed += not rec["pass"]
                    emit(out, rec)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    log(f"{failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Makes a benchmark checkpoint: a Hugging Face model folder with the real config.json of a
public model, random bf16 weights and a trivial tokenizer, built locally (no downloads, no
torch, no numpy).

    python3 bench/make_checkpoint.py --shape qwen2.5-0.5b --out build/bench-models/qwen2.5-0.5b

The weights are random, so the model's output is noise: the folder is only for measuring speed
(`engine bench`). The tokenizer is a WordLevel vocabulary "t0".."tN" covering vocab_size, since
the benchmark feeds token ids directly. Write these folders under build/ (git-ignored): they
are hundreds of megabytes and must never be committed.
"""

import argparse
import array
import json
import math
import os
import random
import struct
import sys

# config.json values of the public checkpoints (Qwen/Qwen2.5-0.5B, meta-llama/Llama-3.2-1B).
SHAPES = {
    "qwen2.5-0.5b": {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "hidden_act": "silu",
        "hidden_size": 896,
        "initializer_range": 0.02,
        "intermediate_size": 4864,
        "max_position_embeddings": 32768,
        "max_window_layers": 24,
        "model_type": "qwen2",
        "num_attention_heads": 14,
        "num_hidden_layers": 24,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": 151936,
    },
    "llama-3.2-1b": {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "head_dim": 64,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "initializer_range": 0.02,
        "intermediate_size": 8192,
        "max_position_embeddings": 131072,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 16,
        "num_key_value_heads": 8,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "factor": 32.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": 128256,
    },
    # config.json of meta-llama/Llama-3.1-8B (16 GB of bf16: for GPU machines).
    "llama-3.1-8b": {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "head_dim": 128,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 14336,
        "max_position_embeddings": 131072,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "factor": 8.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": 128256,
    },
}


def tensor_shapes(c):
    """(name, shape) of every tensor of a Llama/Qwen2 decoder, in checkpoint order."""
    h, inter, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    heads, kv = c["num_attention_heads"], c["num_key_value_heads"]
    d = c.get("head_dim", h // heads)
    qkv_bias = c["architectures"][0] == "Qwen2ForCausalLM" or c.get("attention_bias", False)
    out = [("model.embed_tokens.weight", [v, h])]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        out.append((p + "input_layernorm.weight", [h]))
        for name, rows in (("q_proj", heads * d), ("k_proj", kv * d), ("v_proj", kv * d)):
            out.append((p + f"self_attn.{name}.weight", [rows, h]))
            if qkv_bias:
                out.append((p + f"self_attn.{name}.bias", [rows]))
        out.append((p + "self_attn.o_proj.weight", [h, heads * d]))
        out.append((p + "post_attention_layernorm.weight", [h]))
        out.append((p + "mlp.gate_proj.weight", [inter, h]))
        out.append((p + "mlp.up_proj.weight", [inter, h]))
        out.append((p + "mlp.down_proj.weight", [h, inter]))
    out.append(("model.norm.weight", [h]))
    if not c["tie_word_embeddings"]:
        out.append(("lm_head.weight", [v, h]))
    return out


def bf16_bits(x):
    """Round-to-nearest-even bf16 bits of the float x."""
    (u,) = struct.unpack("<I", struct.pack("<f", x))
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF


def make_pool(rng, n, std):
    """n bf16 values ~ N(0, std), as little-endian bytes (a pool tensors are cut from)."""
    a = array.array("H", (bf16_bits(rng.gauss(0.0, std)) for _ in range(n)))
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def write_tensor(f, rng, pool, norm_bytes, numel, is_norm):
    """Writes numel bf16 values: norms are all 1.0, everything else random pool slices."""
    nbytes = 2 * numel
    if is_norm:
        f.write(norm_bytes * numel)
        return
    while nbytes > 0:
        start = 2 * rng.randrange(len(pool) // 4)  # even offset, at least half the pool left
        chunk = min(nbytes, len(pool) - start)
        f.write(pool[start:start + chunk])
        nbytes -= chunk


def write_safetensors(path, config, seed):
    rng = random.Random(seed)
    pool = make_pool(rng, 1 << 20, config["initializer_range"])
    norm_bytes = struct.pack("<H", bf16_bits(1.0))
    header, offset = {}, 0
    shapes = tensor_shapes(config)
    for name, shape in shapes:
        n = 2 * math.prod(shape)
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape in shapes:
            is_norm = name.endswith("layernorm.weight") or name == "model.norm.weight"
            write_tensor(f, rng, pool, norm_bytes, math.prod(shape), is_norm)
    return offset


def tokenizer_json(vocab_size):
    """A WordLevel tokenizer with tokens "t0".."t<vocab_size-1>", split on whitespace."""
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": None,
        "decoder": None,
        "model": {
            "type": "WordLevel",
            "vocab": {f"t{i}": i for i in range(vocab_size)},
            "unk_token": "t0",
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    config = SHAPES[args.shape]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(args.out, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(config["vocab_size"]), f)
    nbytes = write_safetensors(os.path.join(args.out, "model.safetensors"), config, args.seed)
    print(f"{args.out}: {args.shape}, {nbytes // 2:,} parameters ({nbytes / 2**20:.0f} MiB bf16)")


if __name__ == "__main__":
    main()

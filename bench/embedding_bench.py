#!/usr/bin/env python3
"""Embedding throughput: Tessera (`engine bench-embed`) beside sentence-transformers, same machine,
same checkpoint, same inputs shape.

Makes a BERT-base-shaped checkpoint (bert-base-uncased's config: 12 layers, hidden 768, vocab
30522; random f32 weights; a WordPiece tokenizer over "[PAD] [UNK] [CLS] [SEP] [MASK] w5 w6 ...";
sentence-transformers mean pooling + Normalize, max_seq_length 512), then measures embeddings/s
and tokens/s at batch 1, 32 and 256 with inputs of --seq-len tokens (special tokens included):
sentence-transformers on each torch device given, then `engine bench-embed` on each backend given.
Needs torch, transformers, tokenizers and sentence-transformers (the GPU machine has them).

  embedding_bench.py --engine BUNDLE/bin/engine --out DIR [--devices cpu,cuda] [--backends cpu,cuda]
Prints one JSON object per measurement (JSON Lines) and writes them to DIR/results.jsonl.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time


def make_checkpoint(path):
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
    model = BertModel(config, add_pooling_layer=False).eval()
    model.save_pretrained(path, safe_serialization=True)
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])}
    for i in range(len(vocab), config.vocab_size):
        vocab["w%d" % i] = i
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.save(os.path.join(path, "tokenizer.json"))
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "BertTokenizerFast", "do_lower_case": True, "model_max_length": 512,
                   "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
                   "mask_token": "[MASK]"}, f)
    with open(os.path.join(path, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}], f)
    os.makedirs(os.path.join(path, "1_Pooling"), exist_ok=True)
    os.makedirs(os.path.join(path, "2_Normalize"), exist_ok=True)
    with open(os.path.join(path, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 768, "pooling_mode_mean_tokens": True}, f)
    with open(os.path.join(path, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 512, "do_lower_case": False}, f)


def texts(n, seq_len, seed):
    rng = random.Random(seed)
    return [" ".join("w%d" % rng.randrange(1000, 30522) for _ in range(seq_len - 2)) for _ in range(n)]


def bench_st(path, device, batches, seq_len, reps):
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=device)
    out = []
    for b in batches:
        inputs = texts(b, seq_len, b)
        assert len(model.tokenizer(inputs[0])["input_ids"]) == seq_len
        model.encode(inputs, batch_size=b)  # warm-up
        secs = []
        for _ in range(reps):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.encode(inputs, batch_size=b, convert_to_numpy=True)
            secs.append(time.perf_counter() - t0)
        med = statistics.median(secs)
        out.append({"engine": "sentence-transformers", "device": device, "threads": torch.get_num_threads(),
                    "batch": b, "seq_len": seq_len, "embeddings_per_s": b / med,
                    "tokens_per_s": b * seq_len / med, "seconds_median": med})
    return out


def bench_tessera(engine, path, backend, batches, seq_len, reps):
    cmd = [engine, "bench-embed", path, "--batch", ",".join(map(str, batches)), "--seq-len", str(seq_len),
           "-r", str(reps), "--json", "--backend", backend]  # explicit: the default prefers a GPU
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        return [{"engine": "tessera", "device": backend, "error": r.stderr[-2000:]}]
    out = []
    for line in r.stdout.splitlines():
        j = json.loads(line)
        out.append({"engine": "tessera", "device": backend, "batch": j["batch"], "seq_len": j["seq_len"],
                    "embeddings_per_s": j["embeddings_per_s"], "tokens_per_s": j["tokens_per_s"],
                    "seconds_median": j["seconds_median"]})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--devices", default="cpu,cuda")
    ap.add_argument("--backends", default="cpu,cuda")
    ap.add_argument("--batches", default="1,32,256")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--workdir", default="/tmp")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.workdir, "bert-base-random")  # 440 MB: kept out of --out
    make_checkpoint(path)
    batches = [int(x) for x in args.batches.split(",")]
    results = []
    for dev in filter(None, args.devices.split(",")):
        results += bench_st(path, dev, batches, args.seq_len, args.reps)
    for be in filter(None, args.backends.split(",")):
        results += bench_tessera(args.engine, path, be, batches, args.seq_len, args.reps)
    with open(os.path.join(args.out, "results.jsonl"), "w") as f:
        for r in results:
            print(json.dumps(r))
            f.write(json.dumps(r) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

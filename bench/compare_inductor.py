#!/usr/bin/env python3
"""kiln vs PyTorch eager vs torch.compile (Inductor) on the GPU anchor workloads, in one call.

Run on the GPU machine (scripts/device_run.sh sets up kiln's build there):
    python3 bench/compare_inductor.py --kiln build-ci/bench/cuda_bench --out DIR
All twelve workloads take more than one 10-minute device call (each torch workload compiles
cold and warm in fresh processes): split them with --only a,b,c over two calls.

1. kiln: bench/cuda_bench in one process (rows for kiln, kiln_cuda_graphs, kiln_eager).
2. PyTorch: per workload, a fresh process with an empty Inductor cache ("cold": first call,
   then steady-state eager and compiled times) and a fresh process reusing that cache
   ("warm": first call), as ../shared/anchors/inductor_bench.py measures them.
3. The device-to-device copy ceiling, measured by PyTorch in this call.
Steady state is triton's do_bench (CUDA events, L2 flushed, median) for torch; kiln's bench
times the same way. Writes DIR/compare_inductor_<date>.json: a list of rows with workload,
system, run_s, cold_compile_s, warm_start_s, gbps, copy_ceiling_gbps; prints a table.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

WORKLOADS = ["pointwise", "dropout", "addchain500", "mm_relu", "mlp", "softmax", "layernorm", "transformer",
             "bert_layer", "bert_layer_bf16", "attention_bf16", "attention_t1024_bf16"]


def build(name):
    """The workload as PyTorch runs it: (function, inputs, bytes an ideal kernel moves)."""
    import torch
    dev = "cuda"
    if name == "pointwise":
        n = 1 << 26
        return (lambda x, y: (x + y).sin().cos()), (torch.randn(n, device=dev), torch.randn(n, device=dev)), 12 * n
    if name == "dropout":
        n = 1 << 26
        return (lambda x: torch.nn.functional.dropout(x, 0.1, training=True)), (torch.randn(n, device=dev),), 8 * n
    if name == "addchain500":
        def chain(x, y):
            for _ in range(500):
                x = torch.add(x, y)
            return x
        return chain, (torch.randn(100, 100, device=dev), torch.randn(100, 100, device=dev)), 12 * 100 * 100
    if name == "mm_relu":
        a = torch.randn(1152, 1024, device=dev, dtype=torch.bfloat16)
        b = torch.randn(1024, 1024, device=dev, dtype=torch.bfloat16)
        return (lambda x, y: (x @ y).relu()), (a, b), 0
    if name == "mlp":
        m = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024),
                                torch.nn.ReLU(), torch.nn.Linear(1024, 10)).to(dev).eval()
        return (lambda x: m(x)), (torch.randn(256, 784, device=dev),), 0
    if name == "softmax":
        return (lambda x: torch.softmax(x, -1)), (torch.randn(8192, 8192, device=dev),), 8 * 8192 * 8192
    if name == "layernorm":
        w, b = torch.randn(8192, device=dev), torch.randn(8192, device=dev)
        return ((lambda x: torch.nn.functional.layer_norm(x, (8192,), w, b)), (torch.randn(8192, 8192, device=dev),),
                8 * 8192 * 8192)
    if name == "transformer":
        m = torch.nn.TransformerEncoderLayer(512, 8, 2048, batch_first=True, dropout=0.0).to(dev).eval()
        return (lambda x: m(x)), (torch.randn(8, 256, 512, device=dev),), 0
    if name in ("bert_layer", "bert_layer_bf16"):
        dt = torch.bfloat16 if name.endswith("_bf16") else torch.float32
        m = torch.nn.TransformerEncoderLayer(768, 12, 3072, dropout=0.0, activation="gelu",
                                             batch_first=True).to(dev).to(dt).eval()
        return (lambda x: m(x)), (torch.randn(16, 256, 768, device=dev, dtype=dt),), 0
    if name in ("attention_bf16", "attention_t1024_bf16"):
        b, t = (16, 256) if name == "attention_bf16" else (8, 1024)
        qkv = [torch.randn(b, 12, t, 64, device=dev, dtype=torch.bfloat16) for _ in range(3)]
        return (lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v)), tuple(qkv), 0
    raise KeyError(name)


def steady_seconds(fn, args):
    from triton.testing import do_bench
    return do_bench(lambda: fn(*args), warmup=50, rep=300, return_mode="median") * 1e-3


def child(name, scenario):
    import torch
    with torch.no_grad():
        fn, args, nbytes = build(name)
        compiled = torch.compile(fn)
        torch.cuda.synchronize()
        t = time.perf_counter()
        compiled(*args)
        torch.cuda.synchronize()
        res = {"workload": name, "scenario": scenario, "first_call_s": time.perf_counter() - t, "bytes": nbytes}
        if scenario == "cold":
            res["eager_s"] = steady_seconds(fn, args)
            res["compiled_s"] = steady_seconds(compiled, args)
    print("RESULT " + json.dumps(res), flush=True)


def copy_ceiling_gbps():
    import torch
    from triton.testing import do_bench
    a = torch.empty(1 << 28, device="cuda")
    b = torch.empty_like(a)
    s = do_bench(lambda: b.copy_(a), warmup=50, rep=300, return_mode="median") * 1e-3
    return 2 * a.numel() * 4 / s / 1e9


def run_child(name, scenario, cache):
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache, TRITON_CACHE_DIR=cache + "/triton")
    p = subprocess.run([sys.executable, __file__, "--child", name, scenario], env=env, capture_output=True, text=True,
                       timeout=300)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"torch {name} {scenario} failed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")


def fmt_time(s):
    if s is None:
        return "-"
    return f"{s * 1e6:.1f}us" if s < 1e-3 else f"{s * 1e3:.2f}ms" if s < 1 else f"{s:.2f}s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2)
    ap.add_argument("--kiln", default="build-ci/bench/cuda_bench")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    if a.child:
        return child(*a.child)
    workloads = [w for w in WORKLOADS if not a.only or w in a.only.split(",")]
    ceiling = copy_ceiling_gbps()
    print(f"device-to-device copy ceiling (torch, this call): {ceiling:.0f} GB/s", flush=True)
    kiln_json = os.path.join(a.out, "kiln_rows.json")
    k = subprocess.run([a.kiln, "--json", kiln_json] + (["--only", a.only] if a.only else []), capture_output=True,
                       text=True, timeout=400)
    print(k.stdout, flush=True)
    if k.returncode != 0:
        print(k.stderr[-3000:])
        sys.exit(1)
    rows = json.load(open(kiln_json))
    for r in rows:
        r["kiln_copy_ceiling_gbps"] = r.pop("copy_ceiling_gbps")
        r["copy_ceiling_gbps"] = ceiling
    for w in workloads:
        cache = tempfile.mkdtemp(prefix="inductor_")
        cold = run_child(w, "cold", cache)
        warm = run_child(w, "warm", cache)
        gb = lambda s: cold["bytes"] / s / 1e9 if cold["bytes"] else None
        rows.append({"workload": w, "system": "torch_eager", "run_s": cold["eager_s"], "gbps": gb(cold["eager_s"]),
                     "copy_ceiling_gbps": ceiling})
        rows.append({"workload": w, "system": "torch_compile", "run_s": cold["compiled_s"],
                     "cold_compile_s": cold["first_call_s"], "warm_start_s": warm["first_call_s"],
                     "gbps": gb(cold["compiled_s"]), "copy_ceiling_gbps": ceiling})
        print(f"{w}: torch eager {fmt_time(cold['eager_s'])}, compiled {fmt_time(cold['compiled_s'])}, "
              f"cold {fmt_time(cold['first_call_s'])}, warm {fmt_time(warm['first_call_s'])}", flush=True)
    path = os.path.join(a.out, f"compare_inductor_{datetime.date.today().isoformat()}.json")
    with open(path, "w") as f:
        json.dump(rows, f, indent=1)
    by = {(r["workload"], r["system"]): r for r in rows}
    print(f"\n{'workload':<12} {'kiln':>9} {'+graphs':>9} {'inductor':>9} {'torch':>9} {'kiln/ind':>8} "
          f"{'kiln %ceil':>10} {'ind %ceil':>9} {'kiln cold':>9} {'ind cold':>8} {'kiln warm':>9} {'ind warm':>8}")
    for w in workloads:
        kr, kg, ir, te = by[(w, "kiln")], by[(w, "kiln_cuda_graphs")], by[(w, "torch_compile")], by[(w, "torch_eager")]
        best = min(kr["run_s"], kg["run_s"])
        pct = lambda r: f"{100 * r['gbps'] / ceiling:.0f}%" if r.get("gbps") else "-"
        print(f"{w:<12} {fmt_time(kr['run_s']):>9} {fmt_time(kg['run_s']):>9} {fmt_time(ir['run_s']):>9} "
              f"{fmt_time(te['run_s']):>9} {ir['run_s'] / best:>7.2f}x {pct(kr):>10} {pct(ir):>9} "
              f"{fmt_time(kr['cold_compile_s']):>9} {fmt_time(ir['cold_compile_s']):>8} "
              f"{fmt_time(kr['warm_start_s']):>9} {fmt_time(ir['warm_start_s']):>8}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

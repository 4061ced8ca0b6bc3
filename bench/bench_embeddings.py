"""Embedding throughput and quality: ai_standards' generate_embeddings against plain SentenceTransformer.encode (fp32, batch 32).

Texts: the 1007 SP 800-53 Rev 5 control texts (../shared/data). Quality: cosine of each embedding to the fp32 reference, and
retrieval nDCG@10 (query: a control's title; relevant: that control's text). Every variant is loaded in ONE process and timed
in alternating turns (round-robin, the order rotated each round; best turn kept), so a noisy neighbour on a shared machine
slows all of them alike and the ratios to plain encode come from the same minutes. The machine's matmul ceiling (2048^2
matrices, torch, fp32 and bf16) is measured in the same run, before and after the turns (best kept), and each variant's
tokens/s is set against it: MiniLM's useful FLOPs per token (linear layers plus attention over each text's own length).
Beside the 2048^2 ceilings: MiniLM's own linear shapes in bf16, and its attention alone (SDPA on the batches the default
path forms), which together bound what any path built on PyTorch's kernels can reach here (pct_bf16_attainable); and the
same bound with this package's attention kernel in place of SDPA (pct_bf16_attainable_kernel), where the CPU runs it.
The default with torch's own attention and LayerNorm (AI_STANDARDS_KERNELS=torch) is timed beside it: before and after.
Small calls: the same texts shuffled into calls of 48 (as a classification or crosswalk call sends them), the reference
against the default path, timed in alternating turns.
Where the time goes: one profiled pass (torch profiler) of the reference and of the default path, by part of the encoder.
Run: python bench/bench_embeddings.py [--rounds 3]   -> bench/results/embeddings.{md,json}
"""
import argparse, json, os, time
from pathlib import Path
import numpy as np

VARIANTS = {
    'SentenceTransformer.encode fp32, batch 32 (reference)': dict(kind='st'),
    'SentenceTransformer.encode, bf16 autocast on CPU': dict(kind='st', bf16=True),
    "Embedder(backend='torch') fp32": dict(kind='embedder', backend='torch'),
    "Embedder() default (auto: the probe's pick)": dict(kind='embedder', backend='auto'),
    "Embedder() bf16 with torch's SDPA and LayerNorm (AI_STANDARDS_KERNELS=torch)": dict(kind='embedder', backend='torch-bf16', kernels='torch'),
    "Embedder(backend='onnx-int8')": dict(kind='embedder', backend='onnx-int8'),
}

def load_texts():
    from ai_standards.sample import shared_data_dir
    d = shared_data_dir()
    if d is None: raise SystemExit('NIST data not found: set AI_STANDARDS_DATA (see ../shared/data/README.md); nothing measured')
    recs = [json.loads(l) for l in open(d/'nist_sp800_53r5_controls.jsonl')]
    return [r['text'] for r in recs], [r['title'] for r in recs]

def make(name, st):
    "An encode function for variant `name` and the backend it runs."
    import torch
    cfg = VARIANTS[name]
    if cfg['kind'] == 'st':
        plain = lambda xs: st.encode(xs, batch_size=32, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
        if not cfg.get('bf16'): return plain, 'sentence-transformers fp32'
        def enc(xs):
            with torch.autocast('cpu', dtype=torch.bfloat16): return plain(xs)
        return enc, 'sentence-transformers bf16 autocast'
    from unittest.mock import patch
    from ai_standards.models import Embedder
    with patch.dict(os.environ, AI_STANDARDS_KERNELS=cfg.get('kernels', '')):  # read when the encoder is built
        m = Embedder(backend=cfg['backend'], cache=False, batch_size=32, device='cpu'); m.generate_embeddings(['warm up'])
    fast = m._fast_encoder(m.backend == 'torch-bf16') if m.backend.startswith('torch') else None
    return m.generate_embeddings, m.backend + (f' ({fast.kernels})' if fast else '')

def matmul_gflops(dtype, n=2048, reps=10):
    "Best GFLOP/s of an n x n matmul in `dtype` (torch, its default threads)."
    import torch
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(2): a @ b
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9

def minilm_gflops(tokens=4096, reps=10, workers=1):
    "Best bf16 GFLOP/s of MiniLM's own linear shapes (tokens x 384 -> 1152, 384, 1536 and 1536 -> 384), summed as a layer runs them, on `workers` one-thread workers (1: torch's threads)."
    import torch
    from ai_standards.models import _one_thread_map
    F = torch.nn.functional
    shapes = [(384, 1152), (384, 384), (384, 1536), (1536, 384)]
    xs = {k: torch.randn(tokens, k).bfloat16() for k, _ in shapes}
    ws = [torch.randn(o, k).bfloat16() for k, o in shapes]
    one = lambda _=None: [F.linear(xs[w.shape[1]], w) for w in ws]
    run = (lambda: _one_thread_map(one, range(workers), workers)) if workers > 1 else one
    run(); best = float('inf')
    for _ in range(reps):
        t = time.perf_counter(); run(); best = min(best, time.perf_counter() - t)
    return 2 * tokens * workers * sum(k * o for k, o in shapes) / best / 1e9

def attention_seconds(lengths, layers=6, batch=32, heads=12, width=32, reps=3, kernel=None):
    "Best seconds of SDPA (PyTorch's fused CPU attention, bf16), or of `kernel` (Bf16Kernels.attention), over the batches the default path forms, on its workers, padding masks on, for every layer."
    import torch
    from ai_standards.models import batch_plan, _one_thread_map
    plan, workers = batch_plan(lengths, batch, torch.get_num_threads())
    batches = [[lengths[j] for j in b] for b in plan]
    args = []
    for b in batches:
        if kernel:  # the fused projection's output and each text's length, as the default path passes them
            args.append((torch.randn(len(b) * b[0], 3 * heads * width).bfloat16(), torch.tensor(b, dtype=torch.int32)))
            continue
        q, k, v = (torch.randn(len(b), b[0], heads, width).bfloat16().transpose(1, 2) for _ in range(3))
        mask = (torch.arange(b[0])[None, :] < torch.tensor(b)[:, None])[:, None, None, :]
        args.append((q, k, v, None if min(b) == b[0] else mask))
    def attend(a):  # inference mode is per thread: entered in whichever thread runs the batch
        with torch.inference_mode():
            if kernel: return kernel.attention(a[0], a[1], len(a[1]), heads)
            return torch.nn.functional.scaled_dot_product_attention(a[0], a[1], a[2], attn_mask=a[3])
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter()
        if workers > 1: _one_thread_map(attend, args, workers)
        else: [attend(a) for a in args]
        best = min(best, time.perf_counter() - t)
    return best * layers, len(batches), workers

def flops(lengths, cfg, part='all'):
    "Useful FLOPs of the encoder over texts of these token lengths: linear layers, attention, or 'all' (no padding)."
    h, i, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    lengths = np.asarray(lengths, np.float64)
    linear, attention = layers * 2 * (4 * h * h + 2 * h * i) * lengths.sum(), layers * 4 * h * (lengths ** 2).sum()
    return float(dict(all=linear + attention, linear=linear, attention=attention)[part])

OP_GROUPS = [('linear layers', ('linear', 'addmm', 'aten::mm', 'matmul')),
             ('attention', ('scaled_dot_product', 'flash_attention', 'bmm', 'softmax', 'cpu_attention')),
             ('layer norm', ('layer_norm',)), ('GELU', ('gelu',)), ('embedding lookup', ('embedding', 'index_select')),
             ('casts and copies', ('copy_', '_to_copy', 'aten::to', 'clone', 'contiguous'))]
OTHER_OPS, OUTSIDE_OPS = 'other tensor ops (adds, masks, pooling)', 'outside torch ops (tokenization, Python, batching)'
PARTS = [g for g, _ in OP_GROUPS] + [OTHER_OPS, OUTSIDE_OPS]  # the rows of the breakdown, in order

def op_group(op:str) -> str:
    "The part of the encoder a profiled torch op belongs to."
    return next((g for g, keys in OP_GROUPS if any(k in op for k in keys)), OTHER_OPS)

def where_time_goes(fn, texts, threads=1) -> dict:
    "Thread-seconds of one pass of `fn` over `texts` by part of the encoder (torch profiler on all threads, self CPU time), and the rest of `threads` x wall outside torch ops."
    from torch.profiler import profile, ProfilerActivity
    from torch._C._profiler import _ExperimentalConfig
    t = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], experimental_config=_ExperimentalConfig(profile_all_threads=True)) as p: fn(texts)
    wall, parts = time.perf_counter() - t, {}
    for e in p.key_averages(): parts[op_group(e.key)] = parts.get(op_group(e.key), 0) + e.self_cpu_time_total / 1e6
    parts[OUTSIDE_OPS] = max(threads * wall - sum(parts.values()), 0)
    return dict(wall=wall, threads=threads, parts=parts)

def breakdown_table(profiles:dict) -> str:
    "Markdown: seconds and share of each part, one column pair per profiled variant."
    names = list(profiles)
    head = '| part | ' + ' | '.join(f'{n}: s | %' for n in names) + ' |'
    whole = {n: profiles[n]['wall'] * profiles[n]['threads'] for n in names}
    rows = [f"| {g} | " + ' | '.join(f"{profiles[n]['parts'].get(g, 0):.2f} | {100 * profiles[n]['parts'].get(g, 0) / whole[n]:.0f}" for n in names) + ' |' for g in PARTS]
    total = '| whole pass (profiler on): wall x calling threads | ' + ' | '.join(f"{whole[n]:.2f} | 100" for n in names) + ' |'
    return '\n'.join([head, '|---|' + '---|---|' * len(names)] + rows + [total])

def ndcg10(q, e):
    from sklearn.metrics import ndcg_score
    return float(ndcg_score(np.eye(len(q)), q @ e.T, k=10))

def main(rounds):
    import torch
    from sentence_transformers import SentenceTransformer
    from ai_standards.chunking import load_tokenizer
    from ai_standards.models import default_model_path
    texts, titles = load_texts()
    tok = load_tokenizer(); tok.enable_truncation(256)
    lengths = [len(x.ids) for x in tok.encode_batch(texts)]
    st = SentenceTransformer(default_model_path(), device='cpu')
    cfg = st[0].auto_model.config
    work = flops(lengths, cfg)
    from ai_standards.models import bf16_kernels
    kernel = bf16_kernels(cfg.hidden_size // cfg.num_attention_heads)
    attention = lambda k=None: attention_seconds(lengths, cfg.num_hidden_layers, heads=cfg.num_attention_heads,
                                                 width=cfg.hidden_size // cfg.num_attention_heads, kernel=k)
    attn_s, n_batches, workers = attention()  # workers: the default path's one-thread workers on this call
    kern_s = attention(kernel)[0] if kernel else None
    shapes = lambda: max(minilm_gflops(), minilm_gflops(workers=workers))  # the linear layers' best, either way
    ceiling = {'fp32': matmul_gflops(torch.float32), 'bf16': matmul_gflops(torch.bfloat16), 'bf16_minilm_shapes': shapes()}
    load = [os.getloadavg()[0]]
    encs, quality = {}, {}
    for name in VARIANTS:  # load, warm up, and embed once for quality (texts, then titles as queries)
        fn, backend = make(name, st); fn(texts[:8])
        encs[name] = (fn, backend); quality[name] = (fn(texts), fn(titles))
    times = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter(); encs[name][0](texts); times[name].append(time.perf_counter() - t)
        print(f'round {r + 1}:', {n[:30]: round(times[n][-1], 2) for n in names}, flush=True)
    for k, dt in (('fp32', torch.float32), ('bf16', torch.bfloat16)): ceiling[k] = max(ceiling[k], matmul_gflops(dt))
    ceiling['bf16_minilm_shapes'] = max(ceiling['bf16_minilm_shapes'], shapes())
    attn_s = min(attn_s, attention()[0])
    ceiling['bf16_attention'] = flops(lengths, cfg, 'attention') / attn_s / 1e9
    linear_s = flops(lengths, cfg, 'linear') / ceiling['bf16_minilm_shapes'] / 1e9  # linears at their shapes' rate
    ceiling['bf16_attainable'] = work / (linear_s + attn_s) / 1e9
    if kernel:  # the same bound with this package's attention kernel in place of SDPA
        kern_s = min(kern_s, attention(kernel)[0])
        ceiling['bf16_attention_kernel'] = flops(lengths, cfg, 'attention') / kern_s / 1e9
        ceiling['bf16_attainable_kernel'] = work / (linear_s + kern_s) / 1e9
    profiled = [names[0], next(n for n in names if 'default' in n)]  # before (plain encode) and after (the default path)
    calls = [list(c) for c in np.array_split(np.random.default_rng(0).permutation(len(texts)), len(texts) // 48)]
    small = {n: [] for n in profiled}
    for r in range(rounds):  # small calls of mixed lengths: each call's batches span its lengths
        for n in (profiled if r % 2 == 0 else profiled[::-1]):
            t = time.perf_counter(); [encs[n][0]([texts[j] for j in c]) for c in calls]; small[n].append(time.perf_counter() - t)
    profiles = {n: where_time_goes(encs[n][0], texts, workers if n == profiled[1] else 1) for n in profiled}
    load.append(os.getloadavg()[0])
    ref_e, ref_q = quality[names[0]]
    rows = []
    for name in names:
        e, q = quality[name]; cos = (e * ref_e).sum(1); s = min(times[name])
        gflops = work / s / 1e9
        rows.append(dict(variant=name, backend=encs[name][1], seconds=round(s, 2), seconds_all=[round(x, 2) for x in times[name]],
                         tokens_per_s=round(sum(lengths) / s), gflops=round(gflops, 1),
                         pct_fp32_ceiling=round(100 * gflops / ceiling['fp32']), pct_bf16_ceiling=round(100 * gflops / ceiling['bf16']),
                         pct_bf16_minilm_shapes=round(100 * gflops / ceiling['bf16_minilm_shapes']),
                         pct_bf16_attainable=round(100 * gflops / ceiling['bf16_attainable']),
                         pct_bf16_attainable_kernel=round(100 * gflops / ceiling['bf16_attainable_kernel']) if kernel else None,
                         cos_min=round(float(cos.min()), 4), cos_mean=round(float(cos.mean()), 4), ndcg10=round(ndcg10(q, e), 4)))
    base = rows[0]
    for r in rows:
        r['x_plain'] = round(base['seconds'] / r['seconds'], 2)
        r['ndcg10_vs_ref_pct'] = round(100 * (r['ndcg10'] - base['ndcg10']) / base['ndcg10'], 2)
    cols = ['variant', 'backend', 'seconds', 'tokens_per_s', 'x_plain', 'pct_fp32_ceiling', 'pct_bf16_ceiling', 'pct_bf16_minilm_shapes',
            'pct_bf16_attainable', 'pct_bf16_attainable_kernel', 'cos_min', 'cos_mean', 'ndcg10', 'ndcg10_vs_ref_pct']
    table = '\n'.join(['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)] + ['| ' + ' | '.join(str(r[c]) for c in cols) + ' |' for r in rows])
    tps = {k: round(v * 1e9 / (work / sum(lengths))) for k, v in ceiling.items()}
    note = (f'\n\n{len(texts)} SP 800-53 Rev 5 control texts, {sum(lengths)} tokens after truncation to 256 '
            f'({work / sum(lengths) / 1e6:.1f} MFLOP a token); {os.cpu_count()} CPU cores, torch {torch.get_num_threads()} threads, '
            f'load average {load[0]:.1f} before the turns and {load[1]:.1f} after (other processes share the cores). '
            f"Matmul ceiling measured in this run (2048², torch): {ceiling['fp32']:.0f} GFLOP/s fp32, {ceiling['bf16']:.0f} bf16, "
            f"i.e. {tps['fp32']} and {tps['bf16']} tokens/s. MiniLM's own linear shapes (4096 tokens x 384/1152/1536, bf16) reach "
            f"{ceiling['bf16_minilm_shapes']:.0f} GFLOP/s here ({tps['bf16_minilm_shapes']} tokens/s; the better of torch's {torch.get_num_threads()} threads on one batch and {workers} one-thread workers side by side): the most its matmuls can give on this machine. "
            f"Attention is {100 * flops(lengths, cfg, 'attention') / work:.0f}% of the FLOPs, and PyTorch's fused attention alone (SDPA, bf16, "
            f"{cfg.num_attention_heads} heads {cfg.hidden_size // cfg.num_attention_heads} wide, {cfg.num_hidden_layers} layers, on the {n_batches} batches the default path forms, on its {workers} one-thread workers, with their padding masks) takes {attn_s:.2f} s, "
            f"{ceiling['bf16_attention']:.0f} GFLOP/s: "
            f"with the linear layers at their shapes' rate and attention at SDPA's, the encoder can reach {ceiling['bf16_attainable']:.0f} "
            f"GFLOP/s ({tps['bf16_attainable']} tokens/s, {100 * ceiling['bf16_attainable'] / ceiling['bf16']:.0f}% of the 2048² bf16 ceiling; "
            f"column pct_bf16_attainable). "
            + (f"This package's attention kernel (ai_standards.models.bf16_kernels: C, AVX512-BF16, compiled on first use) on the same batches and workers takes {kern_s:.2f} s, "
               f"{ceiling['bf16_attention_kernel']:.0f} GFLOP/s: with it in place of SDPA the bound is {ceiling['bf16_attainable_kernel']:.0f} GFLOP/s, "
               f"{100 * ceiling['bf16_attainable_kernel'] / ceiling['bf16']:.0f}% of the bf16 ceiling (column pct_bf16_attainable_kernel). "
               if kernel else "This CPU does not run this package's bf16 kernels (AVX512-BF16 and a C compiler needed): the default uses SDPA. ")
            + f"Each variant timed {rounds} times in alternating turns; best turn shown "
            '(all turns in embeddings.json). One warm-up call before timing; embedding cache off. '
            'nDCG@10: the control title as query, its own text as the one relevant passage.\n')
    sm = {n: min(v) for n, v in small.items()}
    note += (f'\n## Small calls\n\nThe same {len(texts)} texts shuffled (seed 0) into {len(calls)} calls of about 48 texts, as a classification, '
             f"crosswalk or coverage call sends them, so each call's batches span short and long texts; best of {rounds} alternating turns.\n\n"
             '| variant | seconds | tokens_per_s | x_plain |\n|---|---|---|---|\n'
             + ''.join(f'| {n} | {sm[n]:.2f} | {sum(lengths) / sm[n]:.0f} | {sm[profiled[0]] / sm[n]:.2f} |\n' for n in profiled))
    note += ('\n## Where the time goes\n\nOne more pass of the reference and of the default path under the torch profiler (self CPU time '
             'of its ops, grouped by the part of the encoder they serve; the rest of the wall time is outside torch ops: tokenization, '
             f'Python, batching, and workers waiting). The default path runs on {workers} one-thread workers: its seconds are thread-seconds, its '
             'shares of wall time x workers. The profiler adds some overhead, so read the shares rather than the seconds.\n\n'
             + breakdown_table({n.split(' (')[0].split(',')[0]: profiles[n] for n in profiled}) + '\n')
    out = Path(__file__).parent/'results'
    (out/'embeddings.md').write_text('# Embedding benchmark\n\n' + table + note)
    (out/'embeddings.json').write_text(json.dumps(dict(rows=rows, ceiling_gflops={k: round(v, 1) for k, v in ceiling.items()},
                                                      ceiling_tokens_per_s=tps, tokens=sum(lengths), rounds=rounds,
                                                      small_calls=dict(calls=len(calls), seconds_all={n: [round(x, 2) for x in v] for n, v in small.items()}),
                                                      load_average=load, where_time_goes={n: dict(wall=round(v['wall'], 3), parts={k: round(x, 3) for k, x in v['parts'].items()}) for n, v in profiles.items()}), indent=1))
    print(table + note)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(); ap.add_argument('--rounds', type=int, default=3)
    main(ap.parse_args().rounds)

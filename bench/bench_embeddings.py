"""Embedding throughput and quality: ai_standards' generate_embeddings against plain SentenceTransformer.encode (fp32, batch 32).

Texts: the 1007 SP 800-53 Rev 5 control texts (../shared/data). Quality: cosine of each embedding to the fp32 reference, and
retrieval nDCG@10 (query: a control's title; relevant: that control's text). Each variant runs in its own process so peak memory
is its own. Run: python bench/bench_embeddings.py   -> bench/results/embeddings.{md,json}
"""
import json, os, resource, subprocess, sys, time
from pathlib import Path
import numpy as np

VARIANTS = {
    'SentenceTransformer.encode fp32, batch 32 (reference)': dict(kind='st'),
    'SentenceTransformer.encode, bf16 autocast on CPU': dict(kind='st', bf16=True),
    "Embedder(backend='torch') fp32": dict(kind='embedder', backend='torch'),
    "Embedder() default (auto: bf16 when the probe finds it faster)": dict(kind='embedder', backend='auto'),
    "Embedder(backend='onnx-int8')": dict(kind='embedder', backend='onnx-int8'),
    "Embedder(backend='onnx-int8'), batch 64": dict(kind='embedder', backend='onnx-int8', batch_size=64),
}

def load_texts():
    from ai_standards.sample import shared_data_dir
    d = shared_data_dir()
    if d is None: sys.exit('NIST data not found: set AI_STANDARDS_DATA (see ../shared/data/README.md); nothing measured')
    recs = [json.loads(l) for l in open(d/'nist_sp800_53r5_controls.jsonl')]
    return [r['text'] for r in recs], [r['title'] for r in recs]

def child(name, out):
    "Run one variant; write its embeddings (texts then titles) and timing to `out`."
    import torch
    cfg = VARIANTS[name]; texts, titles = load_texts()
    if cfg['kind'] == 'st':
        from sentence_transformers import SentenceTransformer
        from ai_standards.models import default_model_path
        m = SentenceTransformer(default_model_path(), device='cpu')
        enc = lambda xs: m.encode(xs, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        if cfg.get('bf16'):
            def enc(xs):
                with torch.autocast('cpu', dtype=torch.bfloat16): return m.encode(xs, batch_size=32, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
        enc(texts[:8])
        t = time.perf_counter(); e = enc(texts); dt = time.perf_counter() - t
        q = enc(titles)
    else:
        from ai_standards.models import Embedder
        m = Embedder(backend=cfg['backend'], cache=False, batch_size=cfg.get('batch_size', 32), device='cpu')
        m.generate_embeddings(texts[:8])
        t = time.perf_counter(); e = m.generate_embeddings(texts); dt = time.perf_counter() - t
        q = m.generate_embeddings(titles)
    np.save(out, np.concatenate([e, q]))
    print(json.dumps(dict(seconds=dt, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))

def ndcg10(q, e):
    from sklearn.metrics import ndcg_score
    scores = q @ e.T
    return float(ndcg_score(np.eye(len(q)), scores, k=10))

def main():
    from ai_standards.chunking import load_tokenizer
    texts, titles = load_texts()
    tok = load_tokenizer(); tok.enable_truncation(256)
    n_tokens = sum(len(x.ids) for x in tok.encode_batch(texts))
    work = Path(__file__).parent/'_work'; work.mkdir(exist_ok=True)
    rows, ref = [], None
    for name in VARIANTS:
        out = work/f'emb_{abs(hash(name))}.npy'
        r = subprocess.run([sys.executable, __file__, '--child', name, str(out)], capture_output=True, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
        if r.returncode: print(r.stderr[-3000:]); sys.exit(f'{name} failed')
        m = json.loads(r.stdout.strip().splitlines()[-1]); x = np.load(out); e, q = x[:len(texts)], x[len(texts):]
        if ref is None: ref = (e, q)
        cos = (e * ref[0]).sum(1)
        rows.append(dict(variant=name, seconds=round(m['seconds'], 2), tokens_per_s=round(n_tokens / m['seconds']), peak_rss_mb=round(m['peak_rss_mb']),
                         cos_min=round(float(cos.min()), 4), cos_mean=round(float(cos.mean()), 4), ndcg10=round(ndcg10(q, e), 4)))
    base = rows[0]
    for r in rows:
        r['speedup'] = round(r['tokens_per_s'] / base['tokens_per_s'], 2)
        r['ndcg10_vs_ref_pct'] = round(100 * (r['ndcg10'] - base['ndcg10']) / base['ndcg10'], 2)
    cols = ['variant', 'seconds', 'tokens_per_s', 'speedup', 'cos_min', 'cos_mean', 'ndcg10', 'ndcg10_vs_ref_pct', 'peak_rss_mb']
    table = '\n'.join(['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)] + ['| ' + ' | '.join(str(r[c]) for c in cols) + ' |' for r in rows])
    print(table)
    note = (f'\n\n{len(texts)} SP 800-53 Rev 5 control texts, {n_tokens} tokens after truncation to 256; {os.cpu_count()} CPU cores; '
            'one warm-up call before timing; embedding cache off. nDCG@10: the control title as query, its own text as the one relevant passage.\n')
    (Path(__file__).parent/'results'/'embeddings.md').write_text('# Embedding benchmark\n\n' + table + note)
    (Path(__file__).parent/'results'/'embeddings.json').write_text(json.dumps(rows, indent=1))

if __name__ == '__main__':
    if sys.argv[1:2] == ['--child']: child(sys.argv[2], sys.argv[3])
    else: main()

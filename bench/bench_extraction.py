"""PDF extraction speed and yield: ai_standards (PDFium, parallel, cleaned) against pypdf, on the 17 shared NIST PDFs.

Run: python bench/bench_extraction.py   (reads $AI_STANDARDS_DATA or ../shared/data; writes bench/results/extraction.{md,json})
"""
import json, os, re, sys, time
from pathlib import Path
from ai_standards.sample import shared_data_dir
from ai_standards.documents import read_documents, read_pdf_pages, IngestReport

def real_chars(text): return len(re.findall(r'\w', text))  # letters and digits: the "real text", whitespace and bullets aside

def run_pypdf(files):
    from pypdf import PdfReader
    pages = chars = 0
    for f in files:
        for p in PdfReader(f).pages: pages += 1; chars += real_chars(p.extract_text() or '')
    return pages, chars

def run_pdfium_raw(files):
    pages = chars = 0
    for f in files:
        ps, _ = read_pdf_pages(f); pages += len(ps); chars += sum(map(real_chars, ps))
    return pages, chars

def run_pipeline(folder, workers):
    rep = IngestReport(); chars = 0
    for d in read_documents([folder], workers=workers, progress=False, report=rep): chars += sum(map(real_chars, d.pages))
    assert not rep.failures, rep.failures
    return rep.pages, chars

def timed(fn, *a, repeat=3):
    best = None
    for _ in range(repeat):
        t = time.perf_counter(); out = fn(*a); dt = time.perf_counter() - t
        best = dt if best is None or dt < best else best
    return out, best

def main():
    data = shared_data_dir()
    if data is None: sys.exit('NIST data not found: set AI_STANDARDS_DATA (see ../shared/data/README.md); nothing measured')
    folder = data/'pdfs'; files = sorted(folder.glob('*.pdf'))
    rows = []
    for name, fn, args, rep in [('pypdf (extract_text, 1 process)', run_pypdf, (files,), 1),
                                ('ai_standards raw PDFium (1 process)', run_pdfium_raw, (files,), 3),
                                ('ai_standards read_documents (1 worker, cleaned)', run_pipeline, (folder, 1), 3),
                                (f'ai_standards read_documents ({os.cpu_count()} workers, cleaned)', run_pipeline, (folder, os.cpu_count()), 3)]:
        (pages, chars), dt = timed(fn, *args, repeat=rep)
        rows.append(dict(extractor=name, pages=pages, seconds=round(dt, 3), pages_per_s=round(pages/dt, 1), real_chars_per_page=round(chars/pages, 1)))
    base = rows[0]['pages_per_s']
    for r in rows: r['speedup_vs_pypdf'] = round(r['pages_per_s']/base, 1)
    head = '| extractor | pages | seconds (best of runs) | pages/s | × pypdf | real chars/page |\n|---|---|---|---|---|---|'
    lines = [head] + [f"| {r['extractor']} | {r['pages']} | {r['seconds']} | {r['pages_per_s']} | {r['speedup_vs_pypdf']} | {r['real_chars_per_page']} |" for r in rows]
    table = '\n'.join(lines)
    print(table)
    out = Path(__file__).parent/'results'; out.mkdir(exist_ok=True)
    note = (f"\n\n17 NIST PDFs ({rows[0]['pages']} pages) from {folder}; {os.cpu_count()} CPU cores. 'real chars' counts letters and digits "
            "(regex \\w) of the extracted text; the cleaned pipeline also drops running headers, footers and page numbers, so it can be "
            "slightly below the raw count.\n")
    (out/'extraction.md').write_text('# PDF extraction benchmark\n\n' + table + note)
    (out/'extraction.json').write_text(json.dumps(rows, indent=1))

if __name__ == '__main__': main()

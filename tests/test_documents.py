"Ingestion end to end: the sample corpus, the NIST PDFs and JSONL, and bad input mixed with good."
import csv, json
from pathlib import Path
import pytest
from fpdf import FPDF
from ai_standards.documents import IngestReport, read_documents, DocumentError, load_document
from ai_standards.chunking import Chunker, process_documents, check_chunks

def test_sample_corpus_labels_and_chunks(sample_pdfs):
    rep = IngestReport()
    docs = process_documents([sample_pdfs], report=rep, progress=False)
    assert rep.failures == [] and len(docs) == 30 and rep.pages == 60
    assert len({d['label'] for d in docs}) == 10
    chunks = [c for d in docs for c in d['chunks']]
    assert all(c['n_tokens'] <= 256 for c in chunks)
    assert sum(c['clause'] is not None for c in chunks) == len(chunks)
    assert {c['normative_level'] for c in chunks} >= {'requirement', 'informative'}
    again = process_documents([sample_pdfs], progress=False, workers=1)
    assert [c['id'] for d in again for c in d['chunks']] == [c['id'] for c in chunks], 'ids must be stable, serial or parallel'

def _bad_files(folder:Path, good:bytes):
    (folder/'empty.pdf').write_bytes(b'')
    (folder/'not_a_pdf.pdf').write_text('PK\x03\x04 a zip file, really')
    (folder/'corrupt.pdf').write_bytes(good[:200] + b'\x00garbage' * 50)
    (folder/'empty.txt').write_text('   \n')
    (folder/'binary.txt').write_bytes(b'\x00\x01\x02' * 100)
    enc = FPDF(); enc.add_page(); enc.set_font('Helvetica'); enc.cell(text='secret text'); enc.set_encryption(owner_password='o', user_password='u')
    enc.output(str(folder/'encrypted.pdf'))
    scan = FPDF(); scan.add_page(); scan.rect(10, 10, 150, 200, style='F'); scan.output(str(folder/'scanned.pdf'))
    (folder/'records.jsonl').write_text('{"id": "a", "text": "The operator shall log in.", "label": "X"}\n{broken\n{"id": "b"}\n')

def test_bad_input_reported_and_rest_goes_on(tmp_path, sample_pdfs):
    good = (sample_pdfs/'privacy'/'PRIV-201.pdf').read_bytes()
    _bad_files(tmp_path, good)
    (tmp_path/'good.pdf').write_bytes(good); (tmp_path/'notes.docx').write_bytes(b'PK')
    rep = IngestReport()
    docs = list(read_documents([tmp_path, tmp_path/'missing.pdf', tmp_path/'notes.docx'], report=rep, progress=False))
    assert sorted(d.doc_id for d in docs if d.kind == 'jsonl') == ['records:a']
    assert [d.title for d in docs if d.kind == 'pdf'] == ['SSC-PRIV 201 Privacy Information Management - Requirements']
    reasons = {Path(p).name: r for p, r in rep.failures}
    assert reasons['empty.pdf'] == 'empty file (0 bytes)'
    assert reasons['not_a_pdf.pdf'].startswith('not a PDF')
    assert reasons['corrupt.pdf'].startswith('corrupt or unreadable PDF')
    assert reasons['encrypted.pdf'] == 'encrypted PDF: a password is needed to open it'
    assert reasons['scanned.pdf'].startswith('no extractable text')
    assert reasons['empty.txt'].startswith('no text')
    assert reasons['binary.txt'].startswith('binary file')
    assert reasons['records.jsonl:2'].startswith('invalid JSON')
    assert reasons['records.jsonl:3'] == 'record has no "text" text'
    assert reasons['missing.pdf'] == 'no such file or folder'
    assert reasons['notes.docx'].startswith('unsupported file type')
    summary = rep.summary()
    assert all(name in summary for name in reasons), summary

def test_load_document_raises_with_path(tmp_path):
    (tmp_path/'x.pdf').write_bytes(b'')
    with pytest.raises(DocumentError) as e: load_document(tmp_path/'x.pdf')
    assert str(tmp_path/'x.pdf') in str(e.value) and 'empty file' in str(e.value)

def test_nist_pdfs_ingest_without_failures(nist_data):
    rep = IngestReport(); chunker = Chunker()
    docs = list(read_documents([nist_data/'pdfs'], report=rep, progress=False))
    assert rep.failures == [] and len(docs) == 17 and rep.pages == 1170
    with open(nist_data/'pdfs'/'manifest.csv', newline='') as f: manifest = {r['file']: r['category'] for r in csv.DictReader(f)}
    for d in docs:
        assert d.label == manifest[Path(d.source).name]
        assert not any(0xe000 <= ord(ch) <= 0xf8ff for p in d.pages for ch in p), d.source
    fips = next(d for d in docs if d.source.endswith('FIPS.199.pdf'))
    check_chunks(fips, chunker(fips), chunker)

def test_nist_jsonl_records(nist_data):
    rep = IngestReport()
    docs = process_documents([nist_data/'nist_sp800_53r5_controls.jsonl'], report=rep, label_field='family', progress=False)
    assert rep.failures == [] and len(docs) == 1007
    assert len({d['label'] for d in docs}) == 20
    ac2 = next(d for d in docs if d['doc_id'].endswith(':ac-2'))
    assert ac2['chunks'][0]['clause'] == 'AC-2' and ac2['chunks'][0]['heading'] == 'Account Management'
    assert next(d for d in docs if d['doc_id'].endswith(':ac-2.1'))['metadata']['parent'] == 'ac-2'

def test_nist_oscal_catalog_reads_as_the_jsonl(nist_data):
    "The shared Rev 5 OSCAL catalog, read as documents: the JSONL's 1,007 records, families, parents and chunks."
    rep = IngestReport()
    docs = process_documents([nist_data/'raw'/'NIST_SP-800-53_rev5_catalog.json'], report=rep, progress=False)
    recs = {json.loads(l)['id']: json.loads(l) for l in open(nist_data/'nist_sp800_53r5_controls.jsonl')}
    assert rep.failures == [] and len(docs) == len(recs) == 1007
    for d in docs:
        r, m = recs[d['metadata']['record_id']], d['metadata']
        assert (d['label'], d['kind'], m['parent'], m['statement'], m['family_title']) == \
               (r['family'], 'catalog', r['parent'], r['statement'], r['family_title']), r['id']
    assert sum(len(d['chunks']) for d in docs) == 1235  # as many as the JSONL gives
    ac2 = next(d for d in docs if d['doc_id'].endswith(':ac-2'))
    assert ac2['chunks'][0]['clause'] == 'AC-2' and ac2['chunks'][0]['heading'] == 'Account Management'

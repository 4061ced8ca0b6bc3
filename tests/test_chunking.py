"""Chunking facts that must not drift: pinned chunk ids (a change re-embeds every stored chunk), clause detection on
headings as real standards print them and as they come back out of a PDF, and the normative level of each verbal form."""
import pytest
from ai_standards.chunking import Chunker, chunk_id, document_record, find_contents, find_sections, match_heading, normative_level
from ai_standards.documents import Document, load_document

# The id formula: sha256 of 'DOC_SHA256:CHAR_START:TEXT', first 32 hex digits. If the formula changes (for example to
# include the source path), these pins must be updated in the same commit, and the change announced: every store re-embeds.
def test_chunk_id_is_pinned():
    assert chunk_id('a'*64, 0, 'x') == '0715c0281d5cb48cd9dc1c00feee1c68'
    assert chunk_id('a'*64, 1, 'x') != chunk_id('a'*64, 0, 'x') != chunk_id('b'*64, 0, 'x')

def test_chunker_output_is_pinned():
    "A fixed text and the default settings give fixed chunks, ids and signature (tokenizer, 256 tokens, overlap 32, min 24, text rules 4)."
    ch = Chunker()
    assert ch.signature == '9114256b104c/256/32/24/r4'
    d = Document('d', 'd.txt', '0'*64, 'D', ['Intro text.\n1 Scope\nThis document applies to every system that stores personal data.\n'
                                              '1.1 Terms\nWords shall mean what they say.', '1.2.1 The user shall log in.'])
    got = [(c['id'], c['clause'], c['heading'], c['char_start'], c['page_start'], c['normative_level']) for c in ch(d)]
    assert got == [('17e4f5645577856ec79ce10eb915cc13', '1.1', 'Terms', 0, 1, 'requirement'),  # intro and "1 Scope" fold into 1.1
                   ('d5573ec0db8aa7bfce1679e15b55d3ed', '1.2.1', None, 128, 2, 'requirement')]  # not under 1.1: no heading

@pytest.mark.parametrize('line,expected', [
    ('2. Background', ('2', 'Background')),
    ('3.1 Timing, Prioritization, and Testing', ('3.1', 'Timing, Prioritization, and Testing')),
    ('10.2 Nonconformity and corrective action', ('10.2', 'Nonconformity and corrective action')),
    ('5.3 Organizational roles, responsibilities and authorities', ('5.3', 'Organizational roles, responsibilities and authorities')),
    ('SI-2 FLAW REMEDIATION', ('SI-2', 'FLAW REMEDIATION')),
    ('AC-2 (4) AUTOMATED AUDIT ACTIONS', ('AC-2 (4)', 'AUTOMATED AUDIT ACTIONS')),
    ('Annex A (normative) Reference control objectives and controls', ('Annex A', '(normative) Reference control objectives and controls')),
    ('Appendix B\u2014Acronyms', ('Appendix B', 'Acronyms')),
    ('Chapter 2 The Risk Management Framework', ('Chapter 2', 'The Risk Management Framework')),
    ('6.1.2 The organization shall define and apply an information security risk assessment process.', ('6.1.2', None)),
    ('3.2 Key management ....... 12', None),  # table of contents
    ('5.1 Preparation ... 5-1', None),  # a contents line with an appendix-style page number, leaders already collapsed
    ('4 Do you work for a system administrator? ... Yes No', None),  # a form line
    ('Table 2: Patch types', None),
    ('2019 Annual report', None),
    ('1 1 Scope', None),
])
def test_real_heading_shapes(line, expected):
    assert match_heading(line) == expected

def test_sections_of_a_numbered_standard():
    "Headings and untitled numbered clauses as a text extraction lays them out; an untitled clause keeps its parent's heading."
    d = Document('s', 's.txt', '0'*64, 'S', ['Foreword text.\n4 Context of the organization\n4.1 Understanding the organization\nText.\n'
                                              '4.1.1 The organization shall determine external issues.\n5 Leadership\nText.\n'
                                              '5.1.2 Top management shall demonstrate commitment.'])
    assert [(c, h) for _, c, h in find_sections(d)] == [(None, None), ('4', 'Context of the organization'), ('4.1', 'Understanding the organization'),
                                                       ('4.1.1', 'Understanding the organization'), ('5', 'Leadership'), ('5.1.2', 'Leadership')]

def test_clauses_from_a_rendered_pdf(sample_pdfs):
    "The headings of a sample standard survive PDF rendering, extraction and cleaning: every chunk's clause, heading and page."
    doc = load_document(sample_pdfs/'information_security'/'ISEC-102.pdf', label='information_security')
    got = [(c['clause'], c['heading'], c['page_start'], c['normative_level']) for c in Chunker()(doc)]
    assert got == [('1', 'Scope', 1, 'informative'), ('2.1', 'Access control policy', 1, 'requirement'),
                   ('2.2', 'User registration and de-registration', 1, 'requirement'), ('2.3', 'Privileged access rights', 1, 'requirement'),
                   ('2.4', 'Authentication', 1, 'requirement'), ('2.5', 'Review of access rights', 2, 'requirement'),
                   ('3.1', 'Policy on the use of cryptographic controls', 2, 'requirement'), ('3.2', 'Key management', 2, 'requirement'),
                   ('3.3', 'Encryption in transit', 2, 'requirement')]

def test_contents_listing_of_a_rendered_pdf(tmp_path):
    "A table of contents survives rendering as dot-leader lines; the chunker leaves it out and the record says where it was."
    from ai_standards.sample import render_markdown_pdf
    md = tmp_path/'toc.md'
    md.write_text('# Password Standard\nTable of Contents\n1 Scope ........................ 1\n'
                  '2 Requirements ................. 1\n2.1 Length ..................... 2\n2.2 Storage .................... 2\n'
                  '## 1 Scope\nThis standard applies to every account that signs in to a company system, whether it belongs to '
                  'a person, a service or a shared device.\n'
                  '## 2 Requirements\n### 2.1 Length\nPasswords shall be at least fifteen characters long, and systems shall '
                  'accept passwords of up to sixty-four characters.\n'
                  '### 2.2 Storage\nPasswords shall be stored only as salted hashes made with a memory-hard function, never '
                  'in a form that can be reversed.\n')
    doc = load_document(render_markdown_pdf(md, tmp_path/'toc.pdf'))
    chunks = Chunker()(doc)
    assert not any('...' in c['text'] for c in chunks), [c['text'] for c in chunks]
    # the title lines before the listing stay apart (no clause), not folded into clause 1 across the listing
    assert [(c['clause'], c['heading']) for c in chunks] == [(None, None), ('1', 'Scope'), ('2.1', 'Length'), ('2.2', 'Storage')]
    (skipped,) = document_record(doc, chunks)['skipped']
    listing = doc.text[skipped['char_start']:skipped['char_end']]
    assert skipped['reason'] == 'contents' and listing.startswith('Table of Contents') and listing.endswith('2.2 Storage ... 2')

def test_find_contents_ignores_body_ellipses():
    "Prose with an ellipsis and a lone contents-like line are not listings."
    assert find_contents('The steps 1, 2, ... 5\nare repeated.\nSee Annex B ... 4\nText.\nMore text.\nEven more.\nAnnex C ... 9') == []

def test_nist_pdf_headings_are_not_page_furniture(nist_data):
    "On the 17 NIST PDFs no chunk's heading is a contents line or a page header, and neither stays in the text."
    import re
    from ai_standards.chunking import process_documents
    docs = process_documents([nist_data/'pdfs'], Chunker(), progress=False)
    chunks = [c for d in docs for c in d['chunks']]
    headings = {c['heading'] for c in chunks if c['heading']}
    assert len(docs) == 17 and len(headings) > 500
    assert not [h for h in headings if '...' in h or re.fullmatch(r'(?i)page\s+\S+', h)]
    assert not [c['id'] for c in chunks if re.search(r'(?im)^(?:chapter|appendix)\s+\w{1,3}\s+page\s+\S+$', c['text'])]
    leader = re.compile(r'\s\.\.\.\s(?:[A-Z\d]{1,2}(?:\.\d{1,2})?-)?(?:\d{1,4}|[ivxlc]{1,7})$')
    assert not [c['id'] for c in chunks if any(leader.search(l) for l in c['text'].split('\n'))]  # no contents line in a chunk
    assert all(any(s['reason'] == 'contents' for s in d['skipped']) for d in docs)  # every one has a listing, recorded

@pytest.mark.parametrize('text,level', [
    ('Staff shall not share keys.', 'requirement'), ('Staff must not share keys.', 'requirement'),
    ('An audit trail is REQUIRED.', 'requirement'), ('Keys should not be reused.', 'recommendation'),
    ('Encryption is RECOMMENDED.', 'recommendation'), ('Data need not be encrypted.', 'permission'),
    ('Compression is OPTIONAL.', 'permission'), ('It is required reading.', 'informative'),
    ('An optional step, often recommended.', 'informative'), ('Published in May 2014.', 'informative'),
    ('Backups shall be tested; copies may be kept off site.', 'requirement'),  # the strongest form wins
])
def test_normative_levels(text, level):
    assert normative_level(text) == level

def test_may_not_is_not_a_permission():
    assert normative_level('Personal data may not be transferred to a third country.') == 'requirement'

def _clauses(docs:list[dict]) -> dict:
    from pathlib import Path
    return {Path(d['source']).stem: [(c['clause'], c['heading'], c['normative_level']) for c in d['chunks']] for d in docs}

def test_markdown_sample_gives_the_pdf_clauses(sample_pdfs):
    "The sample corpus as it ships (Markdown) and rendered to PDF: the same chunks' clauses, headings and levels; no '#' marks."
    from ai_standards.chunking import process_documents
    from ai_standards.sample import sample_corpus_dir
    md = process_documents([sample_corpus_dir()], progress=False)
    assert {d['kind'] for d in md} == {'markdown'}
    got = _clauses(md)
    assert got == _clauses(process_documents([sample_pdfs], progress=False))
    assert sum(len(v) for v in got.values()) == 253 and all(c for v in got.values() for c, _, _ in v)
    assert {lvl for v in got.values() for _, _, lvl in v} == {'requirement', 'recommendation', 'permission', 'informative'}
    assert got['PRIV-203'][0] == ('1', 'Scope', 'informative')
    assert not [c['id'] for d in md for c in d['chunks'] if '#' in c['text']]

def test_markdown_chunks_do_not_cut_across_clauses():
    """In the sample Markdown chunks the headings a chunk holds come first: no chunk runs from one clause's text into the next
    clause, except a section under `min_tokens` (24) tokens, which folds into the next one as it does in a PDF."""
    from ai_standards.chunking import process_documents
    from ai_standards.sample import sample_corpus_dir
    ch, folded = Chunker(), []
    for d in process_documents([sample_corpus_dir()], ch, progress=False):
        heads = {t for _, t in d['metadata']['headings']}
        for c in d['chunks']:
            lines = [l for l in c['text'].split('\n') if l.strip()]
            kinds = [l in heads for l in lines]
            if kinds == sorted(kinds, reverse=True): continue  # headings, then body, no heading after
            last = max(i for i in range(1, len(lines)) if kinds[i] and not kinds[i-1])
            assert ch.count('\n'.join(lines[:last])) - (ch.max_tokens - ch.budget) < ch.min_tokens, (d['source'], c['text'][:200])
            folded.append(c['clause'])
    assert folded == ['6']  # SWLC-901's 5.2 Validation: one sentence, folded into 6 Maintenance and retirement
    d = next(d for d in process_documents([sample_corpus_dir()/'privacy'], progress=False) if d['source'].endswith('PRIV-203.md'))
    texts = {c['clause']: c['text'] for c in d['chunks']}
    assert texts['2.4'].startswith('2.4 Breach register') and '3 Processors' not in texts['2.4']
    assert texts['3.1'].startswith('3 Processors\n\n3.1 Selection of processors')

def test_markdown_headings_with_and_without_numbers(tmp_path):
    "'#' headings are headings at any length; an unnumbered one keeps its numbered parent's clause; list items are not headings."
    (tmp_path/'g.md').write_text(
        '# Backup Guide\n\n## 1 Scope\n\nThis guide covers the backup of every server and database that holds company data.\n\n'
        '### Definitions used throughout the remainder of this backup guide by all of its readers\n\n'
        '1. Backup means a copy of data kept apart from the system it came from, so that it survives its loss.\n'
        '2. Restore means bringing data back from a backup.\n\n'
        '## Annex A Checklist\n\nEach backup job shall be reviewed monthly by the owner of the system it protects.\n\n'
        '## Revision history\n\nThis is the first edition of the guide, published for comment within the organization.\n')
    doc = load_document(tmp_path/'g.md')
    chunks = Chunker(min_tokens=4)(doc)
    assert (doc.kind, doc.title) == ('markdown', 'Backup Guide')
    assert [(c['clause'], c['heading']) for c in chunks] == [
        ('1', 'Scope'), ('1', 'Definitions used throughout the remainder of this backup guide by all of its readers'),
        ('Annex A', 'Checklist'), (None, 'Revision history')]
    assert chunks[1]['text'].endswith('2. Restore means bringing data back from a backup.')

def test_a_control_statement_is_a_requirement(nist_data):
    "SP 800-53 states controls in the imperative, without 'shall': the statement's chunks are requirements, not informative."
    from itertools import islice
    from ai_standards.documents import iter_jsonl_documents
    docs = {d.metadata['record_id']: d for d in islice(iter_jsonl_documents(nist_data/'nist_sp800_53r5_controls.jsonl'), 40)}
    ch = Chunker()
    first = ch(docs['ac-2.1'])[0]
    assert first['text'].startswith('Support the management of system accounts') and first['normative_level'] == 'requirement'
    assert ch(docs['ac-2'])[-1]['normative_level'] != 'requirement'  # AC-2's discussion: 'may wish to', a permission

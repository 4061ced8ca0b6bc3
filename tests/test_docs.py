"""The docs site builds without Quarto and renders in headless Chromium: navigation on every page, no broken internal links
(API cross-links included), no page showing a Python traceback."""
import functools, http.server, os, re, shutil, subprocess, sys, threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse
import pytest
from conftest import ROOT, repo_copy

DOC_URL = 'https://ai-standards.github.io/ai_standards/'  # doc_host + doc_baseurl in settings.ini: nbdev's API links use it

def _chromium() -> str|None:
    "Debian's chromium, installed with apt-get when missing and possible."
    for name in ('chromium', 'chromium-browser'):
        if shutil.which(name): return shutil.which(name)
    if shutil.which('apt-get') and os.geteuid() == 0:
        env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
        subprocess.run(['apt-get', 'update', '-qq'], capture_output=True, env=env, timeout=600)
        subprocess.run(['apt-get', 'install', '-y', '-qq', 'chromium'], capture_output=True, env=env, timeout=1200)
    return shutil.which('chromium')

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The site built in a copy of the checkout (the build rewrites ai_standards/_modidx.py and nbs/*.yml, and writes _proc/, _docs/)."
    d = repo_copy(tmp_path_factory.mktemp('docs'))
    r = subprocess.run([sys.executable, d/'.ci'/'build_docs.py', 'site'], cwd=d, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return d/'_docs'

@pytest.fixture(scope='module')
def served(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_address[1]}/'
    srv.shutdown()

@pytest.fixture(scope='module')
def browser():
    exe = _chromium()
    if exe is None: pytest.skip("headless browser test skipped: Debian's chromium is not installed and apt-get could not install it")
    return exe

def render(browser, url:str) -> str:
    "The page's DOM after its scripts ran, from headless Chromium."
    r = subprocess.run([browser, '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--virtual-time-budget=3000',
                        '--dump-dom', url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '<html' in r.stdout, f'{url}: chromium failed: {r.stderr[-1000:]}'
    return r.stdout

class Links(HTMLParser):
    def __init__(self):
        super().__init__(); self.hrefs, self.ids = [], set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('href'): self.hrefs.append(a['href'])

def parse(html:str) -> Links:
    p = Links(); p.feed(html); return p

def test_pages_render_with_navigation(site, served, browser):
    pages = sorted(p.name for p in site.glob('*.html'))
    expected = {'index.html', 'sample.html', 'documents.html', 'chunking.html', 'models.html', 'vectordb.html', 'training.html',
                'evaluation.html', 'persistence.html', 'pipeline.html', 'cli.html'}
    assert expected <= set(pages), f'missing pages: {expected - set(pages)}'
    tutorials = sorted(p.relative_to(site).as_posix() for p in (site/'tutorials').glob('*.html')) if (site/'tutorials').is_dir() else []
    assert len(tutorials) >= 3, f'tutorial pages: {tutorials}'
    for page in pages + tutorials:
        dom = render(browser, served + page)
        text = re.sub(r'<[^>]+>', ' ', dom)
        assert 'Traceback (most recent call last)' not in text, f'{page} shows a Python traceback'
        assert 'id="quarto-sidebar"' in dom and 'id="quarto-header"' in dom, f'{page} has no navigation'
        nav = parse(dom[dom.index('id="quarto-sidebar"'):]).hrefs
        assert sum(h.endswith(('documents.html', 'pipeline.html', 'cli.html')) for h in nav) >= 3, f'{page}: sidebar does not list the module pages'

def test_no_broken_internal_links(site):
    "Every local link and every link into the published docs (nbdev's API cross-links) points at an existing page and anchor."
    ids, broken = {}, []
    pages = sorted(site.rglob('*.html'))
    for p in pages: ids[p.resolve()] = parse(p.read_text()).ids
    for p in pages:
        for href in parse(p.read_text()).hrefs:
            if href.startswith(DOC_URL): target, frag = site/href[len(DOC_URL):].split('#')[0], urlparse(href).fragment
            elif urlparse(href).scheme or href.startswith(('mailto:', 'javascript:')): continue
            else:
                path, _, frag = href.partition('#')
                target = (p.parent/path) if path else p
            if target.suffix not in ('.html', '') : 
                if not target.exists(): broken.append(f'{p.name}: {href}')
                continue
            if target.is_dir(): target = target/'index.html'
            if not target.exists(): broken.append(f'{p.name}: {href} (no such page)')
            elif frag and frag not in ids.get(target.resolve(), set()): broken.append(f'{p.name}: {href} (no anchor #{frag})')
    assert not broken, f'{len(broken)} broken link(s):\n' + '\n'.join(broken[:30])

def test_code_fits_the_column_at_1280(site, served, browser):
    "At 1,280 px no code box on a module page scrolls sideways: lines fit the column or wrap inside it (nbs/styles.css)."
    probe = ("<script>addEventListener('load', () => document.body.setAttribute('data-wide', [...document.querySelectorAll('pre')]"
             ".filter(p => p.scrollWidth > p.clientWidth + 1).length))</script></body>")
    for page in ('chunking.html', 'lexical.html', 'cli.html', 'pipeline.html'):
        (site/f'_probe_{page}').write_text((site/page).read_text().replace('</body>', probe, 1))
        r = subprocess.run([browser, '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1280,900',
                            '--virtual-time-budget=3000', '--dump-dom', served + f'_probe_{page}'], capture_output=True, text=True, timeout=120)
        wide = re.search(r'data-wide="(\d+)"', r.stdout)
        assert wide and wide[1] == '0', f"{page}: {wide[1] if wide else '?'} code box(es) scroll sideways at 1,280 px"

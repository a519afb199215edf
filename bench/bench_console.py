"""The web console: built assets' size (gzipped), and time to first render of 工作台 and of the residents list.

Why: issue 20 asks what the console costs a worker on the street's office PC: how much it downloads
the first time, and how long after they open it the page shows what they came for, with a street's
register behind it (10,000 residents).

1. Asset size. Every file Vite built (`console/dist`, or `--dist`), each gzipped at level 9 as a
   server would send it (text types only; an image or font is counted as it is), summed; and the
   first load, what a browser fetches before any page of the router runs: index.html and the
   scripts, module preloads and style sheets it names (parsed from index.html). The gateway sends
   the build's precompressed .gz copies (console/scripts/precompress.mjs) to a browser that takes
   gzip: the browser's own count of bytes received is reported beside the gzipped figures.
2. Time to first render. The whole instance runs in this process, as the integration tests run it,
   on a throwaway database (`linli_bench_console`) and vhost (`linli-bench-console`): migrated,
   topology applied, the demo hierarchy loaded, 10,000 generated residents imported through the
   real importer, every service started in a nameko ServiceContainer, the gateway serving the
   console from `CONSOLE_DIR` on a free port. A street admin (all four cards of the 工作台) signs in
   through the sign-in page of a headless Chromium driven by Selenium. Then each page is opened N
   times with a cold browser cache (`Network.clearBrowserCache` before each load, checked: every
   script and style sheet must come over the network), after one load that is not counted (it warms
   the server, not the browser), and N times more with the cache warm (a worker's second visit).

   The clock is the browser's own (`performance.now()`, zero at navigation start), read by a script
   installed before any of the page's (`Page.addScriptToEvaluateOnNewDocument`), so Selenium's round
   trips are not in the figures. The page counts as rendered at the first animation frame in which
   its content is in the DOM and laid out (that frame then paints it):
   - 工作台 (`/console/`): every card has left its loading state and shows its counts
     (`.cards > .card .counts`, none an error);
   - residents list (`/console/residents`): the table's first row, with its text, has a box.
   First Contentful Paint (Paint Timing API) and, per run, when index.html, the assets and the
   last API answer before the render arrived are kept in bench/results too.

Goals: each page's first render (median, cold cache) <= 1 s on this machine, a 2-core development
machine (the street office's PC and server are usually faster); ratio = 1000 ms / measured (>= 1: met). No goal is set for the sizes (ratio nan).

Caveats: every service shares this one Python process (and so one core) with the bench, where the
deployed tree gives each its own process; Chromium and PostgreSQL share the machine's two cores
with it. The load average at the start and end of the measurements is recorded with the figures.

The console under measurement is whatever `--dist` holds (default console/dist, `make console`);
`--build` builds a private copy of console/ with Vite into a temporary directory instead, so the
figures are of the source as it is now, not of a stale console/dist.
"""
import shared.green  # noqa: F401,I001  (first: monkey-patches eventlet before psycopg is imported)

import argparse
import contextlib
import gzip
import logging
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

import eventlet
import requests

from common import (ROOT, Management, Results, config, log, percentile, server_version, throwaway_database,
                    throwaway_vhost)

DB_NAME = "linli_bench_console"
VHOST = "linli-bench-console"
USERNAME = "bench_admin"
PASSWORD = "Bench-console-2026"
GOAL_MS = 1000
BASE = "/console/"
TEXT_TYPES = {".js", ".mjs", ".css", ".html", ".svg", ".json", ".map", ".txt", ".xml", ".webmanifest", ".ico"}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# As tests/browser: no sandbox as root, and no background calls to Google's services (this network refuses them).
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--lang=zh-CN", "--window-size=1366,900"]
PAGES = {"workbench": "", "residents": "residents"}   # page -> path under /console/
RENDER_TIMEOUT = 60  # s a page may take to render before the run fails

# Installed before any script of every new document. Chooses the page by its path, then checks on every DOM
# change (cheap: no layout) whether the content is there, and on every animation frame whether it is there
# and laid out; `rendered` is the first such frame. Errors shown by the page end the wait.
PROBE = r"""
(() => {
  const path = location.pathname.replace(/\/+$/, '/');
  const page = path === '/console/' ? 'workbench' : path === '/console/residents' ? 'residents' : null;
  if (!page) return;
  const b = window.__bench = {page, dom: null, rendered: null, error: null, n: null};
  const failed = () => {
    const e = document.querySelector('#main .el-result, #main [role=alert]');
    return e && e.innerText.trim() ? e.innerText.trim().slice(0, 400) : null;
  };
  const content = {
    workbench() {
      const cards = [...document.querySelectorAll('.cards > .card')];
      if (!cards.length || !document.querySelector('#main h1')) return null;
      const shown = [];
      for (const c of cards) {
        const counts = c.querySelector('.counts');
        if (!counts) return null;          // still loading (PageState), or an error (caught by failed())
        shown.push(counts);
      }
      return {els: [document.querySelector('#main h1'), ...shown], n: cards.length};
    },
    residents() {
      const rows = document.querySelectorAll('.el-table__body-wrapper tr.el-table__row');
      if (!rows.length || !rows[0].innerText.trim()) return null;
      return {els: [rows[0]], n: rows.length};
    },
  };
  const check = (frame) => {
    if (b.rendered !== null || b.error !== null) return;
    const err = failed();
    if (err) { b.error = err; return; }
    const c = content[page]();
    if (!c) return;
    if (b.dom === null) b.dom = performance.now();
    if (frame && c.els.every((e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; })) {
      b.rendered = performance.now();
      b.n = c.n;
    }
  };
  new MutationObserver(() => check(false)).observe(document, {childList: true, subtree: true, characterData: true});
  const tick = () => { check(true); if (b.rendered === null && b.error === null) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  b.lcp = [];
  b.longtasks = [];
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) b.lcp.push(e.startTime); })
      .observe({type: 'largest-contentful-paint', buffered: true});
    new PerformanceObserver((l) => { for (const e of l.getEntries()) b.longtasks.push([e.startTime, e.duration]); })
      .observe({type: 'longtask', buffered: true});
  } catch (e) { /* no LCP or long tasks here */ }
})();
"""

COLLECT = r"""
const nav = performance.getEntriesByType('navigation')[0];
const fcp = performance.getEntriesByName('first-contentful-paint')[0];
const fp = performance.getEntriesByName('first-paint')[0];
return {
  bench: window.__bench, fcp: fcp ? fcp.startTime : null, fp: fp ? fp.startTime : null,
  nav: {responseEnd: nav.responseEnd, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
        transfer: nav.transferSize, encoded: nav.encodedBodySize},
  resources: performance.getEntriesByType('resource').map((r) => ({
    name: r.name, type: r.initiatorType, start: r.startTime, end: r.responseEnd,
    transfer: r.transferSize, encoded: r.encodedBodySize, decoded: r.decodedBodySize})),
};
"""


# --- 1. asset sizes -------------------------------------------------------------------------------

class _Refs(HTMLParser):
    """What index.html makes the browser fetch at once: module scripts, module preloads, style sheets."""

    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.refs.append(a["src"])
        elif tag == "link" and a.get("href") and set((a.get("rel") or "").split()) & {"stylesheet", "modulepreload",
                                                                                       "preload"}:
            self.refs.append(a["href"])


def gzipped(path):
    data = path.read_bytes()
    if path.suffix.lower() not in TEXT_TYPES:
        return len(data)
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def dist_file(dist, url):
    """The file in dist behind an URL the console uses (/console/assets/x.js -> dist/assets/x.js)."""
    path = urlsplit(url).path
    if path.startswith(BASE):
        path = path[len(BASE):]
    return dist / path.lstrip("/")


def asset_sizes(dist):
    # The build's .gz copies (scripts/precompress.mjs) are what is sent, not more to send: not counted twice.
    files = sorted(p for p in dist.rglob("*") if p.is_file() and p.suffix != ".gz")
    sizes = {p: (p.stat().st_size, gzipped(p)) for p in files}
    parser = _Refs()
    parser.feed((dist / "index.html").read_text(encoding="utf-8"))
    first = [dist / "index.html"] + [dist_file(dist, ref) for ref in parser.refs]
    missing = [str(p) for p in first if p not in sizes]
    if missing:
        raise SystemExit(f"index.html names files that are not in {dist}: {missing}")
    by_kind = {}
    for p, (raw, gz) in sizes.items():
        kind = p.suffix.lower().lstrip(".") or "other"
        k = by_kind.setdefault(kind, {"files": 0, "bytes": 0, "gzip_bytes": 0})
        k["files"] += 1
        k["bytes"] += raw
        k["gzip_bytes"] += gz
    largest = sorted(sizes.items(), key=lambda kv: -kv[1][1])[:8]
    return {
        "files": len(files),
        "bytes": sum(raw for raw, _ in sizes.values()),
        "gzip_bytes": sum(gz for _, gz in sizes.values()),
        "by_type": by_kind,
        "largest_gzip": {str(p.relative_to(dist)): {"bytes": raw, "gzip_bytes": gz} for p, (raw, gz) in largest},
        "first_load": {str(p.relative_to(dist)): {"bytes": sizes[p][0], "gzip_bytes": sizes[p][1]} for p in first},
        "first_load_bytes": sum(sizes[p][0] for p in first),
        "first_load_gzip_bytes": sum(sizes[p][1] for p in first),
        "gzip_of": {str(p.relative_to(dist)): gz for p, (_, gz) in sizes.items()},
    }


def newest_source(console):
    paths = [console / "index.html", console / "vite.config.ts", console / "package-lock.json"]
    paths += [p for p in (console / "src").rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in paths if p.exists())


def build_private(outdir):
    """Vite's production build of console/ as it is now, into `outdir` (console/dist is left alone)."""
    log(f"building the console into {outdir} (npx vite build)")
    done = subprocess.run(["npx", "vite", "build", "--outDir", str(outdir), "--emptyOutDir"], cwd=ROOT / "console",
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit("the console does not build:\n" + (done.stdout + done.stderr)[-3000:])
    return outdir


# --- 2. the instance -----------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(inst, residents):
    """Schema, topology, the demo hierarchy, generated residents and a street admin, as the tests set them up."""
    from linli import all_service_classes
    from linli.demo import demo_communities, load_hierarchy, people
    from services.gateway import accounts, store
    from services.registry import importer
    from shared import envelope
    from shared.db import connect, transaction
    from shared.facts import Signer
    from shared.messaging import apply_topology
    from shared.migrations import migrate
    from shared.protect import Vault

    dsn, node = inst["DATABASE_URL"], inst["NODE_CODE"]
    migrate(dsn)
    apply_topology(inst, all_service_classes())
    source = envelope.source_from_config("registry", inst)
    with transaction(dsn, "registry", source, Signer.from_config(inst)) as tx:
        load_hierarchy(tx, node)
        communities = demo_communities(tx, node)
    log(f"importing {residents:,} generated residents into {len(communities)} communities")
    persons = list(people.generate(residents, communities, seed=f"bench-console:{node}"))
    data = ("\n".join([",".join(people.CSV_HEADERS)] + [",".join(people.to_csv_row(p)) for p in persons])
            + "\n").encode()
    start = time.perf_counter()
    with transaction(dsn, "registry", source, Signer.from_config(inst)) as tx:
        report = importer.import_residents(tx, Vault.from_config(inst), data, "all_or_nothing",
                                           {"actor": "bench", "scope": node})
    assert report["written"] == residents, {k: v for k, v in report.items() if k != "errors"} | {
        "errors": report["errors"][:5]}
    log(f"imported in {time.perf_counter() - start:.1f} s")
    with connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO gateway")
        conn.execute(store.INSERT_ACCOUNT, (USERNAME, "基准测试管理员", accounts.hash_password(PASSWORD), "street_admin",
                                            node, None, False, "bench"))
        n = conn.execute("SELECT count(*) AS n FROM registry.residents WHERE status = 'active'").fetchone()["n"]
    assert n == residents, n


@contextlib.contextmanager
def services_running(inst):
    """Every service of the instance in a nameko ServiceContainer in this process (as tests' container_factory)."""
    from nameko.containers import ServiceContainer
    from linli import all_service_classes
    containers = []
    try:
        for cls in all_service_classes():
            container = ServiceContainer(cls, inst)
            container.start()
            containers.append(container)
        yield containers
    finally:
        for container in reversed(containers):
            try:
                with eventlet.Timeout(20):
                    container.stop()
            except BaseException:  # a container that does not stop in time is killed
                container.kill()


def wait_ready(base, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200 and \
                    requests.get(f"{base}/console/", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the gateway at {base} did not answer /readyz and /console/ within {timeout} s")
        time.sleep(0.2)


def wait_quiet(inst, api, vhost, timeout=300, quiet_for=8.0):
    """Until the import's events have been relayed and handled (every outbox sent, every queue of the vhost
    empty) and this process has been nearly idle for `quiet_for` seconds: the measurements must not share
    the machine with the aftermath of the import."""
    from shared.db import connect
    from shared.migrations import services_with_migrations
    schemas = sorted(set(services_with_migrations()))
    deadline = time.monotonic() + timeout
    quiet_since, last_cpu, last_t, said = None, sum(os.times()[:2]), time.monotonic(), 0.0
    while True:
        time.sleep(1.0)
        with connect(inst["DATABASE_URL"]) as conn:
            backlog = 0
            for schema in schemas:
                conn.execute(f'SET search_path TO "{schema}"')
                if conn.execute("SELECT to_regclass('outbox') IS NOT NULL AS has").fetchone()["has"]:
                    backlog += conn.execute("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL").fetchone()["n"]
        queued = sum(q.get("messages", 0) or 0 for q in api.call("GET", f"/queues/{quote(vhost, safe='')}")
                     if not q["name"].endswith((".dlq", ".unrouted")))
        cpu, now = sum(os.times()[:2]), time.monotonic()
        busy = (cpu - last_cpu) / (now - last_t)
        last_cpu, last_t = cpu, now
        if backlog == 0 and queued == 0 and busy < 0.15:
            quiet_since = quiet_since or now
            if now - quiet_since >= quiet_for:
                return
        else:
            quiet_since = None
        if now - said > 10:
            log(f"waiting for the instance to settle: outbox backlog {backlog}, queued {queued}, "
                f"this process {busy:.0%} busy")
            said = now
        if now > deadline:
            log(f"not quiet after {timeout} s (backlog {backlog}, queued {queued}, {busy:.0%} busy): measuring anyway")
            return


# --- 2. the browser ------------------------------------------------------------------------------

def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def wait_until(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def sign_in(driver, base):
    from selenium.webdriver.common.by import By
    driver.get(f"{base}/console/signin")
    user = wait_until(lambda: [e for e in driver.find_elements(By.CSS_SELECTOR, "#signin-username") if e.is_displayed()],
                      30, "the sign-in page")[0]
    user.send_keys(USERNAME)
    driver.find_element(By.CSS_SELECTOR, "#signin-password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".shell"), 30,
               "the console after signing in (" + driver.find_element(By.TAG_NAME, "body").text[:300] + ")")


def open_page(driver, url, cold, what):
    """Open `url` (from a blank page, the browser's cache emptied first if `cold`) and wait until the
    page's bench script says it rendered or failed: its window.__bench. SystemExit after RENDER_TIMEOUT."""
    driver.get("about:blank")
    if cold:
        driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.get(url)

    def done():
        b = driver.execute_script("return window.__bench || null")
        return b if b and (b["rendered"] is not None or b["error"] is not None) else None
    return wait_until(done, RENDER_TIMEOUT, what)


def load(driver, base, page, cold):
    """Open `page` once; returns the browser's own figures (ms since navigation start)."""
    try:
        b = open_page(driver, f"{base}/console/{PAGES[page]}", cold, f"{page} to render")
    except SystemExit:
        raise SystemExit(f"{page} did not render within {RENDER_TIMEOUT} s; it shows: "
                         + driver.execute_script("return document.body.innerText")[:1000])
    if b["error"] is not None:
        raise SystemExit(f"{page} shows an error instead of its content: {b['error']}")
    got = driver.execute_script(COLLECT)
    rendered = got["bench"]["rendered"]
    assets = [r for r in got["resources"] if urlsplit(r["name"]).path.startswith(BASE + "assets/")]
    calls = [r for r in got["resources"] if urlsplit(r["name"]).path.startswith("/api/") and r["end"] <= rendered]
    cached = [r["name"] for r in assets if r["transfer"] == 0 and r["encoded"] > 0]
    lcp = [t for t in got["bench"].get("lcp") or [] if t <= rendered]
    api = {}
    for r in calls:  # the last call of each path before the render
        api[urlsplit(r["name"]).path] = {"start": r["start"], "end": r["end"]}
    return {
        "render_ms": rendered, "dom_ms": got["bench"]["dom"], "fcp_ms": got["fcp"], "fp_ms": got["fp"],
        "lcp_ms": lcp[-1] if lcp else None,
        "html_ms": got["nav"]["responseEnd"], "dcl_ms": got["nav"]["dcl"], "load_ms": got["nav"]["load"],
        "assets_done_ms": max((r["end"] for r in assets if r["start"] <= rendered), default=None),
        "api_done_ms": max((r["end"] for r in calls), default=None),
        "api_calls": sorted(api), "api": api,
        "long_tasks_ms": sum(min(d, rendered - s) for s, d in got["bench"].get("longtasks") or [] if s < rendered),
        "assets": sorted(urlsplit(r["name"]).path[len(BASE):] for r in assets if r["start"] <= rendered),
        "transfer_bytes": (got["nav"]["transfer"] or 0) + sum(r["transfer"] or 0 for r in assets),
        "from_cache": cached, "items": got["bench"]["n"],
    }


def summary(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    if not values:
        return {}
    return {"median": round(statistics.median(values), 1), "p90": round(percentile(values, 90), 1),
            "max": round(max(values), 1), "min": round(min(values), 1), "all": [round(v, 1) for v in values]}


def api_medians(runs):
    """{path: {start, end}}: when each API call of the page began and was answered, medians over the runs."""
    paths = sorted({p for r in runs for p in r["api"]})
    return {p: {k: summary([r["api"][p] for r in runs if p in r["api"]], k)["median"] for k in ("start", "end")}
            for p in paths}


def measure(driver, base, page, runs):
    log(f"{page}: one load not counted (warms the server)")
    warmup = load(driver, base, page, cold=True)
    cold, warm = [], []
    for i in range(runs):
        r = load(driver, base, page, cold=True)
        if r["from_cache"]:
            raise SystemExit(f"{page}: a cold load took {r['from_cache']} from the cache")
        cold.append(r)
        log(f"{page} cold {i + 1}: rendered {r['render_ms']:.0f} ms (in DOM {r['dom_ms']:.0f}, FCP {r['fcp_ms']:.0f}, "
            f"html {r['html_ms']:.0f}, assets {r['assets_done_ms']:.0f}, last API answer {r['api_done_ms']:.0f}, "
            f"long tasks {r['long_tasks_ms']:.0f}), "
            f"{r['transfer_bytes'] / 1024:.0f} KiB received, {r['items']} shown")
    for i in range(runs):
        r = load(driver, base, page, cold=False)
        warm.append(r)
        log(f"{page} warm {i + 1}: rendered {r['render_ms']:.0f} ms (FCP {r['fcp_ms']:.0f}), "
            f"{r['transfer_bytes'] / 1024:.0f} KiB received")
    return warmup, cold, warm


# --- main ----------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=pathlib.Path, default=ROOT / "console" / "dist",
                        help="the built console to measure and serve (default console/dist, from `make console`)")
    parser.add_argument("--build", action="store_true",
                        help="build console/ with Vite into a temporary directory and measure that instead")
    parser.add_argument("--residents", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7, help="cold (and as many warm) loads of each page")
    args = parser.parse_args()

    # nameko logs a refusal it was told to expect (the console asking who is signed in before anyone is) as a
    # warning with its traceback; real errors still show.
    logging.getLogger("nameko.containers").setLevel(logging.ERROR)
    cfg = config()
    with contextlib.ExitStack() as stack:
        if args.build:
            dist = build_private(pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dist-"))))
        else:
            dist = args.dist.resolve()
            if not (dist / "index.html").is_file():
                raise SystemExit(f"no built console in {dist}: run `make console` (or pass --build)")
            if dist == (ROOT / "console" / "dist").resolve() and newest_source(ROOT / "console") > \
                    (dist / "index.html").stat().st_mtime:
                log("warning: console/dist is older than console/src: it is not the console as it is now "
                    "(run `make console`, or pass --build)")

        sizes = asset_sizes(dist)
        log(f"{sizes['files']} files, {sizes['bytes'] / 1024:.0f} KiB, gzipped {sizes['gzip_bytes'] / 1024:.0f} KiB; "
            f"first load {sizes['first_load_bytes'] / 1024:.0f} KiB, gzipped {sizes['first_load_gzip_bytes'] / 1024:.0f} KiB")

        dsn = stack.enter_context(throwaway_database(cfg["DATABASE_URL"], DB_NAME))
        amqp_uri = stack.enter_context(throwaway_vhost(cfg["RABBIT_MANAGEMENT_URL"], cfg["AMQP_URI"], VHOST))
        port = free_port()
        inst = {**cfg, "DATABASE_URL": dsn, "AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
                "CONSOLE_DIR": str(dist), "METRICS_PORT": None}
        base = f"http://127.0.0.1:{port}"
        prepare(inst, args.residents)
        log(f"starting every service in this process, the gateway on {base}")
        stack.enter_context(services_running(inst))
        wait_ready(base)
        wait_quiet(inst, Management(cfg["RABBIT_MANAGEMENT_URL"]), VHOST)

        driver = browser()
        stack.callback(driver.quit)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        sign_in(driver, base)
        load_before = os.getloadavg()
        measured = {page: measure(driver, base, page, args.runs) for page in PAGES}
        load_after = os.getloadavg()
        chromium_version = driver.capabilities.get("browserVersion")

        # What the 工作台's cold load fetched, gzipped (index.html and every asset it took before rendering).
        fetched = sorted(set(measured["workbench"][1][0]["assets"]))
        fetched_gzip = sizes["gzip_of"]["index.html"] + sum(sizes["gzip_of"].get(a, 0) for a in fetched)

    results = Results({"residents": args.residents, "runs": args.runs, "dist": str(dist), "built_here": args.build,
                       "window": "1366x900", "goal_ms": GOAL_MS,
                       "loadavg_before": [round(x, 2) for x in load_before],
                       "loadavg_after": [round(x, 2) for x in load_after]})
    kib = lambda b: round(b / 1024, 1)  # noqa: E731
    results.add("console_assets_gzip_kb", kib(sizes["gzip_bytes"]), "KiB", ratio=None,
                bytes=sizes["bytes"], gzip_bytes=sizes["gzip_bytes"], files=sizes["files"], by_type=sizes["by_type"],
                largest_gzip=sizes["largest_gzip"], gzip="level 9 per file, text types only")
    wb_cold = measured["workbench"][1]
    results.add("console_first_load_gzip_kb", kib(sizes["first_load_gzip_bytes"]), "KiB", ratio=None,
                bytes=sizes["first_load_bytes"], gzip_bytes=sizes["first_load_gzip_bytes"], files=sizes["first_load"],
                workbench_fetched=["index.html"] + fetched, workbench_fetched_gzip_kb=kib(fetched_gzip),
                workbench_received_kb_uncompressed=kib(statistics.median(r["transfer_bytes"] for r in wb_cold)),
                note="index.html and what it names; the gateway sends them uncompressed")
    for page, (warmup, cold, warm) in measured.items():
        render = summary(cold, "render_ms")
        fcp = summary(cold, "fcp_ms")
        details = {"p90_ms": render["p90"], "max_ms": render["max"], "all_ms": render["all"],
                   "in_dom_ms": summary(cold, "dom_ms"), "fcp_ms": fcp, "lcp_ms": summary(cold, "lcp_ms"),
                   "html_ms": summary(cold, "html_ms"), "dcl_ms": summary(cold, "dcl_ms"),
                   "assets_done_ms": summary(cold, "assets_done_ms"), "api_done_ms": summary(cold, "api_done_ms"),
                   "long_tasks_ms": summary(cold, "long_tasks_ms"),
                   "api_ms": api_medians(cold),
                   "api_calls": cold[0]["api_calls"], "assets": cold[0]["assets"], "items_shown": cold[0]["items"],
                   "received_kb": kib(statistics.median(r["transfer_bytes"] for r in cold)),
                   "warm_render_ms": summary(warm, "render_ms"), "warm_fcp_ms": summary(warm, "fcp_ms"),
                   "warmup_render_ms": round(warmup["render_ms"], 1), "goal": f"median first render <= {GOAL_MS} ms "
                                                                               "(cold cache)"}
        results.add(f"console_{page}_render_ms", render["median"], "ms", ratio=GOAL_MS / render["median"], **details)
        results.add(f"console_{page}_fcp_ms", fcp["median"], "ms", ratio=None, p90_ms=fcp["p90"], max_ms=fcp["max"],
                    all_ms=fcp["all"], warm=summary(warm, "fcp_ms"))
        warm_render = summary(warm, "render_ms")
        log(f"{page}: first render, cold cache, median {render['median']:.0f} ms, p90 {render['p90']:.0f}, "
            f"max {render['max']:.0f} (goal <= {GOAL_MS}: {'met' if render['median'] <= GOAL_MS else 'NOT met'}); "
            f"FCP median {fcp['median']:.0f} ms, p90 {fcp['p90']:.0f}; warm cache median {warm_render['median']:.0f} ms")
    log(f"load average {load_before[0]:.1f} before the loads, {load_after[0]:.1f} after")
    results.finish({"postgresql": server_version(cfg["DATABASE_URL"]), "chromium": chromium_version})


if __name__ == "__main__":
    main()

"""Page weight of the dashboard: the JS and CSS each signed-in page loads, gzipped, against 100 KB.

The script starts ``segmently serve`` on a fresh SQLite database (``_harness.served``), signs up
through the API, moves the organization to the enterprise plan (every page unlocked), adds a site,
a live A/B experiment and a feature flag, and then crawls the dashboard as that user (the session
cookie is the API's token): from ``/sites`` it follows every same-origin link of every page it
reaches (``GET`` only, never ``/logout`` nor exports), up to ``--max-pages`` pages. Pages whose
paths differ only by ids count once.

For each page it reads the ``<script src>`` and ``<link rel="stylesheet">`` the HTML names, fetches
each file from the server as a browser would (the first time: no cache) and compresses it with gzip
at level 9 (what a server or proxy in front of Segmently sends; ``segmently serve`` itself sends
files uncompressed). The page's weight is the sum, printed with the files and the ratio to the
budget of 100 KB (issue 8). Inline ``<script>``/``<style>`` bytes are counted with the HTML, not
here. The exit status is 1 when a page is over the budget.

Run from the workspace root:  uv run python bench/dashboard_weight.py [--max-pages 60]
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
from _harness import enterprise_owner, live_experiment, served

BUDGET = 100 * 1024
SKIP = re.compile(r"/logout|/export|\.csv|\.json|/static/|/api/|/s/|/segmently\.js|/snippet/")
ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

EXPERIMENT = {
    "name": "Hero headline",
    "variants": [
        {"key": "control", "name": "Control", "weight": 50},
        {
            "key": "bold",
            "name": "Bold",
            "weight": 50,
            "changes": [{"type": "text", "selector": "h1", "text": "Bold hero"}],
        },
    ],
    "goals": [{"type": "custom_event", "name": "Purchase", "event_name": "purchase", "primary": True}],
}


class Assets(HTMLParser):
    """The scripts, stylesheets and links of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script" and a.get("src"):
            self.assets.append(a["src"])
        elif tag == "link" and "stylesheet" in a.get("rel", "").split() and a.get("href"):
            self.assets.append(a["href"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])


def pattern(path: str) -> str:
    """The page's path with ids replaced, so ``/sites/<id>`` counts once."""
    return ID.sub("/{id}", path)


def crawl(client: httpx.Client, start: str, max_pages: int) -> dict[str, list[str]]:
    """Page pattern → the assets its HTML names, for every page reachable from ``start``."""
    seen: dict[str, list[str]] = {}
    queue = [start]
    visited: set[str] = set()
    while queue and len(seen) < max_pages:
        url = queue.pop(0)
        path = urlsplit(url).path
        if url in visited or pattern(path) in seen:
            continue
        visited.add(url)
        r = client.get(url)
        if r.status_code != 200 or "text/html" not in r.headers.get("content-type", ""):
            continue
        parser = Assets()
        parser.feed(r.text)
        seen[pattern(path)] = parser.assets
        for href in parser.links:
            target = urljoin(str(r.url), href.split("#")[0])
            parts = urlsplit(target)
            if parts.netloc == urlsplit(str(client.base_url)).netloc and not SKIP.search(parts.path):
                queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--max-pages", type=int, default=60)
    args = parser.parse_args()
    with served("sqlite", "") as server, httpx.Client(base_url=server.base, timeout=30) as client:
        owner = enterprise_owner(server, client)
        experiment = live_experiment(client, owner, EXPERIMENT)
        client.post(
            f"/api/v1/projects/{owner.site_id}/flags",
            json={"key": "new-checkout", "name": "New checkout"},
            headers=owner.headers,
        ).raise_for_status()
        client.cookies.set("segmently_session", owner.token)
        pages = crawl(client, "/sites", args.max_pages)
        for extra in (f"/experiments/{experiment['id']}", "/analytics", "/settings"):
            if pattern(extra) not in pages:
                pages |= crawl(client, extra, args.max_pages)
        sizes: dict[str, tuple[int, int]] = {}
        print(f"{'page':44}{'files':>6}{'raw KB':>9}{'gzip KB':>9}{'of budget':>11}")
        worst = 0
        for page, assets in sorted(pages.items()):
            raw = gz = 0
            for src in assets:
                if src not in sizes:
                    body = client.get(src).raise_for_status().content
                    sizes[src] = (len(body), len(gzip.compress(body, 9)))
                raw += sizes[src][0]
                gz += sizes[src][1]
            worst = max(worst, gz)
            print(f"{page[:43]:44}{len(assets):>6}{raw / 1024:>9.1f}{gz / 1024:>9.1f}{gz / BUDGET:>10.0%}")
        print(f"\n{len(pages)} pages; the heaviest loads {worst / 1024:.1f} KB gzipped")
        print(f"ratio to the 100 KB budget: {worst / BUDGET:.2f} (goal ≤ 1.00)")
        print("\nfiles:")
        for src, (raw, gz) in sorted(sizes.items()):
            print(f"  {src.split('?')[0]:50}{raw / 1024:>9.1f}{gz / 1024:>9.1f}")
        return 0 if worst <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())

"""The review gallery's cost: server time of a reviewer's request page (GET /requests/{id}) and
of the gallery fragment the page swaps in, for one request of `--variants` variants (default
50), p50/p95 against the cheapest signed-in call (GET /api/v1/session) measured in the same run;
and the bytes a browser transfers for it (the page plus every thumbnail it shows) against the
full signed files of the same variants.

A throwaway data dir with the sample portraits (see sample_catalogue.py), the real app under
uvicorn on 127.0.0.1, a requester (API token) submitting the request with approval required and
a reviewer signed in through the /login form (session cookie), as a browser would be.

    python benchmarks/web_gallery.py [--variants 50] [--loads 40]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import time

from sample_catalogue import sample_catalogue
from web_bench import latency_summary, requester_token, serve_app

PASSWORD = "benchmark-passphrase"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", type=int, default=50)
    parser.add_argument("--loads", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the data dir")
    args = parser.parse_args()
    with sample_catalogue("castkeep-bench-gallery-", keep=args.keep) as settings:
        _measure(args, settings)


def _measure(args, settings) -> None:
    import httpx

    token = requester_token(settings, reviewer=("judge", PASSWORD))
    with serve_app(settings) as base:
        doc = {
            "campaign": "gallery benchmark", "requester": "bench",
            "talents": ["demo-talent-a"], "lighting": {"azimuth": 45, "fill": 0.2},
            "engine": "classical", "variants": args.variants, "channel": "social",
            "territory": "FR", "purpose": "advertising", "approval_required": True,
            "publish_date": (dt.date.today() + dt.timedelta(days=7)).isoformat(),
        }
        with httpx.Client(base_url=base, timeout=600,
                          headers={"Authorization": f"Bearer {token}"}) as api:
            answer = api.post("/api/v1/requests", json=doc)
            assert answer.status_code == 202, answer.text
            rid = answer.json()["id"]
            t0 = time.perf_counter()
            while (status := api.get(f"/api/v1/requests/{rid}").json())["status"] not in (
                    "awaiting_approval", "completed", "refused", "failed"):
                time.sleep(1)
            fulfil_s = time.perf_counter() - t0
        assert status["status"] == "awaiting_approval", status

        with httpx.Client(base_url=base, timeout=120) as browser:
            signed = browser.post("/login", data={"username": "judge", "password": PASSWORD})
            assert signed.status_code in (200, 303), signed.text

            def timed(path: str) -> tuple[float, httpx.Response]:
                t0 = time.perf_counter()
                answer = browser.get(path)
                assert answer.status_code == 200, (path, answer.status_code)
                return 1000 * (time.perf_counter() - t0), answer

            timed(f"/requests/{rid}")  # warm-up
            page_ms, fragment_ms, session_ms = [], [], []
            for _ in range(args.loads):
                ms, page = timed(f"/requests/{rid}")
                page_ms.append(ms)
                fragment_ms.append(timed(f"/requests/{rid}/gallery")[0])
                session_ms.append(timed("/api/v1/session")[0])
            images = re.findall(r'<img src="(/[^"]+)"', page.text)
            thumbnail_bytes = sum(len(browser.get(src).content) for src in images)
            variant_ids = re.findall(r'data-asset-id="([0-9a-f-]{36})"', page.text)
            full_bytes = sum(len(browser.get(f"/api/v1/assets/{aid}/file").content)
                             for aid in variant_ids
                             if f'/api/v1/assets/{aid}/thumbnail' in page.text)
        page_s, ref_s = latency_summary(page_ms), latency_summary(session_ms)
        shown = len([i for i in images if "/api/v1/assets/" in i])
        print(json.dumps({
            "variants": args.variants, "variants_shown_with_thumbnail": shown,
            "fulfil_seconds": round(fulfil_s, 1),
            "request_page": page_s, "gallery_fragment": latency_summary(fragment_ms),
            "reference_get_session": ref_s,
            "request_page_p95_vs_reference_p95": round(
                page_s["p95_ms"] / max(ref_s["p95_ms"], 1e-9), 2),
            "page_html_bytes": len(page.content),
            "thumbnail_bytes": thumbnail_bytes,
            "full_file_bytes_of_shown_variants": full_bytes,
            "transfer_vs_full_files": round(
                (len(page.content) + thumbnail_bytes) / max(full_bytes, 1), 3),
        }, indent=2))


if __name__ == "__main__":
    main()

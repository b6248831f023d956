"""Web API latency: POST /api/v1/requests -> 202 and GET /api/v1/requests/{id}, against the
cheapest authenticated call (GET /api/v1/session) measured in the same run as the reference.

A throwaway data dir (bundled PostgreSQL, filesystem store, development CA), the sample portraits
ingested, one requester with an API token, the real app under uvicorn on 127.0.0.1 (requests
fulfilled in a worker thread, Prefect ephemeral API). A warm-up submission runs first; then
`--submits` 1-variant requests are submitted (their fulfilment runs while the GETs are timed, as
it would for a reviewer polling progress) and `--polls` GETs of one request are timed.

    python benchmarks/web_api.py [--submits 5] [--polls 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

from sample_catalogue import sample_catalogue
from web_bench import latency_summary, requester_token, serve_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submits", type=int, default=5)
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the data dir")
    args = parser.parse_args()

    with sample_catalogue("castkeep-bench-web-", keep=args.keep) as settings:
        _measure(args, settings)


def _measure(args, settings) -> None:
    import httpx

    token = requester_token(settings)
    # leaving serve_app waits for the fulfilments under way
    with serve_app(settings) as base:
        doc = {
            "campaign": "benchmark", "requester": "bench", "talents": ["demo-talent-a"],
            "lighting": {"azimuth": 60, "fill": 0.2}, "camera": {"roll": 8},
            "engine": "classical", "variants": 1, "channel": "social", "territory": "FR",
            "purpose": "advertising",
            "publish_date": (dt.date.today() + dt.timedelta(days=7)).isoformat(),
        }
        client = httpx.Client(base_url=base, timeout=120,
                              headers={"Authorization": f"Bearer {token}"})

        def timed(method: str, path: str, **kw) -> tuple[float, httpx.Response]:
            t0 = time.perf_counter()
            answer = client.request(method, path, **kw)
            return 1000 * (time.perf_counter() - t0), answer

        _, warm = timed("POST", "/api/v1/requests", json=doc)
        assert warm.status_code == 202, warm.text
        submit_ms, ids = [], []
        for _ in range(args.submits):
            ms, answer = timed("POST", "/api/v1/requests", json=doc)
            assert answer.status_code == 202, answer.text
            submit_ms.append(ms)
            ids.append(answer.json()["id"])
        get_ms, session_ms = [], []
        for i in range(args.polls):
            ms, answer = timed("GET", f"/api/v1/requests/{ids[i % len(ids)]}")
            assert answer.status_code == 200
            get_ms.append(ms)
            ms, answer = timed("GET", "/api/v1/session")
            assert answer.status_code == 200
            session_ms.append(ms)
        get_s, ref_s = latency_summary(get_ms), latency_summary(session_ms)
        print(json.dumps({
            "submit_post_to_202": latency_summary(submit_ms),
            "get_request": get_s,
            "reference_get_session": ref_s,
            "get_request_p95_vs_reference_p95": round(get_s["p95_ms"] / max(ref_s["p95_ms"], 1e-9), 2),
        }, indent=2))


if __name__ == "__main__":
    main()

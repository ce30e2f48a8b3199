"""Client CPU per request: hbsdeploy's HttpPortal against plain `requests` and `urllib3` doing the same GETs.

One emulator process on 127.0.0.1 with mutual TLS and a bearer token (no added latency); each client makes the same
per-partner listing GETs one after another on one kept-alive connection, and the client process's CPU time
(`time.process_time`, all threads) is divided by the requests made. The server's work is in its own process and not
counted. Clients:
  * hbsdeploy HttpPortal.list_service_types (retries, deadline timer, size caps, shape and settings checks);
  * requests, a Session as most scripts use it (proxy and CA settings looked up in the environment per request);
  * requests, trust_env=False (the environment looked up once, up front);
  * urllib3, a PoolManager with the same TLS settings, body read and json.loads.

    python bench/bench_client.py [--requests 1000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_plan import TOKEN, TOKEN_ENV, Tls, emulators, make_tls  # noqa: E402
from common import REPO, machine, operator_id  # noqa: E402

PARTNERS = 50


def _clients(url: str, tls: Tls) -> dict[str, Callable[[list[str]], None]]:
    import requests
    import urllib3

    from hbsdeploy.load.config import Environment
    from hbsdeploy.portal.contract import service_types_path
    from hbsdeploy.portal.http import HttpPortal

    env = Environment(name="bench", portal=url, token_env=TOKEN_ENV, client_cert=tls.client_cert,
                      client_key=tls.client_key, ca_bundle=tls.ca)
    portal = HttpPortal(env, pool_size=1)
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    tls_options: dict[str, Any] = {"verify": str(tls.ca), "cert": (str(tls.client_cert), str(tls.client_key))}

    plain = requests.Session()
    plain.headers.update(headers)
    lean = requests.Session()
    lean.headers.update(headers)
    lean.trust_env = False
    lean.verify = tls_options["verify"]
    lean.cert = tls_options["cert"]
    pool = urllib3.PoolManager(ca_certs=str(tls.ca), cert_file=str(tls.client_cert), key_file=str(tls.client_key),
                               maxsize=1)

    def with_portal(ids: list[str]) -> None:
        for partner_id in ids:
            portal.list_service_types(partner_id)

    def with_requests(ids: list[str]) -> None:
        for partner_id in ids:
            response = plain.get(url + service_types_path(partner_id), timeout=30, **tls_options)
            response.raise_for_status()
            json.loads(response.content)

    def with_lean_requests(ids: list[str]) -> None:
        for partner_id in ids:
            response = lean.get(url + service_types_path(partner_id), timeout=30)
            response.raise_for_status()
            json.loads(response.content)

    def with_urllib3(ids: list[str]) -> None:
        for partner_id in ids:
            response = pool.request("GET", url + service_types_path(partner_id), headers=headers, timeout=30,
                                    preload_content=True)
            if response.status != 200:
                raise SystemExit(f"urllib3: {response.status}")
            json.loads(response.data)

    return {"hbsdeploy HttpPortal": with_portal, "requests (Session)": with_requests,
            "requests (trust_env=False)": with_lean_requests, "urllib3 (PoolManager)": with_urllib3}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    os.environ[TOKEN_ENV] = TOKEN
    ids = [operator_id(i % PARTNERS) for i in range(args.requests)]
    with tempfile.TemporaryDirectory(prefix="bench-client-") as temp:
        folder = Path(temp)
        tls = make_tls(folder / "tls")
        with emulators(folder, tls, [operator_id(i) for i in range(PARTNERS)], 0, environments=("qa",)) as urls:
            clients = _clients(urls["qa"], tls)
            for call in clients.values():
                call(ids[:20])  # warm-up: connection, TLS session, imports
            cpu: dict[str, list[float]] = {name: [] for name in clients}
            for _ in range(args.runs):  # interleaved: the machine's load hits every client alike
                for name, call in clients.items():
                    started = time.process_time()
                    call(ids)
                    cpu[name].append((time.process_time() - started) / len(ids) * 1000)
    figures = {"machine": machine(), "load_average": [round(x, 2) for x in os.getloadavg()],
               "requests": args.requests, "cpu_ms_per_request": {k: statistics.median(v) for k, v in cpu.items()}}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"machine: {figures['machine']}; load average {figures['load_average']}")
    print(f"{args.requests} GETs per client, one connection, median of {args.runs}: client CPU per request")
    for name, value in figures["cpu_ms_per_request"].items():  # type: ignore[union-attr]
        print(f"  {name:28} {value:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

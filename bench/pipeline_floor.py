"""The floor under `bench/pipeline.py`: what one event costs before Cairn does anything.

An event in the pipeline bench is a signed webhook received over HTTP and, at the end, a pull
request whose body is read and edited through PyGithub. Neither part is Cairn's logic, and
neither can be skipped with the stack Cairn is built on (uvicorn + FastAPI, PyGithub over
requests). This measures both on this machine, in CPU milliseconds per event:

- **ingress**: `--events` signed `work_item` webhooks (the bench's own bodies) sent by the
  bench's keep-alive senders to uvicorn + FastAPI answering 202 after the Standard Webhooks
  signature check, storing nothing; CPU of the server process, and of the senders;
- **github**: PyGithub reading a pull request and editing its body on the GitHub contract
  fake, as Cairn's embed does (two requests); CPU of the client thread, and of the fake.

`ceiling_eps` is the rate two cores could sustain if Cairn's own work (parsing, routing,
storage, durability) cost nothing: 2 × 1000 ÷ (server + client + fake milliseconds); the
load generator's own share is left out in Cairn's favour. Last line, one JSON object.

    .venv/bin/python bench/pipeline_floor.py --events 2000
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import pipeline  # the pipeline bench: its world, bodies and senders
from github import Auth, Github

from connectors.github.fake import FakeGitHub

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def serve_ingress(port: int) -> None:
    """The ingress floor's server: verify the signature, answer 202, keep nothing."""
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from connectors.standard_webhooks import StandardWebhooksVerifier

    verifier = StandardWebhooksVerifier(pipeline.SECRET)
    app = FastAPI()

    @app.post("/hooks/{source}", status_code=202)
    async def receive(source: str, request: Request) -> JSONResponse:
        body = await request.body()
        verifier.verify(request.headers, body)
        return JSONResponse({"status": "accepted"}, status_code=202)

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def ingress(bodies: list[bytes], concurrency: int) -> dict[str, float]:
    port = pipeline.free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve-ingress", str(port)])
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("the ingress floor's server did not start") from None
                time.sleep(0.1)
        pipeline.send_burst(url, bodies[:200], concurrency)  # warm up
        server_before, own_before = cpu_seconds(server.pid), time.process_time()
        started = time.perf_counter()
        pipeline.send_burst(url, bodies, concurrency)
        taken = time.perf_counter() - started
        server_cpu = cpu_seconds(server.pid) - server_before
        own_cpu = time.process_time() - own_before
    finally:
        server.terminate()
        server.wait(10)
    n = len(bodies)
    return {
        "ingress_server_ms": round(1000 * server_cpu / n, 2),
        "sender_ms": round(1000 * own_cpu / n, 2),
        "ingress_rate": round(n / taken, 1),
    }


def github(items: list[object], events: int) -> dict[str, float]:
    with FakeGitHub(actor="cairn-bot").running() as fake:
        pulls = []
        for n in range(events):
            item = items[n % len(items)]
            opened = fake.open_pull(
                item.project,  # type: ignore[attr-defined]
                title="change",
                body="Some description.",
                files=["src/a.py"],
            )
            pulls.append((item.project, opened.payload["number"]))  # type: ignore[attr-defined]
        client = Github(
            auth=Auth.Token("ghp_fake"),
            base_url=fake.url,
            retry=None,
            lazy=True,
            seconds_between_requests=0,  # as the pipeline bench sets Cairn: no pacing
            seconds_between_writes=0,
        )

        def one(repo: str, number: int, n: int) -> None:
            pr = client.get_repo(repo).get_pull(number)
            body = pr.body or ""
            pr.edit(body=f"{body}\n\n## Lessons\n- [ ] item {n}")

        for n, (repo, number) in enumerate(pulls[:100]):  # warm up
            one(repo, number, n)
        thread_before, process_before = time.thread_time(), time.process_time()
        for n, (repo, number) in enumerate(pulls):
            one(repo, number, n)
        client_cpu = time.thread_time() - thread_before
        fake_cpu = time.process_time() - process_before - client_cpu
        assert threading.current_thread() is threading.main_thread()
    return {
        "github_client_ms": round(1000 * client_cpu / events, 2),
        "github_fake_ms": round(1000 * fake_cpu / events, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve-ingress", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ingress is not None:
        serve_ingress(args.serve_ingress)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cairn-floor-") as folder:
        world = pipeline.World(100, 100, args.events, args.seed, Path(folder))
    bodies = [pipeline._body(item) for item in world.items]
    result = {"bench": "pipeline_floor", "events": args.events}
    result.update(ingress(bodies, args.concurrency))
    result.update(github(list(world.items), args.events))
    floor = result["ingress_server_ms"] + result["github_client_ms"] + result["github_fake_ms"]
    result["floor_ms"] = round(floor, 2)
    result["ceiling_eps"] = round(2 * 1000 / floor, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

"""The Prometheus endpoint of a real node: counts that move with the work done."""

import asyncio
import urllib.request

import fero


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        return {ln.split(" ")[0]: float(ln.split(" ")[1]) for ln in r.read().decode().splitlines()
                if ln and not ln.startswith("#")}


def test_metrics_count_commits_and_members(tmp_path):
    async def main():
        node = fero.Node("m1", port=0, data_dir=tmp_path, metrics_port=0)
        await node.start()
        try:
            before = await asyncio.to_thread(scrape, node.metrics_port)
            async with fero.connect(node.address) as c:
                for i in range(25):
                    await c.add("m", 1, ticket=f"t{i}")
                await c.add("m", 1, ticket="t0")  # a retry
            after = await asyncio.to_thread(scrape, node.metrics_port)
        finally:
            await node.stop()
        return before, after

    before, after = asyncio.run(main())
    assert after["fero_commits_total"] - before["fero_commits_total"] == 25
    assert after["fero_duplicates_total"] - before["fero_duplicates_total"] == 1
    assert after['fero_members{status="alive"}'] == 1
    assert after["fero_coherent"] == 1
    assert after["fero_wal_fsyncs_total"] > before["fero_wal_fsyncs_total"]
    assert after["fero_partitions_owned"] == 256

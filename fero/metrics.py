"""Prometheus metrics: a text exposition of every component's statistics().

`fero serve --metrics-port 9400` serves them at http://HOST:9400/metrics. The page is
built on each scrape from the frozen statistics the components already keep, so the
hot paths carry no metric bookkeeping of their own.
"""

from __future__ import annotations

import asyncio
import gc
from typing import TYPE_CHECKING

import structlog

from fero import heap

if TYPE_CHECKING:
    from fero.node import Node

log = structlog.get_logger("fero.metrics")


def render(node: "Node") -> str:
    """The metrics page (Prometheus text format 0.0.4)."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, value: float, labels: str = "") -> None:
        if not any(ln.startswith(f"# TYPE {name} ") for ln in lines):
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
        lines.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")

    e = node.engine.statistics()
    w = node.engine.wal.statistics()
    metric("fero_commits_total", "counter", "Records committed by this node as owner.", e.commits)
    metric("fero_duplicates_total", "counter", "Records acknowledged again by ticket, not applied.", e.duplicates)
    metric("fero_records", "gauge", "Records in this node's partition logs.", e.records)
    metric("fero_counters", "gauge", "Counters held by this node.", e.counters)
    metric("fero_subscribers", "gauge", "Open subscriptions on this node.", e.subscribers)
    metric("fero_snapshots_total", "counter", "Snapshots taken.", e.snapshots)
    metric("fero_gaps_total", "counter", "Records held back because their origin run had a hole.", node.engine.gaps)
    metric("fero_wal_fsyncs_total", "counter", "fsync calls on the log.", w.fsyncs)
    metric("fero_wal_last_fsync_seconds", "gauge", "Duration of the last fsync.", w.last_fsync_ms / 1000)
    metric("fero_wal_bytes", "gauge", "Bytes in log segments (in memory: with what keeping each frame costs).", w.bytes)
    metric("fero_forwards_total", "counter", "Requests forwarded to another owner (proxy hops).", node.forwards)
    metric("fero_coherent", "gauge", "1 if this node sees the whole cluster healthy.", int(node.coherent()))
    metric("fero_partitions_owned", "gauge", "Partitions this node owns.", len(node.router.owned()))
    if node.membership is not None:
        s = node.membership.statistics()
        for status in ("alive", "suspect", "dead", "left"):
            metric("fero_members", "gauge", "Members by status, as this node sees them.", getattr(s, status),
                   f'status="{status}"')
        metric("fero_membership_changes_total", "counter", "Membership changes seen (events).", node.membership.events)
        metric("fero_suspicions_total", "counter", "Probes that ended in suspicion of the target.", s.probe_failures)
        metric("fero_refutations_total", "counter", "Times this node refuted a suspicion of itself.", s.refutations)
        metric("fero_health_score", "gauge", "Lifeguard local health score (0 is healthy).", s.health_score)
    if node.ownership is not None:
        # A metric's lines come together, after its HELP and TYPE (the text format's rule).
        links = [link.statistics() for link in node.replicator.links.values()]
        for st in links:
            metric("fero_replication_lag_records", "gauge", "Records a replica still lacks.", st.lag_records,
                   f'replica="{st.replica}"')
        for st in links:
            metric("fero_replication_up", "gauge", "1 if the replica answers.", int(st.up), f'replica="{st.replica}"')
    metric("fero_gc_frozen_objects", "gauge", "Objects the collector skips (frozen once the node served; see fero.heap).",
           gc.get_freeze_count())
    if heap.pauses is not None:
        p = heap.pauses
        for name, kind, help_, per_generation in (
            ("fero_gc_collections_total", "counter", "Garbage collections, by generation.", p.count),
            ("fero_gc_pause_seconds_total", "counter", "Time Python code stood still in garbage collections.", p.seconds),
            ("fero_gc_pause_longest_seconds", "gauge", "The longest garbage collection so far.", p.longest),
        ):
            for g, value in enumerate(per_generation):
                metric(name, kind, help_, value, f'generation="{g}"')
    return "\n".join(lines) + "\n"


async def serve(node: "Node", host: str, port: int) -> asyncio.AbstractServer:
    """A minimal HTTP/1.1 server for GET /metrics; returns the asyncio server."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if path.split(b"?")[0] == b"/metrics":
                body, status = render(node).encode(), b"200 OK"
                ctype = b"text/plain; version=0.0.4; charset=utf-8"
            else:
                body, status, ctype = b"see /metrics\n", b"404 Not Found", b"text/plain"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("metrics.failed")
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    return server

"""Membership messages ↔ fero.v1 peer protobufs, one table each way.

Decoding checks shape (a known body, non-empty ids) and raises ValueError for anything
else, which the peer servicer turns into INVALID_ARGUMENT: a malformed packet is
dropped, never handed to the state machine.
"""

from __future__ import annotations

from fero.membership import messages as m
from fero.v1 import peer_pb2 as pb

_STATUSES = (m.ALIVE, m.SUSPECT, m.DEAD, m.LEFT)


def _updates_out(updates: tuple[m.Update, ...], into) -> None:
    for u in updates:
        mu = into.add()
        if type(u) is m.Alive:
            mu.alive.node, mu.alive.address, mu.alive.incarnation = u.node, u.address, u.incarnation
        elif type(u) is m.Suspect:
            mu.suspect.node, mu.suspect.incarnation, mu.suspect.from_node = u.node, u.incarnation, u.from_node
        else:
            mu.dead.node, mu.dead.incarnation, mu.dead.from_node = u.node, u.incarnation, u.from_node


def _updates_in(updates) -> tuple[m.Update, ...]:
    out: list[m.Update] = []
    for mu in updates:
        kind = mu.WhichOneof("kind")
        if kind == "alive":
            a = mu.alive
            if not a.node or not a.address:
                raise ValueError("alive update without node or address")
            out.append(m.Alive(a.node, a.address, a.incarnation))
        elif kind == "suspect":
            s = mu.suspect
            if not s.node:
                raise ValueError("suspect update without node")
            out.append(m.Suspect(s.node, s.incarnation, s.from_node))
        elif kind == "dead":
            d = mu.dead
            if not d.node:
                raise ValueError("dead update without node")
            out.append(m.Dead(d.node, d.incarnation, d.from_node))
        else:
            raise ValueError("member update with no kind")
    return tuple(out)


def _members_out(members: tuple[m.MemberState, ...], into) -> None:
    for s in members:
        into.add(node=s.node, address=s.address, incarnation=s.incarnation, status=s.status)


def _members_in(members) -> tuple[m.MemberState, ...]:
    out = []
    for r in members:
        if not r.node or not r.address or r.status not in _STATUSES:
            raise ValueError(f"bad member record {r.node!r} {r.address!r} {r.status!r}")
        out.append(m.MemberState(r.node, r.address, r.incarnation, r.status))
    return tuple(out)


def encode(msg: m.Message, from_address: str, cluster: str) -> pb.PeerMessage:
    env = pb.PeerMessage(from_address=from_address, cluster=cluster)
    kind = type(msg)
    if kind is m.Ping:
        b = env.ping
        b.seq, b.source, b.target, b.ring_checksum = msg.seq, msg.source, msg.target, msg.ring_checksum
    elif kind is m.Ack:
        b = env.ack
        b.seq, b.source, b.ring_checksum = msg.seq, msg.source, msg.ring_checksum
    elif kind is m.Nack:
        b = env.nack
        b.seq, b.source = msg.seq, msg.source
    elif kind is m.PingReq:
        b = env.ping_req
        b.seq, b.source, b.target, b.target_address, b.nack = msg.seq, msg.source, msg.target, msg.target_address, msg.nack
    elif kind is m.Gossip:
        b = env.gossip
        b.source = msg.source
    elif kind is m.PushPullRequest:
        b = env.push_pull_request
        b.source, b.source_address, b.join = msg.source, msg.source_address, msg.join
        _members_out(msg.members, b.members)
        return env
    elif kind is m.PushPullResponse:
        b = env.push_pull_response
        b.source = msg.source
        _members_out(msg.members, b.members)
        return env
    else:
        raise TypeError(f"not a membership message: {kind.__name__}")
    _updates_out(msg.updates, b.updates)
    return env


def decode(env: pb.PeerMessage) -> m.Message:
    body = env.WhichOneof("body")
    if body == "ping":
        b = env.ping
        return m.Ping(b.seq, b.source, b.target, b.ring_checksum, _updates_in(b.updates))
    if body == "ack":
        b = env.ack
        return m.Ack(b.seq, b.source, b.ring_checksum, _updates_in(b.updates))
    if body == "nack":
        b = env.nack
        return m.Nack(b.seq, b.source, _updates_in(b.updates))
    if body == "ping_req":
        b = env.ping_req
        if not b.target_address:
            raise ValueError("ping-req without a target address")
        return m.PingReq(b.seq, b.source, b.target, b.target_address, b.nack, _updates_in(b.updates))
    if body == "gossip":
        return m.Gossip(env.gossip.source, _updates_in(env.gossip.updates))
    if body == "push_pull_request":
        b = env.push_pull_request
        return m.PushPullRequest(b.source, b.source_address, _members_in(b.members), b.join)
    if body == "push_pull_response":
        b = env.push_pull_response
        return m.PushPullResponse(b.source, _members_in(b.members))
    raise ValueError("peer message with no body")

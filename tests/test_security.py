"""TLS, mutual TLS, the cluster secret and bearer tokens, on real nodes over loopback.
Each refusal is proven with its status: a wrong certificate fails the handshake
(UNAVAILABLE), a missing token or secret is UNAUTHENTICATED, a wrong secret or a
read-only token on a write PERMISSION_DENIED."""

import asyncio
import datetime
import ipaddress

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

import fero
from fero.config import Config
from fero.errors import PermissionDenied, Unauthenticated, Unavailable
from fero.membership.config import MembershipConfig
from fero.security import Security
from fero.v1 import peer_pb2, peer_pb2_grpc

from .conftest import eventually


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn="fero test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def issue(ca, cn):
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def cfg():
    return Config(membership=MembershipConfig.local())


def test_mutual_tls_serves_trusted_clients_and_refuses_others():
    ca, other_ca = make_ca(), make_ca("another CA")
    node_cert, node_key = issue(ca, "node")
    client_cert, client_key = issue(ca, "client")
    stranger_cert, stranger_key = issue(other_ca, "stranger")

    async def main():
        sec = Security(tls_cert=node_cert, tls_key=node_key, tls_ca=pem(ca[1]))
        node = fero.Node("t1", port=0, config=cfg(), security=sec)
        await node.start()
        try:
            async with fero.connect(node.address, tls_ca=pem(ca[1]), tls_cert=client_cert, tls_key=client_key) as c:
                assert (await c.add("secure", 3)).value == 3
            for kwargs in (
                {},  # plain TCP to a TLS port
                {"tls_ca": pem(ca[1])},  # TLS, but no client certificate
                {"tls_ca": pem(ca[1]), "tls_cert": stranger_cert, "tls_key": stranger_key},  # wrong CA
            ):
                async with fero.connect(node.address, retry_for_s=0.0, timeout_s=3.0, **kwargs) as c:
                    with pytest.raises(Unavailable):
                        await c.get("secure")
        finally:
            await node.stop()

    asyncio.run(main())


def test_two_tls_nodes_with_the_secret_form_a_cluster_and_forward():
    ca = make_ca()
    certs = [issue(ca, f"n{i}") for i in range(2)]

    async def main():
        nodes = [fero.Node(f"n{i}", port=0, config=cfg(),
                           security=Security(tls_cert=c, tls_key=k, tls_ca=pem(ca[1]), cluster_secret="s3cret"))
                 for i, (c, k) in enumerate(certs)]
        await nodes[0].start()
        nodes[1].seeds = [nodes[0].address]
        await nodes[1].start()
        try:
            await eventually(lambda: all(len(n.ring) == 2 and n.coherent() for n in nodes), 20, "a TLS cluster of 2")
            client_cert, client_key = issue(ca, "client")
            async with fero.connect(nodes[0].address, route=False, tls_ca=pem(ca[1]), tls_cert=client_cert,
                                    tls_key=client_key) as c:
                for i in range(40):  # about half of these are forwarded to n1, over TLS with the secret
                    await c.add(f"k{i}", i, acks="all")  # and replicated on the Append streams
                assert (await c.get("k39")).value == 39

                async def copies_complete():  # each node holds every partition (RF 3 > 2 nodes)
                    for n in nodes:
                        got = [(await c.get(f"k{i}", stale_ok=True, address=n.address)).value for i in range(40)]
                        if got != list(range(40)):
                            return False
                    return True

                await eventually(copies_complete, 20, "both copies of every counter (replicated over the streams)")
            assert nodes[0].forwards > 0
            assert all(link.calls > 0 and link._stream is not None for n in nodes for link in n.replicator.links.values())
        finally:
            for n in nodes:
                await n.stop()

    asyncio.run(main())


def test_a_node_with_the_wrong_secret_cannot_join_and_peer_calls_need_it():
    async def main():
        a = fero.Node("a", port=0, config=cfg(), security=Security(cluster_secret="right"))
        b = fero.Node("b", port=0, config=cfg(), security=Security(cluster_secret="wrong"))
        await a.start()
        b.seeds = [a.address]
        await b.start()
        try:
            await asyncio.sleep(1.0)  # b keeps trying to join; a must refuse every time
            assert len(a.ring) == 1 and len(b.ring) == 1
            async with grpc.aio.insecure_channel(a.address) as ch:
                stub = peer_pb2_grpc.PeerStub(ch)
                with pytest.raises(grpc.aio.AioRpcError) as none:
                    await stub.Digest(peer_pb2.DigestRequest(partitions=[0]), timeout=3)
                assert none.value.code() == grpc.StatusCode.UNAUTHENTICATED
                with pytest.raises(grpc.aio.AioRpcError) as wrong:
                    await stub.Digest(peer_pb2.DigestRequest(partitions=[0]), metadata=(("fero-secret", "nope"),), timeout=3)
                assert wrong.value.code() == grpc.StatusCode.PERMISSION_DENIED
                ok = await stub.Digest(peer_pb2.DigestRequest(partitions=[0]), metadata=(("fero-secret", "right"),), timeout=3)
                assert ok.digests[0].partition == 0
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(main())


def test_bearer_tokens_with_read_and_write_roles(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# token role\nreader-token read\nwriter-token write\n")

    async def main():
        node = fero.Node("tk", port=0, config=cfg(), security=Security.from_files(tokens_file=str(tokens)))
        await node.start()
        try:
            async with fero.connect(node.address, retry_for_s=0.0, token="writer-token") as w:
                assert (await w.add("billing", 7)).value == 7
            async with fero.connect(node.address, retry_for_s=0.0, token="reader-token") as r:
                assert (await r.get("billing")).value == 7
                # A stream carries the token too: a subscription sees the add.
                sub = r.subscribe(prefix="billing", earliest=True)
                change = await asyncio.wait_for(sub.__anext__(), 10)
                assert (change.key, change.amount) == ("billing", 7)
                await sub.aclose()
                with pytest.raises(PermissionDenied, match="read-only token cannot call CommitStream"):
                    await r.add("billing", 1)
            async with fero.connect(node.address, retry_for_s=0.0) as anon:
                with pytest.raises(Unauthenticated, match="needs a bearer token"):
                    await anon.get("billing")
            async with fero.connect(node.address, retry_for_s=0.0, token="made-up") as bad:
                with pytest.raises(Unauthenticated, match="unknown bearer token"):
                    await bad.get("billing")
            async with grpc.aio.insecure_channel(node.address) as ch:  # health stays open
                h = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
                assert h.status == health_pb2.HealthCheckResponse.SERVING
            async with fero.connect(node.address, token="writer-token") as w:
                assert (await w.get("billing")).value == 7, "refused calls changed nothing"
        finally:
            await node.stop()

    asyncio.run(main())


@pytest.mark.parametrize("kwargs, message", [
    ({"cert": "x.pem"}, "--tls-cert and --tls-key go together"),
    ({"ca": "ca.pem"}, "needs --tls-cert and --tls-key"),
    ({"tokens_file": "/nonexistent/tokens"}, "cannot read tokens file"),
])
def test_bad_security_settings_are_refused_naming_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Security.from_files(**kwargs)

"""Who may call what: TLS, the cluster secret, and client bearer tokens.

    TLS        --tls-cert/--tls-key serve TLS; with --tls-ca the node also requires and
               checks client certificates (mutual TLS), and uses the same key pair and
               CA for its own calls to peers.
    secret     --cluster-secret: every peer call (membership, replication, forwarding)
               carries it as `fero-secret` metadata; a call to the Peer service without
               it is UNAUTHENTICATED, with a wrong one PERMISSION_DENIED. Over plain TCP
               it travels in clear: use it with TLS.
    tokens     --tokens FILE (lines `TOKEN read` or `TOKEN write`): clients send
               `authorization: Bearer TOKEN`; none is UNAUTHENTICATED, a read token on a
               write call PERMISSION_DENIED. Peers holding the cluster secret pass too.

All checks run in one server interceptor, before any servicer: a refused call costs no
work and never reaches the node's state.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import grpc

#: Methods of the public services that change state (need a write token).
WRITE_METHODS = frozenset({
    "/fero.v1.Counters/Add", "/fero.v1.Counters/Setup", "/fero.v1.Changelog/Commit",
    "/fero.v1.Changelog/CommitStream",
})
#: Always open: health checks and reflection.
OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
PEER_PREFIX = "/fero.v1.Peer/"
SECRET_KEY = "fero-secret"


@dataclass(frozen=True)
class Security:
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    tls_ca: bytes | None = None
    cluster_secret: str | None = None
    #: token -> "read" or "write"
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_files(cls, cert: str | None = None, key: str | None = None, ca: str | None = None,
                   cluster_secret: str | None = None, tokens_file: str | None = None) -> "Security":
        """Reads the files; ValueError says which one is missing or malformed."""
        if bool(cert) != bool(key):
            raise ValueError("--tls-cert and --tls-key go together")
        if ca and not cert:
            raise ValueError("--tls-ca (mutual TLS) needs --tls-cert and --tls-key")

        def read(path: str | None, what: str) -> bytes | None:
            if not path:
                return None
            try:
                return Path(path).read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read {what} {path}: {exc.strerror}") from None

        tokens: dict[str, str] = {}
        raw = read(tokens_file, "tokens file")
        if raw is not None:
            for n, line in enumerate(raw.decode().splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split()
                if len(parts) != 2 or parts[1] not in ("read", "write"):
                    raise ValueError(f"tokens file {tokens_file} line {n}: expected 'TOKEN read' or 'TOKEN write'")
                tokens[parts[0]] = parts[1]
        return cls(read(cert, "TLS certificate"), read(key, "TLS key"), read(ca, "TLS CA"), cluster_secret or None, tokens)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def server_credentials(self) -> grpc.ServerCredentials:
        assert self.tls_cert is not None and self.tls_key is not None
        return grpc.ssl_server_credentials(
            [(self.tls_key, self.tls_cert)], root_certificates=self.tls_ca, require_client_auth=self.tls_ca is not None
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """For this node's calls to peers: trust the CA, present our own pair."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.tls_ca or self.tls_cert, private_key=self.tls_key, certificate_chain=self.tls_cert
        )

    def peer_metadata(self) -> tuple[tuple[str, str], ...]:
        return ((SECRET_KEY, self.cluster_secret),) if self.cluster_secret else ()

    def check(self, method: str, metadata: dict[str, str]) -> tuple[grpc.StatusCode, str] | None:
        """None if the call may proceed, else the status to refuse it with."""
        if method.startswith(OPEN_PREFIXES):
            return None
        secret = metadata.get(SECRET_KEY)
        secret_ok = self.cluster_secret is not None and secret is not None and hmac.compare_digest(
            secret.encode(), self.cluster_secret.encode()
        )
        if method.startswith(PEER_PREFIX):
            if self.cluster_secret is None:
                return None
            if secret is None:
                return grpc.StatusCode.UNAUTHENTICATED, "peer calls need the cluster secret (fero-secret)"
            return None if secret_ok else (grpc.StatusCode.PERMISSION_DENIED, "wrong cluster secret")
        if not self.tokens or secret_ok:
            return None
        auth = metadata.get("authorization", "")
        if not auth.startswith("Bearer "):
            return grpc.StatusCode.UNAUTHENTICATED, "this node needs a bearer token (authorization: Bearer TOKEN)"
        role = self.tokens.get(auth[len("Bearer "):].strip())
        if role is None:
            return grpc.StatusCode.UNAUTHENTICATED, "unknown bearer token"
        if method in WRITE_METHODS and role != "write":
            return grpc.StatusCode.PERMISSION_DENIED, f"a {role}-only token cannot call {method.rsplit('/', 1)[1]}"
        return None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, security: Security) -> None:
        self.security = security

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        metadata = {k: v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}
        refusal = self.security.check(details.method, metadata)
        handler = await continuation(details)
        if refusal is None or handler is None:
            return handler
        code, message = refusal

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(code, message)

        async def deny_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(code, message)
            yield  # pragma: no cover  (makes this an async generator)

        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                deny_stream, handler.request_deserializer, handler.response_serializer)
        if handler.stream_stream is not None or handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(deny, handler.request_deserializer, handler.response_serializer)
        return grpc.unary_unary_rpc_method_handler(deny, handler.request_deserializer, handler.response_serializer)


class _AddMetadata:
    """Adds fixed metadata (the cluster secret, a bearer token) to every call. One
    instance per kind of call: a grpc.aio channel files each interceptor under the
    first kind it implements only."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def _details(self, d: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        md = tuple(d.metadata or ()) + self.metadata
        return grpc.aio.ClientCallDetails(d.method, d.timeout, md, d.credentials, d.wait_for_ready)


class _UnaryUnary(_AddMetadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request)


class _UnaryStream(_AddMetadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request)


class _StreamStream(_AddMetadata, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request_iterator)


def open_channel(address: str, options: list[tuple[str, Any]], credentials: grpc.ChannelCredentials | None = None,
                 metadata: tuple[tuple[str, str], ...] = ()) -> grpc.aio.Channel:
    """A channel to `address`: TLS if `credentials`, adding `metadata` to every call."""
    interceptors = [_UnaryUnary(metadata), _UnaryStream(metadata), _StreamStream(metadata)] if metadata else None
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)

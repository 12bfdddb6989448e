"""Flume's Avro RPC bytes: the protocol hash and the captured exchanges from avro-rpc.md, reproduced exactly."""

from __future__ import annotations

import socket
import struct
import threading
import zlib

import pytest

from agent import rpc
from agent.core import Event


def test_protocol_text_and_md5_are_flumes() -> None:
    assert len(rpc.PROTOCOL_TEXT) == 1334
    assert rpc.PROTOCOL_MD5.hex() == "86aadae2c45474c0fe93ffd0f2350a65"


def _flat(hexes: str) -> bytes:
    return bytes.fromhex(hexes.replace(" ", "").replace("|", ""))


def test_server_decodes_a_java_clients_first_request_and_answers_like_java() -> None:
    # C→S serial 1 from a Java Avro 1.11 client: handshake, meta, "appendBatch", two events (avro-rpc.md §2.5).
    payload = _flat("86aadae2c45474c0fe93ffd0f2350a65 00 86aadae2c45474c0fe93ffd0f2350a65 02 00 | 00 |"
                    "16 617070656e644261746368 | 04 02 026b 0276 00 0a 68656c6c6f 00 00 00")
    state = rpc.ServerState()
    prefix, name, events, kind = rpc.decode_request(state, payload)
    assert (name, kind) == ("appendBatch", "appendBatch") and state.connected
    assert events == [Event(b"hello", {"k": "v"}), Event(b"", {})]
    # S→C: BOTH handshake, empty meta, flag false, Status OK (the Java server splits it in 3 buffers; same bytes)
    assert rpc.encode_response(prefix, "OK") == _flat("00 00 00 00 | 00 | 00 00")
    # serial 2 carries no handshake
    prefix2, name2, events2, _ = rpc.decode_request(state, _flat("00 0c 617070656e64 02 026b 0276 00 0a 68656c6c6f"))
    assert prefix2 == b"" and name2 == "append" and events2 == [Event(b"hello", {"k": "v"})]
    assert rpc.encode_response(prefix2, "FAILED") == b"\x00\x00\x02"


def test_unknown_client_hash_gets_none_with_our_protocol() -> None:
    state = rpc.ServerState()
    other = bytes(16)
    payload = other + b"\x00" + rpc.PROTOCOL_MD5 + b"\x02\x00" + b"\x00" + b"\x00"
    prefix, name, events, kind = rpc.decode_request(state, payload)
    assert kind == "none" and not state.connected
    assert prefix[:1] == b"\x04"  # NONE
    assert rpc.PROTOCOL_TEXT.encode() in prefix and rpc.PROTOCOL_MD5 in prefix


def test_pack_layout_and_limits() -> None:
    assert rpc.pack(7, b"abc") == struct.pack(">iii", 7, 1, 3) + b"abc"

    def conn_of(data: bytes) -> rpc.Connection:
        a, b = socket.socketpair()
        a.sendall(data)
        a.close()
        return rpc.Connection(b)

    assert conn_of(rpc.pack(3, b"xyz")).read_pack() == (3, b"xyz")
    with pytest.raises(rpc.FrameError, match="buffers"):
        conn_of(struct.pack(">ii", 1, 0)).read_pack()
    with pytest.raises(rpc.FrameError, match="limit"):
        conn_of(struct.pack(">iii", 1, 1, rpc.MAX_FRAME + 1)).read_pack()
    with pytest.raises(rpc.FrameError, match="middle of a pack"):
        conn_of(struct.pack(">iii", 1, 1, 10) + b"abc").read_pack()
    with pytest.raises(EOFError):
        conn_of(b"").read_pack()
    with pytest.raises(rpc.FrameError, match="cannot decode"):
        rpc.decode_request(rpc.ServerState(), b"\xff" * 40)


def test_deflate_is_one_sync_flushed_zlib_stream_per_direction() -> None:
    a, b = socket.socketpair()
    sender = rpc.Connection(a, deflate=True)
    sender.write_pack(1, b"first")
    sender.write_pack(2, b"second")
    raw = b.recv(65536)
    assert raw[:2] == b"\x78\x9c" and raw.endswith(b"\x00\x00\xff\xff")
    d = zlib.decompressobj()
    assert d.decompress(raw) == rpc.pack(1, b"first") + rpc.pack(2, b"second")
    a.close()
    b.close()


def test_client_and_server_round_trip_over_a_socket_including_the_none_path() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    got: list[Event] = []

    def serve() -> None:
        sock, _ = listener.accept()
        conn = rpc.Connection(sock, deflate=True)
        state = rpc.ServerState()
        while True:
            try:
                serial, payload = conn.read_pack()
            except EOFError:
                return
            prefix, name, events, kind = rpc.decode_request(state, payload)
            if kind == "none":
                conn.write_pack(serial, prefix)
                continue
            got.extend(events or [])
            conn.write_pack(serial, rpc.encode_response(prefix, "OK"))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client = rpc.RpcClient("127.0.0.1", port, deflate=True)
    client._remote_hashes[("127.0.0.1", port)] = bytes(16)  # a wrong guess: CLIENT path
    client.append_batch([Event(b"a", {"h": "é"}), Event(b"")])
    client.append(Event(b"b"))
    client.close()
    t.join(5)
    assert got == [Event(b"a", {"h": "é"}), Event(b""), Event(b"b")]
    listener.close()


def _tls_contexts(tmp_path):  # noqa: ANN001, ANN202
    import ssl

    from peers.certs import self_signed, trusting_client

    cert, key, _ = self_signed(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, trusting_client()


def test_tls_with_deflate_runs_tls_inside_the_zlib_stream(tmp_path) -> None:  # noqa: ANN001
    """Flume 1.11's layering with ssl + deflate: the wire is zlib, and what it inflates to is TLS records."""
    server_ctx, client_ctx = _tls_contexts(tmp_path)
    a, b = socket.socketpair()
    wire = bytearray()

    class Tap:  # the client's socket, keeping a copy of every byte it sends
        def __init__(self, sock: socket.socket):
            self.sock = sock

        def sendall(self, data: bytes) -> None:
            wire.extend(data)
            self.sock.sendall(data)

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self.sock, name)

    got: list[tuple[int, bytes]] = []

    def serve() -> None:
        conn = rpc.Connection(rpc.ZlibTlsSocket(b, server_ctx, server_side=True), deflate=False)  # type: ignore[arg-type]
        conn.sock.do_handshake()  # type: ignore[attr-defined]
        while True:
            try:
                serial, payload = conn.read_pack()
            except EOFError:
                return
            got.append((serial, payload))
            conn.write_pack(serial, payload[::-1])

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client = rpc.ZlibTlsSocket(Tap(a), client_ctx, server_side=False)  # type: ignore[arg-type]
    client.do_handshake()
    conn = rpc.Connection(client, deflate=False)  # type: ignore[arg-type]
    big = bytes(range(256)) * 2000  # more than one TLS record
    conn.write_pack(1, b"first")
    conn.write_pack(2, big)
    assert conn.read_pack() == (1, b"tsrif")
    assert conn.read_pack() == (2, big[::-1])
    conn.close()
    t.join(5)
    assert got == [(1, b"first"), (2, big)]
    assert client.version() in ("TLSv1.2", "TLSv1.3")
    assert wire[:2] == b"\x78\x9c"  # a zlib stream on the wire ...
    inner = zlib.decompressobj().decompress(bytes(wire))
    assert inner[0] == 0x16 and inner[1] == 0x03  # ... that carries a TLS handshake record first
    assert big[:64] not in inner  # and the packs only inside TLS


def test_tls_with_deflate_refuses_a_corrupt_zlib_stream(tmp_path) -> None:  # noqa: ANN001
    server_ctx, _ = _tls_contexts(tmp_path)
    a, b = socket.socketpair()
    a.sendall(b"\x78\x9c\xff\xff\xff\xff garbage")
    with pytest.raises(rpc.FrameError, match="zlib stream around TLS is corrupt"):
        rpc.ZlibTlsSocket(b, server_ctx, server_side=True).do_handshake()
    a.close()
    b.close()

"""File channel encryption with Flume's ``encryption.*`` settings and keys made by keytool (-genseckey, JCEKS):
no plaintext on disk, restarts and key rotation replay, a missing key refuses the start without skipping anything,
torn tails, and configuration errors with their line (never a password)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from agent import config
from agent.core import ChannelException, Event
from agent.spec import Conf
from channels.file import FileChannel
from conftest import put_events as put
from conftest import take_events as take


def enc(stores, active: str = "key-0", keys: str = "key-0", own_password: bool = True) -> dict[str, str]:  # noqa: ANN001
    props = {"encryption.activeKey": active, "encryption.cipherProvider": "AESCTRNOPADDING",
             "encryption.keyProvider": "JCEKSFILE", "encryption.keyProvider.keyStoreFile": str(stores.keys_jceks),
             "encryption.keyProvider.keyStorePasswordFile": str(stores.storepass_txt),
             "encryption.keyProvider.keys": keys}
    if own_password:
        for alias in keys.split():
            props[f"encryption.keyProvider.keys.{alias}.passwordFile"] = str(stores.dir / f"keypass{alias[-1]}.txt")
    return props


def make(tmp: Path, props: dict[str, str], **extra: str) -> FileChannel:
    raw = {"checkpointDir": str(tmp / "cp"), "dataDirs": str(tmp / "data"), "keep-alive": "0", **props, **extra}
    return FileChannel("c1", Conf.from_dict(FileChannel.spec, **{k.replace(".", "__"): v for k, v in raw.items()}))


def drain(ch: FileChannel) -> list[Event]:
    out: list[Event] = []
    while got := take(ch, 1000):
        out += got
    return out


def evs(start: int, end: int) -> list[Event]:
    return [Event(b"secret-body-%06d" % i, {"customer": f"acct-{i}"}) for i in range(start, end)]


def disk_bytes(tmp: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp.rglob("*")) if p.is_file())


def test_no_plaintext_on_disk_and_restart_replays(tmp_path: Path, java_stores) -> None:
    ch = make(tmp_path, enc(java_stores))
    ch.start()
    put(ch, evs(0, 3000))
    ch.stop()
    data = disk_bytes(tmp_path)
    assert len(data) > 3000 * 16  # the records are there …
    for plain in (b"secret-body", b"acct-", b"customer"):  # … and none of their bodies or headers in clear
        assert plain not in data, plain
    ch2 = make(tmp_path, enc(java_stores))  # a restart reads every record back from the log
    ch2.start()
    try:
        got = drain(ch2)
    finally:
        ch2.stop()
    assert [(e.body, e.headers) for e in got] == [(e.body, e.headers) for e in evs(0, 3000)]


def test_key_rotation_replays_old_records_with_the_old_key(tmp_path: Path, java_stores) -> None:
    ch = make(tmp_path, enc(java_stores, "key-0", "key-0"))
    ch.start()
    put(ch, evs(0, 500))
    ch.stop()
    rotated = enc(java_stores, "key-1", "key-0 key-1")  # Flume's rotation: a new activeKey, the old key kept
    ch = make(tmp_path, rotated)
    ch.start()
    put(ch, evs(500, 1000))
    ch.stop()
    segment = disk_bytes(tmp_path / "data")
    assert b"\x05key-0" in segment and b"\x05key-1" in segment  # each record names its key
    ch = make(tmp_path, rotated)
    ch.start()
    try:
        assert [e.body for e in drain(ch)] == [e.body for e in evs(0, 1000)]
    finally:
        ch.stop()


def test_a_record_whose_key_is_gone_refuses_the_start_and_skips_nothing(tmp_path: Path, java_stores) -> None:
    ch = make(tmp_path, enc(java_stores, "key-0", "key-0"))
    ch.start()
    put(ch, evs(0, 200))
    ch.stop()
    gone = make(tmp_path, enc(java_stores, "key-1", "key-1"))  # key-0 dropped while its records are queued
    with pytest.raises(ChannelException) as err:
        gone.start()
    segment = next((tmp_path / "data").glob("pyflume-log-*"))
    assert (f"channel c1 cannot replay its log: 200 queued events in {segment}: key 'key-0' is not available "
            "(encryption.keyProvider.keys lists key-1). Nothing was skipped") in str(err.value)
    plain = make(tmp_path, {})  # no encryption settings at all
    with pytest.raises(ChannelException, match="encrypted with key 'key-0' and the channel has no encryption"):
        plain.start()
    back = make(tmp_path, enc(java_stores, "key-1", "key-0 key-1"))  # the key given back: everything is there
    back.start()
    try:
        assert [e.body for e in drain(back)] == [e.body for e in evs(0, 200)]
    finally:
        back.stop()


def test_plain_records_still_replay_after_encryption_is_switched_on(tmp_path: Path, java_stores) -> None:
    ch = make(tmp_path, {})
    ch.start()
    put(ch, evs(0, 100))
    ch.stop()
    ch = make(tmp_path, enc(java_stores))
    ch.start()
    try:
        put(ch, evs(100, 200))
        assert [e.body for e in drain(ch)] == [e.body for e in evs(0, 200)]
    finally:
        ch.stop()


def test_torn_tail_of_an_encrypted_log(tmp_path: Path, java_stores, caplog) -> None:
    base = tmp_path / "base"
    props = enc(java_stores)
    ch = make(base, props, checkpointOnClose="false")
    ch.start()
    put(ch, evs(0, 40))
    (seg,) = (base / "data").glob("pyflume-log-*")
    good = seg.stat().st_size
    put(ch, evs(40, 43))
    ch.stop()
    data = seg.read_bytes()
    caplog.set_level(logging.WARNING)
    for cut in range(good, len(data), 7):
        trial = tmp_path / f"cut{cut}"
        shutil.copytree(base, trial)
        (trial / "data" / seg.name).write_bytes(data[:cut])
        ch2 = make(trial, props)
        ch2.start()
        try:
            assert [e.body for e in drain(ch2)] == [e.body for e in evs(0, 40)], cut
        finally:
            ch2.stop()
        shutil.rmtree(trial)
    assert "torn record" in caplog.text


CHANNEL = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {tmp}/cp
a1.channels.c1.dataDirs = {tmp}/data
"""


def _check(tmp_path: Path, props: dict[str, str]) -> list[str]:
    f = tmp_path / "fc.conf"
    f.write_text(CHANNEL.format(tmp=tmp_path) + "".join(f"a1.channels.c1.{k} = {v}\n" for k, v in props.items()))
    _, problems = config.check([str(f)], "a1")
    return [str(p) for p in problems if p.severity == "error"]


@pytest.mark.parametrize("case, change, line, prop, message", [
    ("wrong store password", {"encryption.keyProvider.keyStorePasswordFile": "keypass1.txt"}, 15,
     "encryption.keyProvider.keyStorePasswordFile", "keys.jceks: the store password is wrong (the JCEKS integrity "
     "check fails)"),
    ("wrong key password", {"encryption.keyProvider.keys.key-0.passwordFile": "keypass1.txt"}, 17,
     "encryption.keyProvider.keys.key-0.passwordFile", "keys.jceks: the key password does not open secret key "
     "'key-0'"),
    ("active key not in the store", {"encryption.activeKey": "key-9"}, 11, "encryption.activeKey",
     "keys.jceks (JCEKS) has no secret key 'key-9' (secret keys in it: key-0, key-1)"),
    ("corrupt store", {"encryption.keyProvider.keyStoreFile": "corrupt.jceks"}, 14,
     "encryption.keyProvider.keyStoreFile", "corrupt.jceks is a corrupt JCEKS key store"),
    ("unknown cipher", {"encryption.cipherProvider": "AESGCM"}, 12, "encryption.cipherProvider",
     "'AESGCM' is not a cipher provider; expected AESCTRNOPADDING"),
])
def test_configuration_errors_name_line_and_property(tmp_path, java_stores, case, change, line, prop, message):
    (java_stores.dir / "corrupt.jceks").write_bytes(java_stores.keys_jceks.read_bytes()[:200])
    props = enc(java_stores)
    for k, v in change.items():
        props[k] = str(java_stores.dir / v) if v.endswith((".txt", ".jceks")) else v
    errors = _check(tmp_path, props)
    assert any(f"fc.conf:{line}: a1.channels.c1 (file): {prop}: " in e and message in e for e in errors), errors
    assert not any(word in e for e in errors for word in ("storepass\n", "keypass0", "keypass1'")), errors


def test_active_key_without_key_provider_is_an_error(tmp_path) -> None:
    errors = _check(tmp_path, {"encryption.activeKey": "key-0"})
    assert any("fc.conf:11: a1.channels.c1 (file): encryption.activeKey: is set but encryption.keyProvider is not"
               in e for e in errors), errors


# The user guide's two examples (File Channel: "Encryption"), paths as printed: files that are not on this
# machine are warnings, the settings themselves are valid.
USER_GUIDE = [
    """\
a1.channels.c1.encryption.activeKey = key-0
a1.channels.c1.encryption.cipherProvider = AESCTRNOPADDING
a1.channels.c1.encryption.keyProvider = key-provider-0
a1.channels.c1.encryption.keyProvider = JCEKSFILE
a1.channels.c1.encryption.keyProvider.keyStoreFile = /path/to/my.keystore
a1.channels.c1.encryption.keyProvider.keyStorePasswordFile = /path/to/my.keystore.password
a1.channels.c1.encryption.keyProvider.keys = key-0
""",
    """\
a1.channels.c1.encryption.activeKey = key-1
a1.channels.c1.encryption.cipherProvider = AESCTRNOPADDING
a1.channels.c1.encryption.keyProvider = JCEKSFILE
a1.channels.c1.encryption.keyProvider.keyStoreFile = /path/to/my.keystore
a1.channels.c1.encryption.keyProvider.keyStorePasswordFile = /path/to/my.keystore.password
a1.channels.c1.encryption.keyProvider.keys = key-0 key-1
a1.channels.c1.encryption.keyProvider.keys.key-0.passwordFile = /path/to/key-0.password
""",
]


@pytest.mark.parametrize("example", USER_GUIDE)
def test_user_guide_examples_pass_check(tmp_path, example) -> None:
    f = tmp_path / "ug.conf"
    f.write_text(CHANNEL.format(tmp=tmp_path) + example)
    topo, problems = config.check([str(f)], "a1")
    assert topo is not None, [str(p) for p in problems]
    assert [p.prop for p in problems] == ["encryption.keyProvider.keyStoreFile"]  # "not a file here" (a warning)


def test_records_take_consecutive_counter_ranges_and_never_share_keystream() -> None:
    """seal() keeps one counter-mode stream: each record starts on a fresh block and stores that counter as its IV,
    so equal plaintexts never encrypt alike and each record opens on its own."""
    import os
    import struct

    from channels.file.encryption import LogCipher

    c = LogCipher("k", {"k": os.urandom(16)})
    sizes = (1, 15, 16, 17, 1000, 1000)
    bodies = [struct.pack("<I", 1) + (b"same" * 250)[:n] for n in sizes]
    sealed = [c.seal(b) for b in bodies]
    ivs = [int.from_bytes(s[10:26], "big") for s in sealed]  # count 4 | alias_len 1 | "k" | check 4 | IV 16
    for i in range(1, len(sizes)):
        assert ivs[i] - ivs[i - 1] == -(-sizes[i - 1] // 16)  # the previous record's whole blocks
    assert sealed[-1][26:] != sealed[-2][26:]  # the same 1000 bytes, two keystreams
    prefix = bytes(16)
    for body, s in zip(bodies, sealed, strict=True):
        assert c.open(prefix + s) == prefix + body

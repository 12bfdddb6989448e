"""A real IRC server for the irc sink's tests: Debian's ngircd, started in the foreground with a configuration file
of its own on a free loopback port (not the system service), and a small IRC client that reads a channel.

The server asks for a password (``PASSWORD``), does no DNS, ident or PAM lookups, and has flood penalties off
(``MaxPenaltyTime = 0``) so a test is not slowed to one message a second.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from . import listening, stop_group

__all__ = ["NGIRCD", "PASSWORD", "Ircd", "IrcClient"]

NGIRCD = shutil.which("ngircd") or ("/usr/sbin/ngircd" if os.path.exists("/usr/sbin/ngircd") else None)
PASSWORD = "s3cret"

_CONF = """\
[Global]
Name = irc.pyflume.test
Info = pyflume test server
Listen = 127.0.0.1
Ports = {port}
Password = {password}
PidFile = {dir}/ngircd.pid
MotdPhrase = pyflume test
ServerUID = {uid}
ServerGID = {gid}

[Limits]
MaxPenaltyTime = 0
PingTimeout = 120
PongTimeout = 60

[Options]
DNS = no
Ident = no
PAM = no
"""


class Ircd:
    """ngircd on 127.0.0.1:<port>, stopped by :meth:`stop`."""

    def __init__(self, workdir: Path, port: int):
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "ngircd.conf"
        conf.write_text(_CONF.format(port=port, password=PASSWORD, dir=workdir, uid=os.getuid(), gid=os.getgid()))
        self.log_path = workdir / "ngircd.log"
        assert NGIRCD is not None
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([NGIRCD, "--nodaemon", "--config", str(conf)], stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while not listening(port, timeout=1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ngircd did not start: {self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        stop_group(self.proc, 10)
        self._log.close()


class IrcClient:
    """A listener in a channel: registers, joins, and collects the PRIVMSGs sent to the channel as
    ``(nick, text)`` pairs in ``messages``."""

    def __init__(self, port: int, nick: str, channel: str, password: str = PASSWORD):
        self.messages: list[tuple[str, str]] = []
        self.channel = channel
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.reader = self.sock.makefile("rb")
        self.sock.sendall(f"PASS {password}\r\nNICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
        self._wait("001")
        self.sock.sendall(f"JOIN {channel}\r\n".encode())
        self._wait("366")  # the end of the names list: joined
        self.sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, name=f"irc-{nick}", daemon=True)
        self._thread.start()

    def _wait(self, numeric: str) -> None:
        while True:
            line = self.reader.readline().decode()
            if not line:
                raise RuntimeError(f"the IRC server closed the connection before {numeric}")
            parts = line.split()
            if parts and parts[0] == "PING":
                self.sock.sendall(f"PONG {parts[1]}\r\n".encode())
            elif len(parts) > 1 and parts[1] == numeric:
                return
            elif len(parts) > 1 and parts[1].isdigit() and parts[1][0] in "45":
                raise RuntimeError(f"the IRC server refused: {line.strip()}")

    def _read(self) -> None:
        try:
            for raw in self.reader:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("PING"):
                    self.sock.sendall(("PONG" + line[4:] + "\r\n").encode())
                    continue
                prefix, _, rest = line.partition(" ")
                cmd, _, args = rest.partition(" ")
                if cmd == "PRIVMSG" and args.startswith(self.channel + " :"):
                    self.messages.append((prefix[1:].split("!")[0], args[len(self.channel) + 2:]))
        except (OSError, ValueError):
            pass

    def texts(self) -> list[str]:
        return [text for _, text in self.messages]

    def close(self) -> None:
        try:
            self.sock.sendall(b"QUIT :bye\r\n")
        except OSError:
            pass
        self.sock.close()

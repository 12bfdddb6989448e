"""Syslog sources: ``syslogtcp``, ``multiport_syslogtcp`` and ``syslogudp``, with Flume's two syslog parsers.

Flume has two parsers and pyflume keeps both, because their results differ:

- :class:`SyslogUtilsDecoder` (Flume's ``SyslogUtils``, used by ``syslogtcp`` and ``syslogudp``): a byte state
  machine that finds ``<PRI>``, then RFC 5424 and RFC 3164 regular expressions for the rest. Headers ``Facility``,
  ``Severity``, ``priority``, ``version``, ``timestamp`` (epoch ms), ``host``. Times without a zone, and RFC 5424
  times with fractional seconds (whose zone Flume ignores), are read in the local time zone; ``.5`` means 5 ms.
- :class:`SyslogParser` (Flume's ``SyslogParser``, used by ``multiport_syslogtcp``): a hand-written parser with
  headers ``Facility``, ``Severity``, ``Priority``, ``Version``, ``timestamp``, ``host``; times are UTC unless the
  message has a zone; ``.5`` means 500 ms.

A message the parser cannot read is kept, never dropped: its body is the raw text and the header
``flume.syslog.status`` is ``Invalid``. A message longer than ``eventSize`` is cut there and flagged ``Incomplete``;
the rest of it becomes the next event (flagged ``Invalid`` by the TCP parser, since it does not start with ``<``).
TCP messages end at ``\\n`` as in Flume, or, beyond Flume, are RFC 6587 octet-counted (``<len> <msg>``, what
syslog-ng's syslog() destination, rsyslog with octet-counted framing and ``logger --octet-count`` send), decided
per connection by its first byte (:mod:`.framing`); a UDP datagram is one message.

``ssl = true`` serves the TCP sources over TLS with the key store settings of the avro and http sources
(:mod:`agent.tls`: PKCS12 or PEM, Flume's FLUME_SSL_* environment defaults); the framing inside is the same.
No TLS 1.3 session tickets are sent: a sender that never reads and closes at once would otherwise make its kernel
reset the connection, losing the messages the source had not read yet.

Each read chunk becomes one channel batch (``multiport_syslogtcp`` slices it by ``batchSize``). A full channel is
back-pressure: the connection stops being read while the same batch is retried; Flume drops the event instead.

Modules: :mod:`.fields` (keepFields, the status header, Java's date arithmetic), :mod:`.decoder` (SyslogUtils),
:mod:`.parser` (SyslogParser), :mod:`.base` (what the sources share), :mod:`.tcp`, :mod:`.multiport`, :mod:`.udp`,
:mod:`.framing` (octet counting).

Where pyflume differs from Flume 1.11 on purpose (each a Flume bug):
- Flume's SyslogUtils keeps ``priority``/``version`` from the previous message on a message that fails to parse;
  pyflume does not carry headers from one message to the next.
- Flume's SyslogParser dates an RFC 3164 time more than a month old in the year 2001 (it adjusts the year-2000
  parse result); pyflume uses the window SyslogUtils uses (11 months back, 1 month ahead of now).
- Inputs that make Flume's multiport handler throw and lose the rest of the read (an empty line, an RFC 5424 time
  that ends in its fraction, an impossible date) give an ``Invalid`` event here; empty lines are skipped.
- Flume drops a final message without its newline when the client closes; pyflume delivers it.
"""

from sources.syslog.decoder import SyslogUtilsDecoder
from sources.syslog.fields import KEEP_ALL, STATUS_HEADER, choose_fields_to_keep
from sources.syslog.multiport import MultiportSyslogTCPSource
from sources.syslog.parser import SyslogParser, split_lines
from sources.syslog.tcp import SyslogTcpSource
from sources.syslog.udp import SyslogUDPSource

__all__ = [
    "SyslogTcpSource",
    "MultiportSyslogTCPSource",
    "SyslogUDPSource",
    "SyslogUtilsDecoder",
    "SyslogParser",
    "split_lines",
    "choose_fields_to_keep",
    "KEEP_ALL",
    "STATUS_HEADER",
]

"""The HTTP source: each POST (or GET) request becomes one batch of events, through a pluggable handler.

As in Flume, any path works; the handler turns the request into events (``JSONHandler`` by default), all events of
one request go to the channel in one batch, and the answer comes only after the channel committed it:

==========================================================  ======================================================
200, empty body                                              the events are committed
400 "Bad request from client. <reason>"                      the handler rejected the body (malformed JSON ...)
500 "Deserializer threw unexpected exception. <reason>"      the handler failed otherwise (empty body, charset)
503 "Error appending event to channel. Channel might be      the channel is full: nothing was kept from the
full. <reason>"                                              batch's failed part; the client should retry
403                                                          TRACE and OPTIONS (disabled, as in Flume)
405 / 501                                                    other methods
==========================================================  ======================================================

Connections are kept alive (HTTP/1.1), bodies may be chunked, ``Expect: 100-continue`` is honoured. A batch larger
than the channel's ``transactionCapacity`` goes in as several transactions; if a later one fails the client gets
503 and its retry repeats the part that was already committed (at-least-once, never loss).

TLS: ``ssl = true`` with ``keystore`` + ``keystore-type`` PKCS12 (read with the ``cryptography`` package) or PEM
(one file with the certificate chain and the key), or pyflume's ``ssl.certificate`` + ``ssl.key`` PEM files. Java
keystores (JKS) cannot be read; convert them.

A handler of your own: subclass :class:`HTTPSourceHandler`, put it on PYTHONPATH and name it in ``handler`` as
``package.module.Class``; its ``handler.*`` properties are checked against its ``spec``.

Modules: :mod:`.handlers` (the handlers, a registry family), :mod:`.framing` (HTTP/1.1 on one connection),
:mod:`.source` (the source: configuration, listening, answering).
"""

from sources.http import handlers
from sources.http.handlers import *  # noqa: F403 - the handlers belong to the package's API
from sources.http.source import HTTPSource

__all__ = ["HTTPSource", *handlers.__all__]

"""The file channel: durable, crash-safe transactions on a write-ahead log.

A committed put is appended to the log as one checksummed record and fsynced before ``commit()`` returns
(``fsyncPerTransaction``); transactions that commit at the same time share one fsync (group commit). A committed
take appends a small record naming the sequence numbers taken. The queue itself lives in memory as ranges of
sequence numbers; every ``checkpointInterval`` it is written to the checkpoint directory atomically, and on start
the channel loads the checkpoint and replays the log after it. A torn or corrupt stretch of the log is reported
with its file and offset and skipped (a torn tail is truncated); replay never stops on it.

Log segments roll at ``maxFileSize``, go to the ``dataDirs`` in turn, and are deleted once every event in them
has been taken and a checkpoint written after that, so the disk use follows the queue.

Recently committed batches are also kept in memory (up to a budget) so a sink that keeps up never reads the disk;
a backlog beyond the budget is read back from the log, one record per batch.

This is pyflume's own format, not Apache Flume's: a Flume file channel's directories are recognized and refused
with a message (drain them with Flume first).

Modules: ``channel`` (the channel: configuration, lifecycle, checkpoints, the queue), ``transaction``,
``records`` (the record format and segment scanner), ``segments`` (segment files: append, fsync, roll, read,
delete), ``index`` (which record holds which queued event, and the cache), ``intervals`` (the queue's ranges),
``checkpoint`` (the checkpoint file), ``replay`` (rebuilding the queue on start), ``directories`` (locks, Flume's
directories refused, free space) and ``inspection`` (the read-only view ``agent file-channel`` prints).
"""

from channels.file.channel import FileChannel, FileChannelCounter
from channels.file.inspection import LogSurvey, SegmentSurvey, survey

__all__ = ["FileChannel", "FileChannelCounter", "LogSurvey", "SegmentSurvey", "survey"]

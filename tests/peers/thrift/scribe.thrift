# Scribe's Log service as Flume 1.11's scribe source serves it, for conformance tests.
enum ResultCode { OK, TRY_LATER }
struct LogEntry { 1: string category, 2: string message }
service Scribe { ResultCode Log(1: list<LogEntry> messages); }

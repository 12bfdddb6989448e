# Flume 1.11's ThriftSourceProtocol, written from its documented structure (flume-ng-sdk), for conformance tests.
struct ThriftFlumeEvent {
  1: required map<string, string> headers,
  2: required binary body,
}
enum Status { OK, FAILED, ERROR, UNKNOWN }
service ThriftSourceProtocol {
  Status append(1: ThriftFlumeEvent event),
  Status appendBatch(1: list<ThriftFlumeEvent> events),
}

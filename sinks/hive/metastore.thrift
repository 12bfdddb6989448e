// The part of the Hive metastore's Thrift API (ThriftHiveMetastore, Hive 3.x/4.x) that pyflume's Hive sink calls:
// table and partition look-ups, partition creation, and the transaction, write-id and lock calls of Hive's
// streaming ingest (plus get_open_txns_info, which the tests use to see heartbeats). Field ids and names follow Hive's interface; fields the sink never reads are left out (a
// Thrift reader skips fields it does not know).

namespace py hive_metastore

enum LockLevel { DB = 1, TABLE = 2, PARTITION = 3 }
enum LockState { ACQUIRED = 1, WAITING = 2, ABORT = 3, NOT_ACQUIRED = 4 }
enum LockType { SHARED_READ = 1, SHARED_WRITE = 2, EXCLUSIVE = 3, EXCL_WRITE = 4 }
enum DataOperationType { SELECT = 1, INSERT = 2, UPDATE = 3, DELETE = 4, UNSET = 5, NO_TXN = 6 }

struct FieldSchema { 1: string name, 2: string type, 3: string comment }

struct SerDeInfo { 1: string name, 2: string serializationLib, 3: map<string, string> parameters }

struct StorageDescriptor {
  1: list<FieldSchema> cols,
  2: string location,
  3: string inputFormat,
  4: string outputFormat,
  5: bool compressed,
  6: i32 numBuckets,
  7: SerDeInfo serdeInfo,
  8: list<string> bucketCols,
  10: map<string, string> parameters,
}

struct Table {
  1: string tableName,
  2: string dbName,
  3: string owner,
  7: StorageDescriptor sd,
  8: list<FieldSchema> partitionKeys,
  9: map<string, string> parameters,
  12: string tableType,
}

struct GetTableRequest { 1: required string dbName, 2: required string tblName }
struct GetTableResult { 1: required Table table }

struct Partition {
  1: list<string> values,
  2: string dbName,
  3: string tableName,
  6: StorageDescriptor sd,
  7: map<string, string> parameters,
}

struct OpenTxnRequest {
  1: required i32 num_txns,
  2: required string user,
  3: required string hostname,
  4: optional string agentInfo = "Unknown",
}
struct OpenTxnsResponse { 1: required list<i64> txn_ids }
struct AbortTxnRequest { 1: required i64 txnid }
struct CommitTxnRequest { 1: required i64 txnid }

struct AllocateTableWriteIdsRequest { 1: required string dbName, 2: required string tableName, 3: optional list<i64> txnIds }
struct TxnToWriteId { 1: required i64 txnId, 2: required i64 writeId }
struct AllocateTableWriteIdsResponse { 1: required list<TxnToWriteId> txnToWriteIds }

struct LockComponent {
  1: required LockType type,
  2: required LockLevel level,
  3: required string dbname,
  4: optional string tablename,
  5: optional string partitionname,
  6: optional DataOperationType operationType = DataOperationType.UNSET,
  7: optional bool isTransactional = false,
}
struct LockRequest {
  1: required list<LockComponent> component,
  2: optional i64 txnid,
  3: required string user,
  4: required string hostname,
  5: optional string agentInfo = "Unknown",
}
struct LockResponse { 1: required i64 lockid, 2: required LockState state, 3: optional string errorMessage }
struct CheckLockRequest { 1: required i64 lockid, 2: optional i64 txnid, 3: optional i64 elapsed_ms }
struct HeartbeatTxnRangeRequest { 1: required i64 min, 2: required i64 max }
struct HeartbeatTxnRangeResponse { 1: required set<i64> aborted, 2: required set<i64> nosuch }

enum TxnState { COMMITTED = 1, ABORTED = 2, OPEN = 3 }
struct TxnInfo {
  1: required i64 id,
  2: required TxnState state,
  3: required string user,
  4: required string hostname,
  5: optional string agentInfo = "Unknown",
  8: optional i64 startedTime,
  9: optional i64 lastHeartbeatTime,
}
struct GetOpenTxnsInfoResponse { 1: required i64 txn_high_water_mark, 2: required list<TxnInfo> open_txns }

exception MetaException { 1: string message }
exception NoSuchObjectException { 1: string message }
exception AlreadyExistsException { 1: string message }
exception InvalidObjectException { 1: string message }
exception NoSuchTxnException { 1: string message }
exception TxnAbortedException { 1: string message }
exception NoSuchLockException { 1: string message }

service ThriftHiveMetastore {
  GetTableResult get_table_req(1: GetTableRequest req) throws (1: MetaException o1, 2: NoSuchObjectException o2)
  Partition get_partition(1: string db_name, 2: string tbl_name, 3: list<string> part_vals)
    throws (1: MetaException o1, 2: NoSuchObjectException o2)
  Partition append_partition(1: string db_name, 2: string tbl_name, 3: list<string> part_vals)
    throws (1: InvalidObjectException o1, 2: AlreadyExistsException o2, 3: MetaException o3)
  OpenTxnsResponse open_txns(1: OpenTxnRequest rqst)
  void abort_txn(1: AbortTxnRequest rqst) throws (1: NoSuchTxnException o1)
  void commit_txn(1: CommitTxnRequest rqst) throws (1: NoSuchTxnException o1, 2: TxnAbortedException o2)
  AllocateTableWriteIdsResponse allocate_table_write_ids(1: AllocateTableWriteIdsRequest rqst)
    throws (1: NoSuchTxnException o1, 2: TxnAbortedException o2, 3: MetaException o3)
  LockResponse lock(1: LockRequest rqst) throws (1: NoSuchTxnException o1, 2: TxnAbortedException o2)
  LockResponse check_lock(1: CheckLockRequest rqst)
    throws (1: NoSuchTxnException o1, 2: TxnAbortedException o2, 3: NoSuchLockException o3)
  HeartbeatTxnRangeResponse heartbeat_txn_range(1: HeartbeatTxnRangeRequest txns)
  GetOpenTxnsInfoResponse get_open_txns_info()
}

// Hive's own streaming writer (org.apache.hive.streaming: hive-streaming 3.1.3's source ported to Hive 4.0.1 by
// tests/peers/hive.py, which compiles both) for the benchmark: writes every line of a file (an id, a
// space, the rest) into a partition of a transactional table, one Hive transaction per `batch` lines, transactions
// opened `txnsPerBatch` at a time. Args: database table partition-value batch txnsPerBatch file.
// Prints "\u0001CONNECTED" once connected, then "\u0001DONE <ms from first row to last commit>", then waits for
// stdin to close (so that the caller can read the process's peak RSS) before it exits.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Collections;
import java.util.List;

import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.hive.streaming.HiveStreamingConnection;
import org.apache.hive.streaming.StrictDelimitedInputWriter;

public class HiveStreamWriter {
  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(System.out, true, "UTF-8");
    int batch = Integer.parseInt(args[3]);
    List<byte[]> lines = new java.util.ArrayList<>();
    for (String line : Files.readAllLines(Paths.get(args[5]), StandardCharsets.UTF_8)) {
      lines.add(line.getBytes(StandardCharsets.UTF_8));
    }
    HiveConf conf = new HiveConf();
    StrictDelimitedInputWriter writer = StrictDelimitedInputWriter.newBuilder().withFieldDelimiter(' ').build();
    HiveStreamingConnection conn = HiveStreamingConnection.newBuilder()
        .withDatabase(args[0])
        .withTable(args[1])
        .withStaticPartitionValues(Collections.singletonList(args[2]))
        .withAgentInfo("pyflume-bench")
        .withTransactionBatchSize(Integer.parseInt(args[4]))
        .withRecordWriter(writer)
        .withHiveConf(conf)
        .connect();
    out.println("\u0001CONNECTED");
    long t0 = System.nanoTime();
    int i = 0;
    while (i < lines.size()) {
      conn.beginTransaction();
      int end = Math.min(i + batch, lines.size());
      for (; i < end; i++) {
        conn.write(lines.get(i));
      }
      conn.commitTransaction();
    }
    long ms = (System.nanoTime() - t0) / 1_000_000;
    conn.close();
    out.println("\u0001DONE " + ms);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    while (in.readLine() != null) {
      // wait for the caller
    }
  }
}

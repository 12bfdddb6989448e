// Hive's own query path for the Hive sink's tests: one statement per stdin line, compiled and run by Hive's Driver
// (the same compiler, metastore client, ACID snapshot and fetch operator HiveServer2 runs). Each result row goes to
// stdout as tab-separated text, then a line "\u0001OK <rows>"; a failure prints "\u0001ERR <message>" instead.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.hadoop.hive.ql.DriverFactory;
import org.apache.hadoop.hive.ql.IDriver;
import org.apache.hadoop.hive.ql.session.SessionState;

public class HiveQuery {
  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(System.out, true, "UTF-8");
    HiveConf conf = new HiveConf(SessionState.class);
    SessionState.start(new SessionState(conf));
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    out.println("\u0001READY");
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) {
        continue;
      }
      IDriver driver = DriverFactory.newDriver(conf);
      try {
        driver.run(line);
        List<String> rows = new ArrayList<>();
        int n = 0;
        while (driver.getResults(rows)) {
          for (String row : rows) {
            out.println(row);
            n++;
          }
          rows.clear();
        }
        out.println("\u0001OK " + n);
      } catch (Throwable e) {
        String msg = String.valueOf(e.getMessage()).replace('\n', ' ');
        Throwable cause = e.getCause();
        while (cause != null) {
          msg += " | " + String.valueOf(cause.getMessage()).replace('\n', ' ');
          cause = cause.getCause();
        }
        out.println("\u0001ERR " + msg);
      } finally {
        driver.close();
      }
    }
  }
}

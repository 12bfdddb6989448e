import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.security.PrivilegedExceptionAction;
import java.util.Base64;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hbase.Cell;
import org.apache.hadoop.hbase.CellUtil;
import org.apache.hadoop.hbase.HBaseConfiguration;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.Admin;
import org.apache.hadoop.hbase.client.ColumnFamilyDescriptorBuilder;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.ConnectionFactory;
import org.apache.hadoop.hbase.client.Result;
import org.apache.hadoop.hbase.client.ResultScanner;
import org.apache.hadoop.hbase.client.Scan;
import org.apache.hadoop.hbase.client.Table;
import org.apache.hadoop.hbase.client.TableDescriptorBuilder;
import org.apache.hadoop.security.UserGroupInformation;

/**
 * HBase's own Java client as a Kerberos principal logged in from its keytab (the tests' way to read what a sink
 * wrote into the secure HBase, and to create its tables).
 *
 * <p>Usage: {@code HBaseKerberosClient PRINCIPAL KEYTAB}; the HBase configuration is the hbase-site.xml on the
 * class path. Commands come one per line on standard input, each answered by its lines and a line {@code END}
 * (or {@code ERROR <message>}):
 * <ul>
 *   <li>{@code create TABLE FAMILY...}: (re)creates the table (an existing one is dropped first);
 *   <li>{@code scan TABLE}: every cell, one line each: row, family:qualifier and value, each in base64;
 *   <li>{@code whoami}: the user HBase sees.
 * </ul>
 */
public class HBaseKerberosClient {
  public static void main(String[] args) throws Exception {
    Configuration conf = HBaseConfiguration.create();
    UserGroupInformation.setConfiguration(conf);
    UserGroupInformation ugi = UserGroupInformation.loginUserFromKeytabAndReturnUGI(args[0], args[1]);
    PrintStream out = new PrintStream(System.out, true, "UTF-8");
    ugi.doAs((PrivilegedExceptionAction<Void>) () -> {
      try (Connection conn = ConnectionFactory.createConnection(conf)) {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
          String[] words = line.trim().split("\\s+");
          try {
            run(conn, words, out, ugi);
            out.println("END");
          } catch (Exception e) {
            out.println("ERROR " + String.valueOf(e).replace('\n', ' '));
          }
        }
      }
      return null;
    });
  }

  private static void run(Connection conn, String[] words, PrintStream out, UserGroupInformation ugi)
      throws Exception {
    Base64.Encoder b64 = Base64.getEncoder();
    switch (words[0]) {
      case "create": {
        TableName name = TableName.valueOf(words[1]);
        try (Admin admin = conn.getAdmin()) {
          if (admin.tableExists(name)) {
            admin.disableTable(name);
            admin.deleteTable(name);
          }
          TableDescriptorBuilder table = TableDescriptorBuilder.newBuilder(name);
          for (int i = 2; i < words.length; i++) {
            table.setColumnFamily(ColumnFamilyDescriptorBuilder.newBuilder(words[i].getBytes(StandardCharsets.UTF_8))
                .setMaxVersions(1).build());
          }
          admin.createTable(table.build());
        }
        break;
      }
      case "scan": {
        try (Table table = conn.getTable(TableName.valueOf(words[1]));
             ResultScanner scanner = table.getScanner(new Scan().setCaching(5000))) {
          for (Result r : scanner) {
            for (Cell c : r.rawCells()) {
              byte[] column = new byte[c.getFamilyLength() + 1 + c.getQualifierLength()];
              System.arraycopy(c.getFamilyArray(), c.getFamilyOffset(), column, 0, c.getFamilyLength());
              column[c.getFamilyLength()] = ':';
              System.arraycopy(c.getQualifierArray(), c.getQualifierOffset(), column, c.getFamilyLength() + 1,
                  c.getQualifierLength());
              out.println(b64.encodeToString(CellUtil.cloneRow(c)) + " " + b64.encodeToString(column) + " "
                  + b64.encodeToString(CellUtil.cloneValue(c)));
            }
          }
        }
        break;
      }
      case "whoami":
        out.println(ugi.getUserName());
        break;
      default:
        throw new IllegalArgumentException("unknown command " + words[0]);
    }
  }
}

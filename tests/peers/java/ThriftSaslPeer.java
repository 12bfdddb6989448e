// libthrift's own SASL transports (TSaslServerTransport, TSaslClientTransport) with GSSAPI, as a test peer of
// agent/thrift_sasl.py for every QOP: the JVM logs in from a keytab (JAAS Krb5LoginModule, configured in code) and
// opens the transport inside that login, as HBase's secure Thrift server and Flume's SecureThriftRpcClient do.
//
//   server PORT QOP SERVICE HOST PRINCIPAL KEYTAB   serve one connection: answer each frame with "echo:" + frame
//   client PORT QOP SERVICE HOST PRINCIPAL KEYTAB   send "ping-1".."ping-3" and a 60000-byte frame, check the echoes
//
// Run with java's single-file launcher on Flume 1.11's classpath (libthrift 0.14) and -Djava.security.krb5.conf.
// Prints "READY" once listening (server), "QOP <negotiated>" and "DONE" at the end; exits 1 on any failure.

import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.PrivilegedExceptionAction;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import javax.security.auth.Subject;
import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.Configuration;
import javax.security.auth.login.LoginContext;
import javax.security.sasl.Sasl;
import org.apache.thrift.transport.TSaslClientTransport;
import org.apache.thrift.transport.TSaslServerTransport;
import org.apache.thrift.transport.TSocket;
import org.apache.thrift.transport.TTransport;

public class ThriftSaslPeer {

  static Subject login(String principal, String keytab, boolean initiator) throws Exception {
    Map<String, String> options = new HashMap<>();
    options.put("useKeyTab", "true");
    options.put("keyTab", keytab);
    options.put("principal", principal);
    options.put("storeKey", "true");
    options.put("doNotPrompt", "true");
    options.put("isInitiator", Boolean.toString(initiator));
    AppConfigurationEntry entry = new AppConfigurationEntry("com.sun.security.auth.module.Krb5LoginModule",
        AppConfigurationEntry.LoginModuleControlFlag.REQUIRED, options);
    Configuration conf = new Configuration() {
      @Override
      public AppConfigurationEntry[] getAppConfigurationEntry(String name) {
        return new AppConfigurationEntry[] {entry};
      }
    };
    LoginContext lc = new LoginContext("peer", new Subject(), null, conf);
    lc.login();
    return lc.getSubject();
  }

  static byte[] readFrame(TTransport t) throws Exception {
    byte[] buf = new byte[1 << 17];
    int n = t.read(buf, 0, buf.length); // TSaslTransport reads one whole frame into its buffer
    return Arrays.copyOf(buf, n);
  }

  public static void main(String[] args) throws Exception {
    String mode = args[0];
    int port = Integer.parseInt(args[1]);
    Map<String, String> props = new HashMap<>();
    props.put(Sasl.QOP, args[2]);
    String service = args[3];
    String host = args[4];
    Subject subject = login(args[5], args[6], mode.equals("client"));
    try {
      Subject.doAs(subject, (PrivilegedExceptionAction<Void>) () -> {
        if (mode.equals("server")) {
          serve(port, service, host, props);
        } else {
          call(port, service, host, props);
        }
        return null;
      });
    } catch (Exception e) {
      Throwable c = e.getCause() != null ? e.getCause() : e;
      System.out.println("FAILED " + c);
      c.printStackTrace(System.out);
      System.exit(1);
    }
    System.out.println("DONE");
  }

  static void serve(int port, String service, String host, Map<String, String> props) throws Exception {
    try (ServerSocket ss = new ServerSocket(port)) {
      System.out.println("READY");
      System.out.flush();
      Socket s = ss.accept();
      TSaslServerTransport.Factory factory = new TSaslServerTransport.Factory();
      factory.addServerDefinition("GSSAPI", service, host, props, callbacks -> {
        for (javax.security.auth.callback.Callback cb : callbacks) {
          if (cb instanceof javax.security.sasl.AuthorizeCallback) {
            javax.security.sasl.AuthorizeCallback ac = (javax.security.sasl.AuthorizeCallback) cb;
            ac.setAuthorized(ac.getAuthenticationID().equals(ac.getAuthorizationID()));
          }
        }
      });
      TTransport t = factory.getTransport(new TSocket(s));
      TSaslServerTransport sasl = (TSaslServerTransport) t;
      System.out.println("QOP " + sasl.getSaslServer().getNegotiatedProperty(Sasl.QOP));
      System.out.println("PEER " + sasl.getSaslServer().getAuthorizationID());
      while (true) {
        byte[] frame;
        try {
          frame = readFrame(t);
        } catch (org.apache.thrift.transport.TTransportException e) {
          break; // the client closed
        }
        t.write("echo:".getBytes(StandardCharsets.UTF_8));
        t.write(frame);
        t.flush();
      }
      t.close();
    }
  }

  static void call(int port, String service, String host, Map<String, String> props) throws Exception {
    TSocket sock = new TSocket("127.0.0.1", port);
    sock.open();
    TSaslClientTransport t = new TSaslClientTransport("GSSAPI", null, service, host, props, null, sock);
    t.open();
    System.out.println("QOP " + t.getSaslClient().getNegotiatedProperty(Sasl.QOP));
    byte[] big = new byte[60000];
    for (int i = 0; i < big.length; i++) {
      big[i] = (byte) (i % 251);
    }
    byte[][] payloads = {"ping-1".getBytes(StandardCharsets.UTF_8), "ping-2".getBytes(StandardCharsets.UTF_8),
        "ping-3".getBytes(StandardCharsets.UTF_8), big};
    for (byte[] p : payloads) {
      t.write(p);
      t.flush();
      byte[] got = readFrame(t);
      byte[] want = new byte[p.length + 5];
      System.arraycopy("echo:".getBytes(StandardCharsets.UTF_8), 0, want, 0, 5);
      System.arraycopy(p, 0, want, 5, p.length);
      if (!Arrays.equals(got, want)) {
        throw new IllegalStateException("echo of " + p.length + " bytes came back as " + got.length + " bytes");
      }
    }
    t.close();
  }
}

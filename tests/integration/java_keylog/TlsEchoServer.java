import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.util.concurrent.Executors;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

/** HTTPS server for the java_keylog test: TlsEchoServer KEYSTORE PASSWORD. Prints "port N".
 *  Response body: "echo <method> <path> <request body length>\n" then the request body. */
public final class TlsEchoServer {
    public static void main(String[] a) throws Exception {
        char[] pw = a[1].toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(a[0])) {
            ks.load(in, pw);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
        kmf.init(ks, pw);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        HttpsServer s = HttpsServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
        s.setHttpsConfigurator(new HttpsConfigurator(ctx));
        s.setExecutor(Executors.newFixedThreadPool(4));
        s.createContext("/", ex -> {
            byte[] body = ex.getRequestBody().readAllBytes();
            byte[] head = ("echo " + ex.getRequestMethod() + " " + ex.getRequestURI() + " " + body.length + "\n")
                    .getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Content-Type", "text/plain");
            ex.sendResponseHeaders(200, head.length + body.length);
            try (OutputStream out = ex.getResponseBody()) {
                out.write(head);
                out.write(body);
            }
        });
        s.start();
        System.out.println("port " + s.getAddress().getPort());
        System.out.flush();
    }
}

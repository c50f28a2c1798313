package searchmig.keylog;

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Map;
import javax.crypto.SecretKey;

/** Turns hooked secrets into NSS key log lines appended to a 0600 file. */
final class KeyLogger {
    private static volatile boolean warned;
    private volatile String path;
    private Field clientRandom;   // HandshakeContext.clientHelloRandom
    private Field randomBytes;    // RandomCookie.randomBytes
    private final Map<String, Boolean> recent = new LinkedHashMap<>(64, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Boolean> e) {
            return size() > 1024;
        }
    };

    static void warnOnce(String msg) {
        if (!warned) {
            warned = true;
            System.err.println("searchmig-keylog: " + msg + "; secrets are not logged");
        }
    }

    void setPath(String p) {
        path = p;
    }

    void init() throws ReflectiveOperationException {
        // Not initialized here: JSSE's static state must not be fixed before the application's main().
        Field f = Class.forName("sun.security.ssl.HandshakeContext", false, null)
                .getDeclaredField("clientHelloRandom");
        f.setAccessible(true);
        Field g = Class.forName("sun.security.ssl.RandomCookie", false, null).getDeclaredField("randomBytes");
        g.setAccessible(true);
        clientRandom = f;
        randomBytes = g;
    }

    /** a = { SSLTrafficKeyDerivation, HandshakeContext, SecretKey } */
    void accept(Object[] a) {
        try {
            String p = path;
            if (p == null || clientRandom == null || !(a[2] instanceof SecretKey))
                return;
            String label = label(((Enum<?>) a[0]).name(), ((SecretKey) a[2]).getAlgorithm());
            if (label == null)
                return;
            Object cookie = clientRandom.get(a[1]);
            if (cookie == null)
                return;
            byte[] cr = (byte[]) randomBytes.get(cookie);
            byte[] secret = ((SecretKey) a[2]).getEncoded();
            if (cr == null || cr.length != 32 || secret == null || secret.length == 0)
                return;
            write(p, label + " " + hex(cr) + " " + hex(secret) + "\n");
        } catch (Throwable t) {
            warnOnce("cannot read a secret: " + t);
        }
    }

    static String label(String version, String alg) {
        if ("TLS13".equals(version)) {
            switch (alg) {
            case "TlsClientHandshakeTrafficSecret": return "CLIENT_HANDSHAKE_TRAFFIC_SECRET";
            case "TlsServerHandshakeTrafficSecret": return "SERVER_HANDSHAKE_TRAFFIC_SECRET";
            case "TlsClientAppTrafficSecret": return "CLIENT_TRAFFIC_SECRET_0";
            case "TlsServerAppTrafficSecret": return "SERVER_TRAFFIC_SECRET_0";
            default: return null;   // KeyUpdate secrets: the reader derives them
            }
        }
        return "TLS12".equals(version) || "TLS10".equals(version) ? "CLIENT_RANDOM" : null;
    }

    /** Opens the file for each line: a renamed or deleted file is recreated (0600) at the next line. */
    private synchronized void write(String p, String line) throws IOException {
        if (recent.put(line, Boolean.TRUE) != null)
            return;   // TLS 1.2 derives keys once per direction
        Path file = Paths.get(p);
        try (FileChannel ch = FileChannel.open(file,
                EnumSet.of(StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
            ByteBuffer b = ByteBuffer.wrap(line.getBytes(StandardCharsets.US_ASCII));
            while (b.hasRemaining())
                ch.write(b);
        }
    }

    private static String hex(byte[] b) {
        StringBuilder s = new StringBuilder(b.length * 2);
        for (byte x : b)
            s.append(Character.forDigit((x >> 4) & 15, 16)).append(Character.forDigit(x & 15, 16));
        return s.toString();
    }
}

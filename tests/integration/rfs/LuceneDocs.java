// Reference reader for the expected document sets: real Lucene (Debian's
// lucene-core/backward-codecs 8.x) reads a shard directory restored with
// `searchmig-rfs restore-shard` and prints one TSV line per live top-level
// document: index, _id, _routing, _type, sha256 and length of the line-safe
// _source (CR/LF -> space, as `searchmig-rfs docs` writes it).
// Soft deletes are applied through SoftDeletesDirectoryReaderWrapper.
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.util.Base64;

import org.apache.lucene.document.Document;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.SoftDeletesDirectoryReaderWrapper;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.BytesRef;

public class LuceneDocs {
    static String decodeId(BytesRef b) {
        byte[] v = java.util.Arrays.copyOfRange(b.bytes, b.offset, b.offset + b.length);
        int first = v[0] & 0xff;
        if (first == 0xfe) {
            StringBuilder s = new StringBuilder();
            for (int i = 1; i < v.length; i++) {
                int hi = (v[i] & 0xff) >> 4, lo = v[i] & 0x0f;
                s.append((char) ('0' + hi));
                if (lo == 0x0f && i == v.length - 1) break;
                s.append((char) ('0' + lo));
            }
            return s.toString();
        }
        if (first == 0xff)
            return new String(v, 1, v.length - 1, java.nio.charset.StandardCharsets.UTF_8);
        Base64.Encoder enc = Base64.getUrlEncoder().withoutPadding();
        if (first == 0xfd)
            return enc.encodeToString(java.util.Arrays.copyOfRange(v, 1, v.length));
        return enc.encodeToString(v);
    }

    public static void main(String[] args) throws Exception {
        String index = args[1];
        try (Directory dir = FSDirectory.open(Paths.get(args[0]));
             DirectoryReader raw = DirectoryReader.open(dir)) {
            DirectoryReader r = new SoftDeletesDirectoryReaderWrapper(raw, "__soft_deletes");
            for (LeafReaderContext ctx : r.leaves()) {
                LeafReader lr = ctx.reader();
                Bits live = lr.getLiveDocs();
                for (int d = 0; d < lr.maxDoc(); d++) {
                    if (live != null && !live.get(d))
                        continue;
                    Document doc = lr.document(d);
                    String id = null, type = "-";
                    BytesRef idb = doc.getBinaryValue("_id");
                    if (idb != null) {
                        id = decodeId(idb);
                    } else if (doc.get("_id") != null) {
                        id = doc.get("_id");
                    } else if (doc.get("_uid") != null) {
                        String uid = doc.get("_uid");
                        int h = uid.indexOf('#');
                        type = uid.substring(0, h);
                        id = uid.substring(h + 1);
                    }
                    if (id == null)
                        continue;   // nested child
                    BytesRef src = doc.getBinaryValue("_source");
                    if (src == null)
                        throw new IllegalStateException("doc " + id + " has no _source");
                    byte[] s = java.util.Arrays.copyOfRange(src.bytes, src.offset, src.offset + src.length);
                    for (int i = 0; i < s.length; i++)
                        if (s[i] == '\n' || s[i] == '\r')
                            s[i] = ' ';
                    byte[] dg = MessageDigest.getInstance("SHA-256").digest(s);
                    StringBuilder hex = new StringBuilder();
                    for (byte x : dg)
                        hex.append(String.format("%02x", x));
                    String routing = doc.get("_routing");
                    System.out.println(index + "\t" + id + "\t" + (routing == null ? "-" : routing) + "\t" + type
                                       + "\t" + hex + "\t" + s.length);
                }
            }
        }
    }
}

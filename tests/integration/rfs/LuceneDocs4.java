// Lucene 4.10 variant of LuceneDocs.java (Debian's liblucene4.10-java) for
// the Elasticsearch 1.x fixtures: _uid "type#id", _routing, _source.
import java.io.File;
import java.security.MessageDigest;

import org.apache.lucene.document.Document;
import org.apache.lucene.index.AtomicReader;
import org.apache.lucene.index.AtomicReaderContext;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.BytesRef;

public class LuceneDocs4 {
    public static void main(String[] args) throws Exception {
        String index = args[1];
        Directory dir = FSDirectory.open(new File(args[0]));
        DirectoryReader r = DirectoryReader.open(dir);
        for (AtomicReaderContext ctx : r.leaves()) {
            AtomicReader lr = ctx.reader();
            Bits live = lr.getLiveDocs();
            for (int d = 0; d < lr.maxDoc(); d++) {
                if (live != null && !live.get(d))
                    continue;
                Document doc = lr.document(d);
                String uid = doc.get("_uid");
                if (uid == null)
                    continue;   // nested child
                int h = uid.indexOf('#');
                String type = uid.substring(0, h), id = uid.substring(h + 1);
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
                System.out.println(index + "\t" + id + "\t" + (routing == null ? "-" : routing) + "\t" + type + "\t"
                                   + hex + "\t" + s.length);
            }
        }
        r.close();
        dir.close();
    }
}

// Writes a small Lucene 8 index whose documents store _source in SMILE, CBOR,
// JSON (with newlines), YAML and LZF-compressed JSON (ES 1.x `compress`), and one without _source,
// with ES 6+ Uid-encoded _id (0xFF + UTF-8),
// so `searchmig-rfs docs --lucene-dir` can be checked end to end.
// usage: SourceTypes DIR HEX_SMILE HEX_CBOR HEX_LZF
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;

import org.apache.lucene.document.Document;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.BytesRef;

public class SourceTypes {
    static byte[] unhex(String h) {
        byte[] b = new byte[h.length() / 2];
        for (int i = 0; i < b.length; i++)
            b[i] = (byte) Integer.parseInt(h.substring(2 * i, 2 * i + 2), 16);
        return b;
    }

    static void add(IndexWriter w, String id, byte[] source) throws Exception {
        // source null: an _id without _source (the index mapping disabled or excluded it)
        byte[] ib = id.getBytes(StandardCharsets.UTF_8);
        byte[] uid = new byte[ib.length + 1];
        uid[0] = (byte) 0xff;
        System.arraycopy(ib, 0, uid, 1, ib.length);
        Document d = new Document();
        d.add(new StoredField("_id", new BytesRef(uid)));
        if (source != null)
            d.add(new StoredField("_source", new BytesRef(source)));
        w.addDocument(d);
    }

    public static void main(String[] args) throws Exception {
        IndexWriterConfig cfg = new IndexWriterConfig();
        cfg.setUseCompoundFile(false);
        try (FSDirectory dir = FSDirectory.open(Paths.get(args[0])); IndexWriter w = new IndexWriter(dir, cfg)) {
            add(w, "smile-doc", unhex(args[1]));
            add(w, "cbor-doc", unhex(args[2]));
            add(w, "json-doc", "{\"x\":\r\n 1}".getBytes(StandardCharsets.UTF_8));
            add(w, "yaml-doc", "---\nx: 1\n".getBytes(StandardCharsets.UTF_8));
            add(w, "lzf-doc", unhex(args[3]));
            add(w, "nosource-doc", null);
            w.commit();
        }
    }
}

// Lucene 4.10 (ES 1.x) variant of GenIndex: writes an index with Lucene
// 4.10.4 and dumps what Lucene reads back, in GenIndex's dump format.
//   java GenIndex4 write DIR CFS     (CFS = cfs|nocfs; Lucene41 stored fields, LZ4)
//   java GenIndex4 dump DIR
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

import org.apache.lucene.analysis.core.KeywordAnalyzer;
import org.apache.lucene.document.*;
import org.apache.lucene.index.*;
import org.apache.lucene.store.*;
import org.apache.lucene.util.BytesRef;
import org.apache.lucene.util.Version;

public class GenIndex4 {
    public static void main(String[] a) throws Exception {
        if (a[0].equals("write"))
            write(new File(a[1]), a[2].equals("cfs"));
        else if (a[0].equals("dump"))
            dump(new File(a[1]));
        else
            throw new IllegalArgumentException(a[0]);
    }

    static String json(Random r, int id, int approx) {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"id\":").append(id).append(",\"title\":\"doc \u00e9\u4e2d \ud83d\ude00\",\"body\":\"");
        String[] words = {"lorem", "ipsum", "dolor", "snapshot", "\u00fcber", "\u65e5\u672c"};
        while (sb.length() < approx) {
            sb.append(words[r.nextInt(words.length)]).append(' ');
            if (r.nextInt(20) == 0) sb.append(r.nextLong()).append(' ');
        }
        return sb.append("\"}").toString();
    }

    static void write(File dir, boolean cfs) throws Exception {
        Random r = new Random(7);
        IndexWriterConfig c = new IndexWriterConfig(Version.LUCENE_4_10_4, new KeywordAnalyzer());
        c.setMergePolicy(NoMergePolicy.INSTANCE);
        c.setUseCompoundFile(cfs);
        c.setMaxBufferedDocs(29);
        c.setRAMBufferSizeMB(IndexWriterConfig.DISABLE_AUTO_FLUSH);
        try (Directory d = FSDirectory.open(dir); IndexWriter w = new IndexWriter(d, c)) {
            for (int i = 0; i < 200; i++) {
                Document doc = new Document();
                doc.add(new StringField("_idx", "id-" + i, Field.Store.NO));
                if (i % 40 != 3) {   // else: a document without stored fields
                    doc.add(new StoredField("_uid", "type1#id-" + i));
                    int approx = i == 17 ? 40000 : r.nextInt(2500);   // doc 17 > 2 x 16 KiB: sliced
                    doc.add(new StoredField("_source", new BytesRef(json(r, i, approx).getBytes(StandardCharsets.UTF_8))));
                }
                if (i % 9 == 1) {
                    doc.add(new StoredField("n_int", i % 2 == 0 ? -i : Integer.MIN_VALUE + i));
                    doc.add(new StoredField("n_long", Long.MAX_VALUE - i));
                    doc.add(new StoredField("n_float", -1.5f * i));
                    doc.add(new StoredField("n_double", Math.PI * i));
                }
                if (i % 50 == 7)
                    for (int f = 0; f < 120; f++)
                        doc.add(new StoredField("f" + f, "v" + f + "\u2603"));
                w.addDocument(doc);
                if (i % 13 == 12)
                    w.deleteDocuments(new Term("_idx", "id-" + (i - 5)));
            }
            w.commit();
        }
    }

    static String fnv(byte[] b) {
        long h = 0xcbf29ce484222325L;
        for (byte x : b) {
            h ^= (x & 0xff);
            h *= 0x100000001b3L;
        }
        return String.format("%016x", h);
    }

    static void dump(File dir) throws Exception {
        final PrintStream out = new PrintStream(new BufferedOutputStream(System.out, 1 << 16), false, "UTF-8");
        try (Directory d = FSDirectory.open(dir); DirectoryReader dr = DirectoryReader.open(d)) {
            for (AtomicReaderContext ctx : dr.leaves()) {
                SegmentReader sr = (SegmentReader) ctx.reader();
                out.printf("segment %s maxdoc %d compound %d softfield -1 dvgen -1 dvformat - dvsuffix - softcount 0 binc -\n",
                           sr.getSegmentName(), sr.maxDoc(), sr.getSegmentInfo().info.getUseCompoundFile() ? 1 : 0);
                org.apache.lucene.util.Bits live = sr.getLiveDocs();
                for (int i = 0; i < sr.maxDoc(); i++) {
                    out.printf("doc %d live %d soft 0\n", i, live == null || live.get(i) ? 1 : 0);
                    sr.document(i, new StoredFieldVisitor() {
                        public Status needsField(FieldInfo fi) { return Status.YES; }
                        public void binaryField(FieldInfo fi, byte[] v) { out.printf("f %d b %d %s\n", fi.number, v.length, fnv(v)); }
                        public void stringField(FieldInfo fi, String s) {
                            byte[] v = s.getBytes(StandardCharsets.UTF_8);
                            out.printf("f %d s %d %s\n", fi.number, v.length, fnv(v));
                        }
                        public void intField(FieldInfo fi, int v) { out.printf("f %d i %d\n", fi.number, v); }
                        public void longField(FieldInfo fi, long v) { out.printf("f %d l %d\n", fi.number, v); }
                        public void floatField(FieldInfo fi, float v) { out.printf("f %d f %08x\n", fi.number, Float.floatToRawIntBits(v)); }
                        public void doubleField(FieldInfo fi, double v) { out.printf("f %d d %016x\n", fi.number, Double.doubleToRawLongBits(v)); }
                    });
                }
            }
        }
        out.flush();
    }
}

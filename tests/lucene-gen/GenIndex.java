// Writes Lucene indices with real Lucene (Debian's 8.7 jars) for the
// stored-fields / doc-values tests, then dumps what Lucene itself reads back.
//
//   java GenIndex write DIR MODE CFS KIND [MB]
//     MODE speed|compression (Lucene87StoredFieldsFormat BEST_SPEED/BEST_COMPRESSION)
//     CFS  cfs|nocfs
//     KIND mixed : many segments, hard deletes, docs of 0 bytes to > 1 MiB, unicode,
//                  many fields, every numeric stored type
//          soft  : soft deletes (softUpdateDocument / softDelete tombstones, doc-values
//                  update generations, a DENSE soft-deletes block of > 4095 docs)
//          soft70: the same with every doc-values field in the Lucene70 format (ES 6.x)
//          bench : MB megabytes of _source-like JSON in a few segments
//   java GenIndex dump DIR   -> stdout, one line per fact:
//     segment NAME maxdoc N compound 0|1 softfield NUM|-1 dvgen G dvformat F dvsuffix S softcount N binc NUMS|-
//       (binc: fields whose Lucene80 doc values are in BEST_COMPRESSION mode)
//     doc I live 0|1 soft 0|1        (live = hard live docs; soft = has __soft_deletes value)
//     f NUM s|b LEN FNV64HEX          (string as UTF-8 / binary)
//     f NUM i|l VALUE                 (int / long)
//     f NUM f|d BITSHEX               (float bits / double bits)
//   java GenIndex bench DIR          -> reads every stored field of every doc, prints timing
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;

import org.apache.lucene.codecs.Codec;
import org.apache.lucene.codecs.lucene87.Lucene87Codec;
import org.apache.lucene.document.*;
import org.apache.lucene.index.*;
import org.apache.lucene.store.*;
import org.apache.lucene.util.BytesRef;

public class GenIndex {
    static final String SOFT = "__soft_deletes";

    public static void main(String[] a) throws Exception {
        switch (a[0]) {
        case "write": write(Paths.get(a[1]), a[2], a[3], a[4], a.length > 5 ? Integer.parseInt(a[5]) : 0); break;
        case "dump": dump(Paths.get(a[1])); break;
        case "bench": bench(Paths.get(a[1])); break;
        default: throw new IllegalArgumentException(a[0]);
        }
    }

    static boolean dv70;   // "soft70": doc values in the Lucene70 format (ES 6.x)

    static IndexWriterConfig config(String mode, String cfs, boolean soft, int bufferedDocs) {
        Lucene87Codec.Mode m = mode.equals("speed") ? Lucene87Codec.Mode.BEST_SPEED
                                                    : Lucene87Codec.Mode.BEST_COMPRESSION;
        IndexWriterConfig c = new IndexWriterConfig();
        if (dv70) {
            // same codec name (read back through SPI), Lucene70 doc values per field
            final org.apache.lucene.codecs.DocValuesFormat dv = new org.apache.lucene.codecs.perfield.PerFieldDocValuesFormat() {
                public org.apache.lucene.codecs.DocValuesFormat getDocValuesFormatForField(String f) {
                    return new org.apache.lucene.codecs.lucene70.Lucene70DocValuesFormat();
                }
            };
            c.setCodec(new org.apache.lucene.codecs.FilterCodec("Lucene87", new Lucene87Codec(m)) {
                public org.apache.lucene.codecs.DocValuesFormat docValuesFormat() { return dv; }
            });
        } else {
            c.setCodec(new Lucene87Codec(m));
        }
        c.setUseCompoundFile(cfs.equals("cfs"));
        c.setMergePolicy(NoMergePolicy.INSTANCE);
        if (bufferedDocs > 0)
            c.setMaxBufferedDocs(bufferedDocs);
        c.setRAMBufferSizeMB(256);
        if (soft)
            c.setSoftDeletesField(SOFT);
        return c;
    }

    static String json(Random r, int id, int approx) {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"id\":").append(id).append(",\"title\":\"doc ").append(id).append(" \u00e9\u4e2d\u6587 \ud83d\ude00\"");
        sb.append(",\"tags\":[\"a\",\"b\",\"c").append(r.nextInt(100)).append("\"],\"body\":\"");
        String[] words = {"lorem", "ipsum", "dolor", "sit", "amet", "migration", "snapshot", "lucene",
                          "segment", "chunk", "\u00fcber", "na\u00efve", "\u65e5\u672c"};
        while (sb.length() < approx) {
            sb.append(words[r.nextInt(words.length)]).append(' ');
            if (r.nextInt(20) == 0) sb.append(r.nextLong()).append(' ');
        }
        sb.append("\"}");
        return sb.toString();
    }

    static boolean withDocValues;   // "soft": other doc-values types before __soft_deletes

    static Document esDoc(Random r, int id, int approx) {
        Document d = new Document();
        if (withDocValues) {
            d.add(new NumericDocValuesField("dv_num", id * 3L));
            d.add(new SortedDocValuesField("dv_kw", new BytesRef("kw" + (id % 50))));
            if (id % 2 == 0) {
                d.add(new SortedSetDocValuesField("dv_tags", new BytesRef("t" + (id % 7))));
                d.add(new SortedSetDocValuesField("dv_tags", new BytesRef("u" + (id % 11))));
            }
            d.add(new SortedNumericDocValuesField("dv_sn", id));
            if (id % 3 == 0)
                d.add(new SortedNumericDocValuesField("dv_sn", -id));
            d.add(new BinaryDocValuesField("dv_bin", new BytesRef("b".repeat(1 + id % 17))));
            d.add(new SortedSetDocValuesField("dv_one", new BytesRef("o" + id)));
        }
        String sid = "id-" + id;
        d.add(new StringField("_idx", sid, Field.Store.NO));
        d.add(new StoredField("_id", new BytesRef(sid.getBytes(StandardCharsets.UTF_8))));
        d.add(new StoredField("_source", new BytesRef(json(r, id, approx).getBytes(StandardCharsets.UTF_8))));
        if (id % 7 == 0)
            d.add(new StoredField("_routing", "r" + (id % 3)));
        return d;
    }

    static void write(Path dir, String mode, String cfs, String kind, int mb) throws Exception {
        Random r = new Random(42);
        dv70 = kind.equals("soft70");
        try (Directory d = FSDirectory.open(dir)) {
            if (kind.equals("mixed")) {
                try (IndexWriter w = new IndexWriter(d, config(mode, cfs, false, 37))) {
                    for (int i = 0; i < 400; i++) {
                        Document doc;
                        if (i % 50 == 3) {
                            doc = new Document();       // no stored fields: a 0-byte document
                            doc.add(new StringField("_idx", "id-" + i, Field.Store.NO));
                        } else if (i == 11 || i == 222) {
                            doc = esDoc(r, i, 1_300_000 + i);   // > 1 MiB: a sliced chunk
                        } else if (i % 61 == 5) {
                            doc = esDoc(r, i, 10);
                            for (int f = 0; f < 300; f++)       // many fields
                                doc.add(new StoredField("f" + f, "v" + f + "\u2603"));
                        } else {
                            doc = esDoc(r, i, r.nextInt(3000));
                        }
                        if (i % 9 == 1) {   // every numeric stored type, edge values
                            doc.add(new StoredField("n_int", i % 2 == 0 ? -i : Integer.MIN_VALUE + i));
                            doc.add(new StoredField("n_long", i % 3 == 0 ? 86400000L * i : (i % 3 == 1 ? Long.MAX_VALUE - i : -1000L * i)));
                            doc.add(new StoredField("n_long2", 3600000L * (i - 200)));
                            doc.add(new StoredField("n_float", i % 2 == 0 ? (float) (i % 120) : -1.5f * i));
                            doc.add(new StoredField("n_float2", 3.25e10f + i));
                            doc.add(new StoredField("n_double", i % 2 == 0 ? (double) (i % 100) : Math.PI * i));
                            doc.add(new StoredField("n_double2", (double) (1.25f * i)));
                            doc.add(new StoredField("n_double3", -Math.E * i));
                        }
                        w.addDocument(doc);
                        if (i % 13 == 12)
                            w.deleteDocuments(new Term("_idx", "id-" + (i - 5)));
                    }
                    w.commit();
                    w.deleteDocuments(new Term("_idx", "id-2"));     // a .liv generation of a flushed segment
                    w.deleteDocuments(new Term("_idx", "id-301"));
                    w.commit();
                }
            } else if (kind.equals("soft") || kind.equals("soft70")) {
                withDocValues = true;
                try (IndexWriter w = new IndexWriter(d, config(mode, cfs, true, 0))) {
                    // segment 1: 9000 docs, 5000 of them soft-updated later (DENSE block)
                    for (int i = 0; i < 9000; i++)
                        w.addDocument(esDoc(r, i, 40));
                    w.flush();
                    for (int i = 0; i < 5000; i++)
                        w.softUpdateDocument(new Term("_idx", "id-" + i), esDoc(r, i, 60),
                                             new NumericDocValuesField(SOFT, 1));
                    w.commit();
                    // segment(s): small, some updated twice, a soft-deleted tombstone
                    for (int i = 9000; i < 9100; i++)
                        w.addDocument(esDoc(r, i, 100));
                    w.commit();
                    for (int i = 9000; i < 9100; i += 3)
                        w.softUpdateDocument(new Term("_idx", "id-" + i), esDoc(r, i, 120),
                                             new NumericDocValuesField(SOFT, 1));
                    Document tomb = new Document();
                    tomb.add(new StringField("_idx", "id-9001", Field.Store.NO));
                    tomb.add(new StoredField("_id", new BytesRef("id-9001".getBytes(StandardCharsets.UTF_8))));
                    tomb.add(new NumericDocValuesField(SOFT, 1));
                    w.softUpdateDocument(new Term("_idx", "id-9001"), tomb, new NumericDocValuesField(SOFT, 1));
                    w.deleteDocuments(new Term("_idx", "id-9004"));   // a hard delete as well
                    w.commit();
                }
            } else if (kind.equals("bench")) {
                long target = (long) mb << 20, bytes = 0;
                try (IndexWriter w = new IndexWriter(d, config(mode, cfs, false, 0))) {
                    for (int i = 0; bytes < target; i++) {
                        int approx = 200 + r.nextInt(2000);
                        Document doc = esDoc(r, i, approx);
                        bytes += doc.getBinaryValue("_source").length;
                        w.addDocument(doc);
                    }
                    w.commit();
                }
            } else {
                throw new IllegalArgumentException(kind);
            }
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

    static void dump(Path dir) throws Exception {
        PrintStream out = new PrintStream(new BufferedOutputStream(System.out, 1 << 16), false, "UTF-8");
        try (Directory d = FSDirectory.open(dir); DirectoryReader dr = DirectoryReader.open(d)) {
            for (LeafReaderContext ctx : dr.leaves()) {
                SegmentReader sr = (SegmentReader) ctx.reader();
                SegmentCommitInfo sci = sr.getSegmentInfo();
                FieldInfo sf = sr.getFieldInfos().fieldInfo(SOFT);
                StringBuilder binc = new StringBuilder();   // BINARY fields stored compressed (Lucene80 v2)
                for (FieldInfo fi : sr.getFieldInfos())
                    if ("BEST_COMPRESSION".equals(fi.getAttribute("Lucene80DocValuesFormat.mode")))
                        binc.append(binc.length() > 0 ? "," : "").append(fi.number);
                out.printf("segment %s maxdoc %d compound %d softfield %d dvgen %d dvformat %s dvsuffix %s softcount %d binc %s\n",
                           sci.info.name, sr.maxDoc(), sci.info.getUseCompoundFile() ? 1 : 0,
                           sf == null ? -1 : sf.number, sf == null ? -1 : sf.getDocValuesGen(),
                           sf == null ? "-" : sf.getAttribute("PerFieldDocValuesFormat.format"),
                           sf == null ? "-" : sf.getAttribute("PerFieldDocValuesFormat.suffix"),
                           sci.getSoftDelCount(), binc.length() > 0 ? binc : "-");
                org.apache.lucene.util.Bits live = sr.getHardLiveDocs();
                NumericDocValues sdv = sf == null ? null : sr.getNumericDocValues(SOFT);
                for (int i = 0; i < sr.maxDoc(); i++) {
                    boolean soft = false;
                    if (sdv != null) {
                        if (sdv.docID() < i)
                            sdv.advance(i);
                        soft = sdv.docID() == i;
                    }
                    out.printf("doc %d live %d soft %d\n", i, live == null || live.get(i) ? 1 : 0, soft ? 1 : 0);
                    sr.document(i, new StoredFieldVisitor() {
                        public Status needsField(FieldInfo fi) { return Status.YES; }
                        public void binaryField(FieldInfo fi, byte[] v) { out.printf("f %d b %d %s\n", fi.number, v.length, fnv(v)); }
                        public void stringField(FieldInfo fi, byte[] v) { out.printf("f %d s %d %s\n", fi.number, v.length, fnv(v)); }
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

    static void bench(Path dir) throws Exception {
        // "doc": the public LeafReader.document(i) path (decompresses the chunk
        // prefix per document); "seq": the codec's merge instance, which decodes
        // each chunk once, as a sequential reader should.
        for (String how : new String[] {"doc", "seq"}) {
            for (int round = 0; round < 3; round++) {   // round 0 warms the JIT
                long t0 = System.nanoTime(), docs = 0;
                final long[] bytes = {0};
                StoredFieldVisitor v = new StoredFieldVisitor() {
                    public Status needsField(FieldInfo fi) { return Status.YES; }
                    public void binaryField(FieldInfo fi, byte[] b) { if (fi.name.equals("_source")) bytes[0] += b.length; }
                };
                try (Directory d = FSDirectory.open(dir); DirectoryReader dr = DirectoryReader.open(d)) {
                    for (LeafReaderContext ctx : dr.leaves()) {
                        LeafReader lr = ctx.reader();
                        org.apache.lucene.codecs.StoredFieldsReader sfr = how.equals("seq")
                            ? ((CodecReader) lr).getFieldsReader().getMergeInstance() : null;
                        for (int i = 0; i < lr.maxDoc(); i++) {
                            if (sfr != null)
                                sfr.visitDocument(i, v);
                            else
                                lr.document(i, v);
                            docs++;
                        }
                    }
                }
                long ns = System.nanoTime() - t0;
                if (round > 0)
                    System.out.printf("java_%s docs %d source_bytes %d seconds %.3f%n", how, docs, bytes[0], ns / 1e9);
            }
        }
    }
}

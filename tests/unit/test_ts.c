/* TrafficStream codec against messages encoded independently by protoc.
 *
 * tests/fixtures/ts/<case>.txt is a text-format TrafficStream and <case>.bin
 * what `protoc --encode=TrafficStream` made of it with a proto3 rendering of
 * the Migration Assistant's schema (TrafficCaptureStream_proto3.proto). Each
 * case is also built here with our builder; then:
 *   - our encoding == protoc's bytes (committed .bin, and protoc re-run now);
 *   - our decoding of protoc's bytes has the expected fields and re-encodes
 *     to the same bytes;
 *   - protoc --decode of our bytes (with the proto3 file and with ours) and
 *     sm_ts_dump() both print exactly the .txt. */
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sm_test.h"

#define S(lit) (lit), (sizeof(lit) - 1)
#define SEC 1000000000LL

static TrafficStream *build_request_response(void)
{
    TrafficStream *ts = sm_ts_new("0242acfffe12000b-0000000a-0000000f-d1aa22e30e1211a4-eba39e55", "node-a");
    int64_t t0 = 1700000000 * SEC;
    sm_ts_add(ts, SM_TS_READ, t0 + 123456789,
              S("PUT /i/_doc/1 HTTP/1.1\r\nHost: localhost:9200\r\nContent-Length: 9\r\n\r\n"));
    sm_ts_add(ts, SM_TS_READ, t0 + 123456999, S("{\"a\":\"\\'\"}"));
    sm_ts_add_eom(ts, t0 + 123456999, 24, 45);
    sm_ts_add(ts, SM_TS_WRITE, t0 + 1 * SEC,
              S("HTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\n\000\001\377\200"));
    sm_ts_add(ts, SM_TS_CLOSE, t0 + 2 * SEC + 5, NULL, 0);
    sm_ts_set_index(ts, 1, true);
    sm_ts_set_prior_requests(ts, 0);          /* present although 0 */
    sm_ts_set_unterminated_read(ts, false);   /* present although false */
    return ts;
}

static TrafficStream *build_segments(void)
{
    TrafficStream *ts = sm_ts_new("c-seg", "n1");
    int64_t t = 1700000100 * SEC;
    sm_ts_add(ts, SM_TS_READ_SEGMENT, t, S("POST /_bulk HTTP/1.1\r\n"));
    sm_ts_add(ts, SM_TS_READ_SEGMENT, t, S("\r\n"));
    sm_ts_add(ts, SM_TS_SEGMENT_END, t, NULL, 0);
    sm_ts_add_eom(ts, t, -1, 2);
    sm_ts_add(ts, SM_TS_WRITE_SEGMENT, t + SEC, S("HTTP/1.1 200 OK\r\n"));
    sm_ts_add(ts, SM_TS_SEGMENT_END, t + SEC, NULL, 0);
    sm_ts_add_eom(ts, t + SEC, -1, -1);
    sm_ts_set_index(ts, 7, false);
    sm_ts_set_prior_requests(ts, 3);
    sm_ts_set_unterminated_read(ts, true);
    return ts;
}

static TrafficStream *build_other_kinds(void)
{
    TrafficStream *ts = sm_ts_new("c-other", NULL);
    sm_ts_add(ts, SM_TS_BIND, 0, NULL, 0);
    sm_ts_add(ts, SM_TS_CONNECT, 1 * SEC, NULL, 0);
    TrafficObservation *o = sm_ts_add(ts, SM_TS_REQUEST_RELEASED, 2 * SEC, NULL, 0);
    o->requestreleaseddownstream->has_timedout = 1;
    o->requestreleaseddownstream->timedout = 1;
    sm_ts_add(ts, SM_TS_READ, 3 * SEC, NULL, 0);
    sm_ts_add(ts, SM_TS_REQUEST_DROPPED, 4 * SEC, NULL, 0);
    sm_ts_add(ts, SM_TS_CONNECTION_EXCEPTION, 5 * SEC, S("capture gap: 1448 bytes lost at seq 1234"));
    sm_ts_add(ts, SM_TS_DISCONNECT, 6 * SEC, NULL, 0);
    sm_ts_set_index(ts, 0, false);   /* a oneof member is written even when 0 */
    return ts;
}

struct tcase { const char *name; TrafficStream *(*build)(void); };
static const struct tcase cases[] = {
    { "request_response", build_request_response },
    { "segments", build_segments },
    { "other_kinds", build_other_kinds },
};

static char *fixture(const char *name, const char *ext)
{
    static char path[4096];
    char rel[256];
    snprintf(rel, sizeof(rel), "tests/fixtures/ts/%s.%s", name, ext);
    snprintf(path, sizeof(path), "%s", sm_src_path(rel));
    return path;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *d = NULL;
    if (sm_read_file(path, 1 << 24, &d, len))
        return NULL;
    return d;
}

static int have_protoc(void)
{
    return system("protoc --version >/dev/null 2>&1") == 0;
}

/* Runs protoc in the fixture dir: mode "--encode" or "--decode", with the
 * given proto (-I dir), stdin from in_path, stdout to out_path. */
static int run_protoc(const char *mode, const char *incdir, const char *proto, const char *in_path,
                      const char *out_path)
{
    char cmd[32768];
    if (snprintf(cmd, sizeof(cmd), "protoc %s=TrafficStream -I'%s' -I/usr/include '%s' < '%s' > '%s'",
                 mode, incdir, proto, in_path, out_path) >= (int)sizeof(cmd))
        return -1;
    return system(cmd) == 0 ? 0 : -1;
}

static int test_encode_matches_protoc_fixture(void)
{
    for (size_t i = 0; i < SM_ARRAY_LEN(cases); i++) {
        size_t blen;
        uint8_t *bin = slurp(fixture(cases[i].name, "bin"), &blen);
        SM_CHECK(bin);
        TrafficStream *ts = cases[i].build();
        SM_CHECK(ts);
        SM_CHECK_EQ_INT(sm_ts_encoded_size(ts), blen);
        uint8_t *enc;
        size_t elen;
        SM_CHECK_EQ_INT(sm_ts_encode_alloc(ts, &enc, &elen), SM_OK);
        if (elen != blen || memcmp(enc, bin, blen)) {
            fprintf(stderr, "case %s: encoding differs from protoc's\n", cases[i].name);
            return 1;
        }
        /* too small a buffer: SM_EFULL, nothing claimed */
        size_t dummy = 0;
        SM_CHECK_EQ_INT(sm_ts_encode(ts, enc, elen - 1, &dummy), SM_EFULL);
        sm_free(enc);
        sm_ts_free(ts);
        sm_free(bin);
    }
    return 0;
}

static int test_decode_protoc_bytes(void)
{
    char err[256];
    size_t blen;
    /* request_response */
    uint8_t *bin = slurp(fixture("request_response", "bin"), &blen);
    SM_CHECK(bin);
    TrafficStream *ts = NULL;
    SM_CHECK_EQ_INT(sm_ts_decode(bin, blen, &ts, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_STR(ts->connectionid, "0242acfffe12000b-0000000a-0000000f-d1aa22e30e1211a4-eba39e55");
    SM_CHECK_EQ_STR(ts->nodeid, "node-a");
    SM_CHECK(ts->has_priorrequestsreceived);
    SM_CHECK_EQ_INT(ts->priorrequestsreceived, 0);
    SM_CHECK(ts->has_lastobservationwasunterminatedread);
    SM_CHECK(!ts->lastobservationwasunterminatedread);
    int32_t idx;
    bool last;
    SM_CHECK(sm_ts_index(ts, &idx, &last));
    SM_CHECK_EQ_INT(idx, 1);
    SM_CHECK(last);
    SM_CHECK_EQ_INT(ts->n_substream, 5);
    const enum sm_ts_kind kinds[] = { SM_TS_READ, SM_TS_READ, SM_TS_END_OF_MESSAGE, SM_TS_WRITE, SM_TS_CLOSE };
    for (size_t i = 0; i < 5; i++)
        SM_CHECK_EQ_INT(sm_ts_obs_kind(ts->substream[i]), kinds[i]);
    int64_t ns;
    SM_CHECK(sm_ts_obs_time_ns(ts->substream[0], &ns));
    SM_CHECK_EQ_INT(ns, 1700000000 * SEC + 123456789);
    SM_CHECK(sm_ts_obs_time_ns(ts->substream[4], &ns));
    SM_CHECK_EQ_INT(ns, 1700000002 * SEC + 5);
    const uint8_t *d;
    size_t dl;
    SM_CHECK(sm_ts_obs_data(ts->substream[3], &d, &dl));
    SM_CHECK_EQ_INT(dl, 47);
    SM_CHECK_MEM(d + 43, "\000\001\377\200", 4);
    SM_CHECK(!sm_ts_obs_data(ts->substream[2], &d, &dl));
    int32_t fl, hl;
    SM_CHECK(sm_ts_obs_eom(ts->substream[2], &fl, &hl));
    SM_CHECK_EQ_INT(fl, 24);
    SM_CHECK_EQ_INT(hl, 45);
    SM_CHECK(!sm_ts_obs_eom(ts->substream[0], &fl, &hl));
    SM_CHECK_EQ_STR(sm_ts_kind_name(sm_ts_obs_kind(ts->substream[2])), "endOfMessageIndicator");
    uint8_t *re;
    size_t rl;
    SM_CHECK_EQ_INT(sm_ts_encode_alloc(ts, &re, &rl), SM_OK);
    SM_CHECK_EQ_INT(rl, blen);
    SM_CHECK_MEM(re, bin, blen);
    sm_free(re);
    sm_ts_free(ts);
    sm_free(bin);

    /* segments: field 2 of readSegment/writeSegment, optional EOM fields */
    bin = slurp(fixture("segments", "bin"), &blen);
    SM_CHECK(bin);
    SM_CHECK_EQ_INT(sm_ts_decode(bin, blen, &ts, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(ts->n_substream, 7);
    SM_CHECK_EQ_INT(sm_ts_obs_kind(ts->substream[0]), SM_TS_READ_SEGMENT);
    SM_CHECK(sm_ts_obs_data(ts->substream[0], &d, &dl));
    SM_CHECK_EQ_INT(dl, 22);
    SM_CHECK_MEM(d, "POST /_bulk HTTP/1.1\r\n", 22);
    SM_CHECK_EQ_INT(sm_ts_obs_kind(ts->substream[2]), SM_TS_SEGMENT_END);
    SM_CHECK(sm_ts_obs_eom(ts->substream[3], &fl, &hl));
    SM_CHECK_EQ_INT(fl, -1);
    SM_CHECK_EQ_INT(hl, 2);
    SM_CHECK_EQ_INT(sm_ts_obs_kind(ts->substream[4]), SM_TS_WRITE_SEGMENT);
    SM_CHECK(sm_ts_obs_data(ts->substream[4], &d, &dl));
    SM_CHECK_MEM(d, "HTTP/1.1 200 OK\r\n", dl);
    SM_CHECK(sm_ts_obs_eom(ts->substream[6], &fl, &hl));
    SM_CHECK_EQ_INT(fl, -1);
    SM_CHECK_EQ_INT(hl, -1);
    SM_CHECK(sm_ts_index(ts, &idx, &last));
    SM_CHECK_EQ_INT(idx, 7);
    SM_CHECK(!last);
    SM_CHECK(ts->has_priorrequestsreceived && ts->priorrequestsreceived == 3);
    SM_CHECK(ts->has_lastobservationwasunterminatedread && ts->lastobservationwasunterminatedread);
    sm_ts_free(ts);
    sm_free(bin);

    /* other kinds; absent presence fields stay absent; number 0 is set */
    bin = slurp(fixture("other_kinds", "bin"), &blen);
    SM_CHECK(bin);
    SM_CHECK_EQ_INT(sm_ts_decode(bin, blen, &ts, err, sizeof(err)), SM_OK);
    SM_CHECK(!ts->has_priorrequestsreceived);
    SM_CHECK(!ts->has_lastobservationwasunterminatedread);
    SM_CHECK(ts->nodeid == NULL);
    SM_CHECK(sm_ts_index(ts, &idx, &last));
    SM_CHECK_EQ_INT(idx, 0);
    SM_CHECK(!last);
    const enum sm_ts_kind k2[] = { SM_TS_BIND, SM_TS_CONNECT, SM_TS_REQUEST_RELEASED, SM_TS_READ,
                                   SM_TS_REQUEST_DROPPED, SM_TS_CONNECTION_EXCEPTION, SM_TS_DISCONNECT };
    SM_CHECK_EQ_INT(ts->n_substream, 7);
    for (size_t i = 0; i < 7; i++)
        SM_CHECK_EQ_INT(sm_ts_obs_kind(ts->substream[i]), k2[i]);
    SM_CHECK(sm_ts_obs_time_ns(ts->substream[0], &ns));   /* ts present but empty */
    SM_CHECK_EQ_INT(ns, 0);
    SM_CHECK(ts->substream[2]->requestreleaseddownstream->timedout);
    SM_CHECK(sm_ts_obs_data(ts->substream[3], &d, &dl));
    SM_CHECK_EQ_INT(dl, 0);
    SM_CHECK(sm_ts_obs_data(ts->substream[5], &d, &dl));
    SM_CHECK_MEM(d, "capture gap: 1448 bytes lost at seq 1234", dl);
    sm_ts_free(ts);
    sm_free(bin);
    return 0;
}

/* sm_ts_dump prints what protoc --decode prints. */
static int test_dump_matches_text(void)
{
    for (size_t i = 0; i < SM_ARRAY_LEN(cases); i++) {
        size_t tlen;
        char *txt = (char *)slurp(fixture(cases[i].name, "txt"), &tlen);
        SM_CHECK(txt);
        TrafficStream *ts = cases[i].build();
        char *buf = NULL;
        size_t blen = 0;
        FILE *f = open_memstream(&buf, &blen);
        SM_CHECK(f);
        sm_ts_dump(f, ts);
        fclose(f);
        if (blen != tlen || memcmp(buf, txt, tlen)) {
            fprintf(stderr, "case %s: dump differs:\n%s\n--- expected:\n%s\n", cases[i].name, buf, txt);
            return 1;
        }
        free(buf);
        sm_ts_free(ts);
        sm_free(txt);
    }
    return 0;
}

/* Runs protoc now, both directions, with the proto3 fixture and with our proto. */
static int test_protoc_both_directions(void)
{
    if (!have_protoc()) {
        fprintf(stderr, "note: protoc not installed; relying on the committed .bin files\n");
        return 0;
    }
    char dir[4096], ourdir[4096];
    snprintf(dir, sizeof(dir), "%s", sm_src_path("tests/fixtures/ts"));
    snprintf(ourdir, sizeof(ourdir), "%s", sm_src_path("common/proto"));
    char tmpdir[] = "/tmp/sm_test_tsXXXXXX";
    SM_CHECK(mkdtemp(tmpdir));
    char ours[4200], enc[4200], dec[4200];
    snprintf(ours, sizeof(ours), "%s/ours.bin", tmpdir);
    snprintf(enc, sizeof(enc), "%s/protoc.bin", tmpdir);
    snprintf(dec, sizeof(dec), "%s/decoded.txt", tmpdir);
    for (size_t i = 0; i < SM_ARRAY_LEN(cases); i++) {
        char txtpath[4096];
        snprintf(txtpath, sizeof(txtpath), "%s", fixture(cases[i].name, "txt"));
        size_t tlen;
        char *txt = (char *)slurp(txtpath, &tlen);
        SM_CHECK(txt);
        TrafficStream *ts = cases[i].build();
        uint8_t *mine;
        size_t mlen;
        SM_CHECK_EQ_INT(sm_ts_encode_alloc(ts, &mine, &mlen), SM_OK);
        FILE *f = fopen(ours, "wb");
        SM_CHECK(f && fwrite(mine, 1, mlen, f) == mlen);
        fclose(f);
        /* protoc --encode of the text == our bytes */
        SM_CHECK_EQ_INT(run_protoc("--encode", dir, "TrafficCaptureStream_proto3.proto", txtpath, enc), 0);
        size_t plen;
        uint8_t *pb = slurp(enc, &plen);
        SM_CHECK(pb);
        if (plen != mlen || memcmp(pb, mine, mlen)) {
            fprintf(stderr, "case %s: protoc --encode differs from ours\n", cases[i].name);
            return 1;
        }
        /* protoc --decode of our bytes == the text, with either proto */
        const char *protos[2][2] = { { dir, "TrafficCaptureStream_proto3.proto" },
                                     { ourdir, "TrafficCaptureStream.proto" } };
        for (int p = 0; p < 2; p++) {
            SM_CHECK_EQ_INT(run_protoc("--decode", protos[p][0], protos[p][1], ours, dec), 0);
            size_t dlen;
            char *dt = (char *)slurp(dec, &dlen);
            SM_CHECK(dt);
            if (dlen != tlen || memcmp(dt, txt, tlen)) {
                fprintf(stderr, "case %s: protoc --decode (%s) of our bytes:\n%s\n", cases[i].name,
                        protos[p][1], dt);
                return 1;
            }
            sm_free(dt);
        }
        sm_free(pb);
        sm_free(mine);
        sm_free(txt);
        sm_ts_free(ts);
    }
    unlink(ours);
    unlink(enc);
    unlink(dec);
    rmdir(tmpdir);
    return 0;
}

static int test_decode_errors(void)
{
    char err[256] = "";
    TrafficStream *ts = (TrafficStream *)1;
    /* wire type 7 does not exist */
    static const uint8_t bad[] = { 0xff, 0xff, 0xff, 0xff };
    SM_CHECK_EQ_INT(sm_ts_decode(bad, sizeof(bad), &ts, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK(ts == NULL);
    SM_CHECK(strstr(err, "not a valid TrafficStream"));
    /* field number 0 (over-long tag varint) is invalid even though protobuf-c
     * would accept it; found by fuzzing */
    static const uint8_t zero[] = { 0x80, 0x00, 0x0a };
    SM_CHECK_EQ_INT(sm_ts_decode(zero, sizeof(zero), &ts, err, sizeof(err)), SM_ECORRUPT);
    static const uint8_t nested_zero[] = { 0x12, 0x03, 0x80, 0x00, 0x01 };   /* in subStream */
    SM_CHECK_EQ_INT(sm_ts_decode(nested_zero, sizeof(nested_zero), &ts, err, sizeof(err)), SM_ECORRUPT);
    /* a longer over-long form (80 80 00), and wire type 1 (81 00: fixed64) */
    static const uint8_t nested_zero3[] = { 0x12, 0x04, 0x80, 0x80, 0x00, 0x01 };
    SM_CHECK_EQ_INT(sm_ts_decode(nested_zero3, sizeof(nested_zero3), &ts, err, sizeof(err)), SM_ECORRUPT);
    static const uint8_t zero_fixed64[] = { 0x81, 0x00, 1, 2, 3, 4, 5, 6, 7, 8 };
    SM_CHECK_EQ_INT(sm_ts_decode(zero_fixed64, sizeof(zero_fixed64), &ts, err, sizeof(err)), SM_ECORRUPT);
    /* truncated: every proper prefix that cuts a field fails cleanly */
    size_t blen;
    uint8_t *bin = slurp(fixture("request_response", "bin"), &blen);
    SM_CHECK(bin);
    int failures = 0;
    for (size_t n = 1; n < blen; n++) {
        int rc = sm_ts_decode(bin, n, &ts, err, sizeof(err));
        if (rc == SM_OK)
            sm_ts_free(ts);
        else
            failures++;
        SM_CHECK(rc == SM_OK || rc == SM_ECORRUPT);
    }
    SM_CHECK(failures > 0);
    /* the size cap */
    SM_CHECK_EQ_INT(sm_ts_decode_max(bin, blen, blen - 1, &ts, err, sizeof(err)), SM_EFULL);
    SM_CHECK(strstr(err, "exceeds"));
    SM_CHECK_EQ_INT(sm_ts_decode_max(bin, blen, blen, &ts, err, sizeof(err)), SM_OK);
    sm_ts_free(ts);
    /* allocation failures inside the decoder give SM_ENOMEM, never a crash */
    int nomem = 0;
    for (long k = 0; k < 40; k++) {
        sm_mem_fail_after(k);
        int rc = sm_ts_decode(bin, blen, &ts, err, sizeof(err));
        sm_mem_fail_after(-1);
        if (rc == SM_OK) {
            sm_ts_free(ts);
            break;
        }
        SM_CHECK_EQ_INT(rc, SM_ENOMEM);
        nomem++;
    }
    SM_CHECK(nomem > 5);
    sm_free(bin);
    /* empty input is an empty TrafficStream */
    SM_CHECK_EQ_INT(sm_ts_decode((const uint8_t *)"", 0, &ts, err, sizeof(err)), SM_OK);
    SM_CHECK_EQ_INT(ts->n_substream, 0);
    sm_ts_free(ts);
    return 0;
}

/* Records decoded one after the other into one arena equal the malloc'd
 * decodes (same re-encoding), across growth (a large record after small ones:
 * several chunks, then one kept chunk) and errors (which leave *out NULL and
 * the arena usable). */
static int test_decode_arena(void)
{
    char err[256] = "";
    size_t blen;
    uint8_t *bin = slurp(fixture("request_response", "bin"), &blen);
    SM_CHECK(bin);
    /* a record far larger than the first chunk (64 KiB): 40 observations of 20 KiB */
    TrafficStream *big = sm_ts_new("conn-big", "node");
    SM_CHECK(big);
    static uint8_t payload[20000];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7);
    for (int i = 0; i < 40; i++)
        SM_CHECK(sm_ts_add(big, SM_TS_READ, 1000 + i, payload, sizeof(payload)) != NULL);
    uint8_t *bigenc;
    size_t biglen;
    SM_CHECK_EQ_INT(sm_ts_encode_alloc(big, &bigenc, &biglen), SM_OK);
    sm_ts_free(big);
    struct sm_ts_arena *a = sm_ts_arena_new();
    SM_CHECK(a);
    const uint8_t *inputs[] = { bin, bigenc, bin, bigenc, bigenc, bin };
    const size_t lens[] = { blen, biglen, blen, biglen, biglen, blen };
    for (size_t i = 0; i < 6; i++) {
        TrafficStream *x = NULL, *y = NULL;
        SM_CHECK_EQ_INT(sm_ts_decode_in(a, inputs[i], lens[i], SM_TS_DECODE_MAX, &x, err, sizeof(err)), SM_OK);
        SM_CHECK_EQ_INT(sm_ts_decode(inputs[i], lens[i], &y, err, sizeof(err)), SM_OK);
        uint8_t *ex, *ey;
        size_t lx, ly;
        SM_CHECK_EQ_INT(sm_ts_encode_alloc(x, &ex, &lx), SM_OK);
        SM_CHECK_EQ_INT(sm_ts_encode_alloc(y, &ey, &ly), SM_OK);
        SM_CHECK_EQ_INT(lx, ly);
        SM_CHECK(memcmp(ex, ey, lx) == 0);
        SM_CHECK_EQ_INT(lx, lens[i]);
        sm_free(ex);
        sm_free(ey);
        sm_ts_free(y);
        /* errors in between: NULL out, the arena still serves the next record */
        TrafficStream *z = (TrafficStream *)1;
        static const uint8_t zero[] = { 0x80, 0x00, 0x0a };
        SM_CHECK_EQ_INT(sm_ts_decode_in(a, zero, sizeof(zero), SM_TS_DECODE_MAX, &z, err, sizeof(err)), SM_ECORRUPT);
        SM_CHECK(z == NULL);
        SM_CHECK_EQ_INT(sm_ts_decode_in(a, bin, blen, blen - 1, &z, err, sizeof(err)), SM_EFULL);
        SM_CHECK(strstr(err, "exceeds"));
    }
    /* allocation failure inside the arena: SM_ENOMEM, then it works again */
    sm_ts_arena_free(a);
    a = sm_ts_arena_new();
    SM_CHECK(a);
    TrafficStream *x = NULL;
    sm_mem_fail_after(0);
    int rc = sm_ts_decode_in(a, bin, blen, SM_TS_DECODE_MAX, &x, err, sizeof(err));
    sm_mem_fail_after(-1);
    SM_CHECK_EQ_INT(rc, SM_ENOMEM);
    SM_CHECK_EQ_INT(sm_ts_decode_in(a, bin, blen, SM_TS_DECODE_MAX, &x, err, sizeof(err)), SM_OK);
    SM_CHECK(x->n_substream > 0);
    sm_ts_arena_free(a);
    sm_free(bigenc);
    sm_free(bin);
    return 0;
}

/* The arena's fast path takes every fixture record (protoc's bytes, all
 * observation kinds) and gives protobuf-c's record, its bytes values pointing
 * into the input; encodings with a repeated singular field, a second oneof
 * member, an unknown field or field number 0 are left to protobuf-c, whose
 * verdict sm_ts_decode_in() then returns. */
static int test_decode_fast(void)
{
    char err[256] = "";
    struct sm_ts_arena *a = sm_ts_arena_new();
    SM_CHECK(a);
    size_t with_data = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t blen;
        uint8_t *bin = slurp(fixture(cases[i].name, "bin"), &blen);
        SM_CHECK(bin);
        TrafficStream *f = NULL, *p = NULL;
        SM_CHECK_EQ_INT(sm_ts_decode_fast(a, bin, blen, &f), SM_OK);
        SM_CHECK_EQ_INT(sm_ts_decode(bin, blen, &p, err, sizeof(err)), SM_OK);
        uint8_t *ef, *ep;
        size_t lf, lp;
        SM_CHECK_EQ_INT(sm_ts_encode_alloc(f, &ef, &lf), SM_OK);
        SM_CHECK_EQ_INT(sm_ts_encode_alloc(p, &ep, &lp), SM_OK);
        SM_CHECK(lf == blen && lp == blen && !memcmp(ef, bin, blen) && !memcmp(ep, bin, blen));
        for (size_t k = 0; k < f->n_substream; k++) {
            const uint8_t *d;
            size_t dl;
            if (sm_ts_obs_kind(f->substream[k]) != SM_TS_CONNECTION_EXCEPTION && sm_ts_obs_data(f->substream[k], &d, &dl) && dl) {
                SM_CHECK(d > bin && d + dl <= bin + blen);   /* not copied */
                with_data++;
            }
        }
        sm_free(ef);
        sm_free(ep);
        sm_ts_free(p);
        sm_free(bin);
    }
    SM_CHECK(with_data > 2);
    /* field 1 (connectionId) twice: protobuf-c's last one wins */
    static const uint8_t dup[] = { 0x0a, 0x01, 'a', 0x0a, 0x01, 'b', 0x18, 0x01 };
    /* number (3) and numberOfThisLastChunk (4): protobuf-c keeps the last */
    static const uint8_t two_of[] = { 0x0a, 0x01, 'c', 0x18, 0x01, 0x20, 0x02 };
    /* an unknown field 9 (varint): protobuf-c keeps it aside */
    static const uint8_t unknown[] = { 0x0a, 0x01, 'c', 0x48, 0x05, 0x18, 0x01 };
    /* the observation's ts twice: protobuf-c's rules (it keeps the last) */
    static const uint8_t merge[] = { 0x0a, 0x01, 'c', 0x12, 0x08, 0x0a, 0x02, 0x08, 0x05, 0x0a, 0x02, 0x10, 0x07 };
    TrafficStream *x = NULL;
    SM_CHECK_EQ_INT(sm_ts_decode_fast(a, dup, sizeof(dup), &x), SM_EAGAIN);
    SM_CHECK(!x);
    SM_CHECK_EQ_INT(sm_ts_decode_in(a, dup, sizeof(dup), SM_TS_DECODE_MAX, &x, err, sizeof(err)), SM_OK);
    SM_CHECK(!strcmp(x->connectionid, "b"));
    SM_CHECK_EQ_INT(sm_ts_decode_fast(a, two_of, sizeof(two_of), &x), SM_EAGAIN);
    SM_CHECK_EQ_INT(sm_ts_decode_in(a, two_of, sizeof(two_of), SM_TS_DECODE_MAX, &x, err, sizeof(err)), SM_OK);
    SM_CHECK(x->index_case == TRAFFIC_STREAM__INDEX_NUMBER_OF_THIS_LAST_CHUNK && x->numberofthislastchunk == 2);
    SM_CHECK_EQ_INT(sm_ts_decode_fast(a, unknown, sizeof(unknown), &x), SM_EAGAIN);
    SM_CHECK_EQ_INT(sm_ts_decode_in(a, unknown, sizeof(unknown), SM_TS_DECODE_MAX, &x, err, sizeof(err)), SM_OK);
    SM_CHECK(x->base.n_unknown_fields == 1 && x->number == 1);
    SM_CHECK_EQ_INT(sm_ts_decode_fast(a, merge, sizeof(merge), &x), SM_EAGAIN);
    SM_CHECK_EQ_INT(sm_ts_decode_in(a, merge, sizeof(merge), SM_TS_DECODE_MAX, &x, err, sizeof(err)), SM_OK);
    SM_CHECK(x->n_substream == 1 && x->substream[0]->ts);
    /* (whatever protobuf-c makes of it: the same as sm_ts_decode()) */
    TrafficStream *y = NULL;
    SM_CHECK_EQ_INT(sm_ts_decode(merge, sizeof(merge), &y, err, sizeof(err)), SM_OK);
    SM_CHECK(x->substream[0]->ts->seconds == y->substream[0]->ts->seconds &&
             x->substream[0]->ts->nanos == y->substream[0]->ts->nanos && x->substream[0]->ts->nanos == 7);
    sm_ts_free(y);
    /* field number 0 and a truncated value: refused by protobuf-c, not taken here */
    static const uint8_t zero[] = { 0x80, 0x00, 0x0a };
    static const uint8_t cut[] = { 0x0a, 0x05, 'a' };
    SM_CHECK_EQ_INT(sm_ts_decode_fast(a, zero, sizeof(zero), &x), SM_EAGAIN);
    SM_CHECK_EQ_INT(sm_ts_decode_in(a, zero, sizeof(zero), SM_TS_DECODE_MAX, &x, err, sizeof(err)), SM_ECORRUPT);
    SM_CHECK_EQ_INT(sm_ts_decode_fast(a, cut, sizeof(cut), &x), SM_EAGAIN);
    SM_CHECK_EQ_INT(sm_ts_decode_in(a, cut, sizeof(cut), SM_TS_DECODE_MAX, &x, err, sizeof(err)), SM_ECORRUPT);
    /* an empty record is a valid, empty TrafficStream both ways */
    SM_CHECK_EQ_INT(sm_ts_decode_fast(a, dup, 0, &x), SM_OK);
    SM_CHECK(x && !x->connectionid && !x->n_substream && !x->substream);
    sm_ts_arena_free(a);
    return 0;
}

static int test_builder_alloc_failures(void)
{
    /* every allocation failure inside the builder is reported, nothing leaks (ASan) */
    for (long k = 0; k < 30; k++) {
        sm_mem_fail_after(k);
        TrafficStream *ts = sm_ts_new("c", "n");
        bool failed = !ts;
        if (ts) {
            if (!sm_ts_add(ts, SM_TS_READ, 1, S("abc")))
                failed = true;
            if (!sm_ts_add(ts, SM_TS_CONNECTION_EXCEPTION, 1, S("gap")))
                failed = true;
            if (!sm_ts_add_eom(ts, 1, 3, 4))
                failed = true;
        }
        sm_mem_fail_after(-1);
        sm_ts_free(ts);
        if (!failed)
            break;
    }
    TrafficStream *ts = sm_ts_new("", "");
    SM_CHECK(ts && !ts->connectionid && !ts->nodeid);
    SM_CHECK(sm_ts_add(ts, (enum sm_ts_kind)7, 0, NULL, 0) == NULL);   /* unknown kind */
    SM_CHECK_EQ_INT(ts->n_substream, 0);
    sm_ts_free(ts);
    return 0;
}

static int test_obs_size_bound_and_time(void)
{
    TrafficStream *ts = sm_ts_new("conn", "node");
    static uint8_t big[70000];
    const size_t sizes[] = { 0, 1, 100, 127, 128, 16383, 16384, 65536, 70000 };
    for (size_t i = 0; i < SM_ARRAY_LEN(sizes); i++) {
        size_t before = sm_ts_encoded_size(ts);
        SM_CHECK(sm_ts_add(ts, SM_TS_WRITE_SEGMENT, INT64_C(4102444800) * SEC + 999999999, big, sizes[i]));
        size_t grew = sm_ts_encoded_size(ts) - before;
        SM_CHECK(grew <= sm_ts_obs_max_size(sizes[i]));
        SM_CHECK(grew + 16 >= sm_ts_obs_max_size(sizes[i]));   /* and not wildly above */
    }
    sm_ts_free(ts);
    /* pre-1970 times round-trip (seconds floor, nanos positive) */
    ts = sm_ts_new("c", NULL);
    TrafficObservation *o = sm_ts_add(ts, SM_TS_CLOSE, -1500000000LL, NULL, 0);
    SM_CHECK_EQ_INT(o->ts->seconds, -2);
    SM_CHECK_EQ_INT(o->ts->nanos, 500000000);
    int64_t ns;
    SM_CHECK(sm_ts_obs_time_ns(o, &ns));
    SM_CHECK_EQ_INT(ns, -1500000000LL);
    sm_ts_free(ts);
    return 0;
}

/* ---- streaming encoder (sm_ts_enc) ----------------------------------------- */

static int check_enc_equals(const TrafficStream *ts, const uint8_t *got, size_t glen, const char *what)
{
    uint8_t *want;
    size_t wlen;
    SM_CHECK_EQ_INT(sm_ts_encode_alloc(ts, &want, &wlen), SM_OK);
    if (wlen != glen || memcmp(want, got, wlen)) {
        size_t i = 0;
        while (i < wlen && i < glen && want[i] == got[i])
            i++;
        fprintf(stderr, "%s: streaming encoding differs from protobuf-c's at byte %zu (%zu vs %zu bytes)\n",
                what, i, glen, wlen);
        sm_free(want);
        return 1;
    }
    sm_free(want);
    return 0;
}

/* The fixture records protoc encoded, written by the streaming encoder. */
static int test_enc_matches_protoc_fixture(void)
{
    struct sm_ts_enc e;
    sm_ts_enc_init(&e);
    int64_t t0 = 1700000000 * SEC;
    SM_CHECK_EQ_INT(sm_ts_enc_begin(&e, "0242acfffe12000b-0000000a-0000000f-d1aa22e30e1211a4-eba39e55"), SM_OK);
    SM_CHECK_EQ_INT(sm_ts_enc_add(&e, SM_TS_READ, t0 + 123456789,
                                  S("PUT /i/_doc/1 HTTP/1.1\r\nHost: localhost:9200\r\n")), SM_OK);
    /* the same bytes in two pieces at one timestamp: one observation */
    SM_CHECK_EQ_INT(sm_ts_enc_extend(&e, SM_TS_READ, t0 + 123456789, S("Content-Length: 9\r\n\r\n")), SM_OK);
    SM_CHECK_EQ_INT(sm_ts_enc_extend(&e, SM_TS_READ, t0 + 1, S("x")), SM_EINVAL);   /* other time */
    SM_CHECK_EQ_INT(sm_ts_enc_extend(&e, SM_TS_WRITE, t0 + 123456789, S("x")), SM_EINVAL);   /* other kind */
    SM_CHECK_EQ_INT(sm_ts_enc_add(&e, SM_TS_READ, t0 + 123456999, S("{\"a\":\"\\'\"}")), SM_OK);
    SM_CHECK_EQ_INT(sm_ts_enc_add_eom(&e, t0 + 123456999, 24, 45), SM_OK);
    SM_CHECK_EQ_INT(sm_ts_enc_add(&e, SM_TS_WRITE, t0 + 1 * SEC,
                                  S("HTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\n\000\001\377\200")), SM_OK);
    SM_CHECK_EQ_INT(sm_ts_enc_add(&e, SM_TS_CLOSE, t0 + 2 * SEC + 5, NULL, 0), SM_OK);
    SM_CHECK_EQ_INT(e.n_obs, 5);
    uint8_t *out;
    size_t olen;
    SM_CHECK_EQ_INT(sm_ts_enc_finish(&e, 1, true, "node-a", 0, 0, &out, &olen), SM_OK);
    size_t blen;
    uint8_t *bin = slurp(fixture("request_response", "bin"), &blen);
    SM_CHECK(bin);
    SM_CHECK_EQ_INT(olen, blen);
    SM_CHECK_MEM(out, bin, blen);
    sm_free(out);
    sm_free(bin);

    int64_t t = 1700000100 * SEC;
    /* a presized buffer (sm_ts_enc_reserve, before and inside a record)
     * changes nothing in the bytes */
    SM_CHECK_EQ_INT(sm_ts_enc_reserve(&e, 64 * 1024), SM_OK);
    SM_CHECK(e.cap >= 64 * 1024 && e.len == 0);
    SM_CHECK_EQ_INT(sm_ts_enc_begin(&e, "c-seg"), SM_OK);
    SM_CHECK(e.cap >= 64 * 1024);
    sm_ts_enc_add(&e, SM_TS_READ_SEGMENT, t, S("POST /_bulk HTTP/1.1\r\n"));
    size_t had = e.len;
    SM_CHECK_EQ_INT(sm_ts_enc_reserve(&e, 1024 * 1024), SM_OK);
    SM_CHECK(e.cap >= 1024 * 1024 && e.len == had);
    SM_CHECK_EQ_INT(sm_ts_enc_reserve(&e, 16), SM_OK);   /* never shrinks */
    SM_CHECK(e.cap >= 1024 * 1024);
    sm_ts_enc_add(&e, SM_TS_READ_SEGMENT, t, S("\r\n"));
    sm_ts_enc_add(&e, SM_TS_SEGMENT_END, t, NULL, 0);
    sm_ts_enc_add_eom(&e, t, -1, 2);
    sm_ts_enc_add(&e, SM_TS_WRITE_SEGMENT, t + SEC, S("HTTP/1.1 200 OK\r\n"));
    sm_ts_enc_add(&e, SM_TS_SEGMENT_END, t + SEC, NULL, 0);
    SM_CHECK_EQ_INT(sm_ts_enc_add_eom(&e, t + SEC, -1, -1), SM_OK);
    SM_CHECK_EQ_INT(sm_ts_enc_finish(&e, 7, false, "n1", 3, 1, &out, &olen), SM_OK);
    bin = slurp(fixture("segments", "bin"), &blen);
    SM_CHECK(bin);
    SM_CHECK_EQ_INT(olen, blen);
    SM_CHECK_MEM(out, bin, blen);
    sm_free(out);
    sm_free(bin);
    sm_ts_enc_free(&e);
    return 0;
}

static uint64_t rnd_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Generated records, every kind, every length class (varint widths 1..3 of
 * the payload, inner and observation lengths), extensions that cross them,
 * timestamps with zero/negative/huge parts, absent and present trailer
 * fields: byte for byte what protobuf-c packs for the same tree. */
static int test_enc_matches_builder(void)
{
    static const enum sm_ts_kind kinds[] = {
        SM_TS_BIND, SM_TS_CONNECT, SM_TS_READ, SM_TS_READ_SEGMENT, SM_TS_REQUEST_RELEASED, SM_TS_WRITE,
        SM_TS_WRITE_SEGMENT, SM_TS_DISCONNECT, SM_TS_CLOSE, SM_TS_CONNECTION_EXCEPTION, SM_TS_SEGMENT_END,
        SM_TS_END_OF_MESSAGE, SM_TS_REQUEST_DROPPED,
    };
    static const size_t lens[] = { 0, 1, 2, 100, 110, 127, 128, 129, 1448, 16250, 16383, 16384, 20000 };
    static const int64_t times[] = { 0, 1, 999999999, 1000000000, 1700000000123456789LL, -1, -1500000000LL,
                                     INT64_C(4102444800) * SEC + 999999999, 5 * SEC };
    static uint8_t payload[70000];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)rnd_next(&x);
    memcpy(payload + 300, "gap\0after nul", 13);
    struct sm_ts_enc e;
    sm_ts_enc_init(&e);
    for (int rec = 0; rec < 400; rec++) {
        const char *cid = rec % 7 == 0 ? NULL : rec % 11 == 0 ? "" : "0242acfffe12000b-00000001-c0ffee";
        const char *node = rec % 5 == 0 ? NULL : rec % 13 == 0 ? "" : "node-a.example";
        TrafficStream *ts = sm_ts_new(cid, node);
        SM_CHECK(ts);
        SM_CHECK_EQ_INT(sm_ts_enc_begin(&e, cid), SM_OK);
        int nobs = (int)(rnd_next(&x) % 12);
        for (int k = 0; k < nobs; k++) {
            enum sm_ts_kind kind = kinds[rnd_next(&x) % SM_ARRAY_LEN(kinds)];
            int64_t tns = times[rnd_next(&x) % SM_ARRAY_LEN(times)];
            size_t len = lens[rnd_next(&x) % SM_ARRAY_LEN(lens)];
            size_t off = kind == SM_TS_CONNECTION_EXCEPTION && rnd_next(&x) % 2 ? 300 : rnd_next(&x) % 1000;
            if (kind == SM_TS_END_OF_MESSAGE) {
                int32_t a = (int32_t)(rnd_next(&x) % 3) - 1, b = (int32_t)(rnd_next(&x) % 70000) - 1;
                if (rnd_next(&x) % 4 == 0)
                    a = -5;
                SM_CHECK(sm_ts_add_eom(ts, tns, a, b));
                SM_CHECK_EQ_INT(sm_ts_enc_add_eom(&e, tns, a, b), SM_OK);
                continue;
            }
            TrafficObservation *o = sm_ts_add(ts, kind, tns, payload + off, len);
            SM_CHECK(o);
            SM_CHECK_EQ_INT(sm_ts_enc_add(&e, kind, tns, payload + off, len), SM_OK);
            if ((kind == SM_TS_READ || kind == SM_TS_WRITE) && rnd_next(&x) % 2) {
                /* grow it once or twice, as the record builder merges a head and body */
                for (int g = (int)(rnd_next(&x) % 2); g < 2; g++) {
                    size_t more = lens[rnd_next(&x) % SM_ARRAY_LEN(lens)];
                    ProtobufCBinaryData *bd = kind == SM_TS_READ ? &o->read->data : &o->write->data;
                    if (more) {
                        uint8_t *nd = sm_realloc(bd->data, bd->len + more);
                        SM_CHECK(nd);
                        memcpy(nd + bd->len, payload + 2000, more);
                        bd->data = nd;
                        bd->len += more;
                        if (kind == SM_TS_READ)
                            o->read->has_data = 1;
                        else
                            o->write->has_data = 1;
                    }
                    SM_CHECK_EQ_INT(sm_ts_enc_extend(&e, kind, tns, payload + 2000, more), SM_OK);
                }
            }
        }
        int32_t index = (int32_t)(rnd_next(&x) % 300) - (rec % 17 == 0 ? 1000 : 0);
        bool last = rnd_next(&x) % 2;
        int32_t prior = rec % 3 == 0 ? -1 : (int32_t)(rnd_next(&x) % 100000);
        int unterminated = rec % 4 == 0 ? -1 : (int)(rnd_next(&x) % 2);
        sm_ts_set_index(ts, index, last);
        if (prior >= 0)
            sm_ts_set_prior_requests(ts, prior);
        if (unterminated >= 0)
            sm_ts_set_unterminated_read(ts, unterminated);
        uint8_t *out;
        size_t olen;
        SM_CHECK_EQ_INT(sm_ts_enc_finish(&e, index, last, node, prior, unterminated, &out, &olen), SM_OK);
        char what[64];
        snprintf(what, sizeof(what), "generated record %d", rec);
        int bad = check_enc_equals(ts, out, olen, what);
        sm_free(out);
        sm_ts_free(ts);
        if (bad)
            return 1;
    }
    /* unknown kinds are refused, nothing written */
    SM_CHECK_EQ_INT(sm_ts_enc_begin(&e, "c"), SM_OK);
    size_t before = e.len;
    SM_CHECK_EQ_INT(sm_ts_enc_add(&e, (enum sm_ts_kind)7, 0, NULL, 0), SM_EINVAL);
    SM_CHECK_EQ_INT(sm_ts_enc_add(&e, SM_TS_END_OF_MESSAGE, 0, NULL, 0), SM_EINVAL);
    SM_CHECK_EQ_INT(sm_ts_enc_extend(&e, SM_TS_READ, 0, S("x")), SM_EINVAL);   /* nothing to extend */
    SM_CHECK_EQ_INT(e.len, before);
    sm_ts_enc_free(&e);
    /* allocation failures are reported; reset and free leave nothing behind (ASan) */
    for (long k = 0; k < 8; k++) {
        sm_mem_fail_after(k);
        sm_ts_enc_init(&e);
        int rc = sm_ts_enc_begin(&e, "c");
        for (int i = 0; rc == SM_OK && i < 4; i++)
            rc = sm_ts_enc_add(&e, SM_TS_WRITE, 1, payload, 3000);
        uint8_t *out = NULL;
        size_t olen;
        if (rc == SM_OK)
            rc = sm_ts_enc_finish(&e, 1, true, "n", 0, 0, &out, &olen);
        sm_mem_fail_after(-1);
        sm_free(out);
        sm_ts_enc_free(&e);
        if (rc == SM_OK)
            break;
        SM_CHECK_EQ_INT(rc, SM_ENOMEM);
    }
    return 0;
}

SM_TEST_MAIN(SM_TC(test_encode_matches_protoc_fixture), SM_TC(test_decode_protoc_bytes),
             SM_TC(test_dump_matches_text), SM_TC(test_protoc_both_directions),
             SM_TC(test_decode_errors), SM_TC(test_decode_arena), SM_TC(test_decode_fast), SM_TC(test_builder_alloc_failures),
             SM_TC(test_obs_size_bound_and_time), SM_TC(test_enc_matches_protoc_fixture),
             SM_TC(test_enc_matches_builder))

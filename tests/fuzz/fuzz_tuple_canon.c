/* Direct tuple serialiser (replay/tuple/tuple.c) checked differentially
 * against the jansson path it replaced:
 *  - replay_tuple_json_canon() on any text gives exactly what jansson's
 *    json_loadb() + replay_tuple_dump() give, or fails where jansson fails
 *    (with and without JSON_ALLOW_NUL);
 *  - replay_tuple_msg_dump() of a message built from the input (headers from
 *    the first lines, body after an empty line) gives the bytes of
 *    replay_tuple_dump(replay_tuple_msg_json());
 *  - the comparison on a tuple's replay_tuple_cmp_view() and the live hook's
 *    (replay_live_compare_tuple(), the parts parsed on their own) classify it
 *    (the message as request and source response, one from the input's
 *    second half as target response) as replay_cmp_tuple() does on the
 *    jansson tree, with the same "comparison" bytes. */
#include "compare/compare.h"
#include "http/msg.h"
#include "report/report.h"
#include "tuple/tuple.h"

#include <sm/buf.h>
#include <sm/err.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void show(const char *what, const struct sm_buf *a, const struct sm_buf *b)
{
    fprintf(stderr, "%s\n want %.*s\n  got %.*s\n", what, (int)(a->len > 400 ? 400 : a->len), (const char *)a->data,
            (int)(b->len > 400 ? 400 : b->len), (const char *)b->data);
    abort();
}

static void check_canon(const uint8_t *data, size_t size, bool allow_nul, struct replay_tuple_scratch *s)
{
    struct sm_buf want, got;
    sm_buf_init(&want, (size_t)1 << 30);
    sm_buf_init(&got, (size_t)1 << 30);
    json_error_t je;
    json_t *ref = json_loadb((const char *)data, size, JSON_DECODE_ANY | (allow_nul ? JSON_ALLOW_NUL : 0), &je);
    int wrc = ref ? replay_tuple_dump(ref, &want) : SM_EPROTO;
    int grc = replay_tuple_json_canon(data, size, allow_nul, &got, s);
    if ((wrc == SM_OK) != (grc == SM_OK))
        show(grc ? "canon refuses what jansson takes" : "canon takes what jansson refuses", &want, &got);
    if (!wrc && (want.len != got.len || memcmp(want.data, got.data, want.len)))
        show("canon differs from jansson", &want, &got);
    json_decref(ref);
    sm_buf_free(&want);
    sm_buf_free(&got);
}

/* "name: value" lines up to an empty line, then the body */
static void make_msg(const uint8_t *data, size_t size, struct replay_http_msg *m, struct replay_header *hs, size_t maxh,
                     char *strs, size_t strs_len)
{
    memset(m, 0, sizeof(*m));
    m->is_request = size && (data[0] & 1);
    m->http_major = 1;
    m->http_minor = size > 1 ? data[1] % 12 : 1;
    m->status = size > 2 ? 100 + data[2] : 200;
    m->method = "POST";
    m->uri = "/i/_bulk";
    m->reason = size > 3 && (data[3] & 1) ? NULL : "OK";
    m->headers = hs;
    size_t i = size > 4 ? 4 : size, w = 0;
    while (i < size && m->n_headers < maxh) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t l = nl ? (size_t)(nl - (data + i)) : size - i;
        if (!l) {
            i++;
            break;
        }
        const uint8_t *colon = memchr(data + i, ':', l);
        if (!colon || w + l + 2 > strs_len)
            break;
        size_t nlen = (size_t)(colon - (data + i));
        char *n = strs + w;
        memcpy(n, data + i, nlen);
        n[nlen] = 0;
        w += nlen + 1;
        char *v = strs + w;
        memcpy(v, colon + 1, l - nlen - 1);
        v[l - nlen - 1] = 0;
        w += l - nlen;
        if (strlen(n) == nlen && strlen(v) == l - nlen - 1) {
            hs[m->n_headers].name = n;
            hs[m->n_headers].value = v;
            m->n_headers++;
        }
        i += l + 1;
    }
    if (i < size) {
        m->body = (uint8_t *)(uintptr_t)(data + i);
        m->body_len = size - i;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct replay_tuple_scratch s;
    static struct replay_cmp *cmp;
    if (!cmp && !(cmp = replay_cmp_new()))
        abort();
    if (size > 1 << 20)
        return 0;
    check_canon(data, size, true, &s);
    check_canon(data, size, false, &s);

    struct replay_http_msg m;
    struct replay_header hs[16];
    static char strs[1 << 16];
    make_msg(data, size, &m, hs, 16, strs, sizeof(strs));
    struct sm_buf want, got;
    sm_buf_init(&want, (size_t)1 << 30);
    sm_buf_init(&got, (size_t)1 << 30);
    json_t *t = replay_tuple_msg_json(&m, size > 4 ? data[4] : -1);
    if (!t || replay_tuple_dump(t, &want) || replay_tuple_msg_dump(&m, size > 4 ? data[4] : -1, &got, &s, NULL))
        abort();
    if (want.len != got.len || memcmp(want.data, got.data, want.len))
        show("message JSON differs", &want, &got);
    json_decref(t);

    /* a tuple: the message as request and as source response, one from the
     * input's second half as target response; the comparison on the view as
     * on the jansson tree */
    struct replay_http_msg req = m, src = m, m2;
    req.is_request = true;
    src.is_request = false;
    struct replay_header hs2[16];
    static char strs2[1 << 16];
    make_msg(data + size / 2, size - size / 2, &m2, hs2, 16, strs2, sizeof(strs2));
    m2.is_request = false;
    json_t *tuple = json_object();
    json_object_set_new(tuple, "sourceRequest", replay_tuple_msg_json(&req, -1));
    json_object_set_new(tuple, "sourceResponse", replay_tuple_msg_json(&src, 5));
    json_t *tr = json_array();
    json_array_append_new(tr, replay_tuple_msg_json(&m2, 3));
    json_object_set_new(tuple, "targetResponses", tr);
    json_t *ca = NULL, *cb = NULL;
    enum replay_cmp_class a = replay_cmp_tuple(cmp, tuple, &ca);

    struct replay_tuple_parts parts;
    struct replay_tuple_part *pp[3] = { &parts.req, &parts.src, &parts.tgt };
    const struct replay_http_msg *ms[3] = { &req, &src, &m2 };
    static const char *const keys[3] = { "{\"sourceRequest\":", ",\"sourceResponse\":", ",\"targetResponses\":[" };
    sm_buf_reset(&got);
    for (int i = 0; i < 3; i++) {
        size_t po;
        if (sm_buf_append_str(&got, keys[i]))
            abort();
        size_t off = got.len;
        if (replay_tuple_msg_dump(ms[i], i == 0 ? -1 : i == 1 ? 5 : 3, &got, &s, &po))
            abort();
        *pp[i] = (struct replay_tuple_part){ ms[i], off, got.len - off, po };
    }
    if (sm_buf_append_str(&got, "]}"))
        abort();
    /* the line is the tree's bytes */
    sm_buf_reset(&want);
    if (replay_tuple_dump(tuple, &want) || want.len != got.len || memcmp(want.data, got.data, want.len))
        show("tuple differs", &want, &got);
    struct sm_buf view;
    sm_buf_init(&view, (size_t)1 << 30);
    if (replay_tuple_cmp_view(&got, &parts, &view))
        abort();
    struct sm_buf ctext;
    sm_buf_init(&ctext, (size_t)1 << 30);
    enum replay_cmp_class b = replay_cmp_tuple_text(cmp, (const char *)view.data, view.len, NULL, &ctext);
    json_error_t je;
    cb = json_loadb((const char *)ctext.data, ctext.len, 0, &je);
    sm_buf_reset(&want);
    if (ca && replay_tuple_dump(ca, &want))
        abort();
    /* the live hook's path: the parts parsed on their own */
    static struct sm_buf scratch;
    struct sm_buf ptext;
    sm_buf_init(&ptext, (size_t)1 << 30);
    int pc = replay_live_compare_tuple(cmp, &scratch, &got, &parts, &ptext);
    if (pc != (int)a || ptext.len != want.len || memcmp(ptext.data, want.data, want.len))
        show("comparison from the parts differs", &want, &ptext);
    sm_buf_free(&ptext);
    if (a != b || !json_equal(ca, cb) || want.len != ctext.len || memcmp(want.data, ctext.data, want.len)) {
        char *x = json_dumps(ca, JSON_COMPACT), *y = json_dumps(cb, JSON_COMPACT);
        fprintf(stderr, "comparison differs: %d %s / %d %s\n view %.*s\n", (int)a, x, (int)b, y,
                (int)(view.len > 400 ? 400 : view.len), (const char *)view.data);
        abort();
    }
    sm_buf_free(&view);
    sm_buf_free(&ctext);
    json_decref(ca);
    json_decref(cb);
    json_decref(tuple);
    sm_buf_free(&want);
    sm_buf_free(&got);
    return 0;
}

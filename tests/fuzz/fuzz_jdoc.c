/* Comparator input path: the in-place JSON parser (replay/compare/jdoc.c)
 * checked differentially against jansson, then the parsed value run through
 * the comparator as a tuple (replay_cmp_tuple_jd), so that the rules for
 * search hits, bulk items, aggregations and ignores see arbitrary shapes.
 *  - whatever jansson accepts, jd_parse must accept with an equal value
 *    (except texts with raw NUL bytes, which jansson treats loosely);
 *  - jd_parse may accept more (big integers, raw control bytes) but the value
 *    must still convert back to jansson;
 *  - nothing may crash or leak (the sanitizer build runs this). */
#include "compare/compare.h"
#include "compare/jdoc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jd_doc *doc;
    static struct replay_cmp *cmp;
    if (!doc) {
        doc = jd_doc_new();
        cmp = replay_cmp_new();
        if (!doc || !cmp)
            abort();
    }
    if (size > 1 << 20)
        return 0;
    char *buf = malloc(size + 1);     /* jd_parse writes buf[len] and unescapes in place */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;

    json_error_t je;
    json_t *ref = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    jd_doc_reset(doc);
    const struct jd_val *v = jd_parse(doc, buf, size);
    /* jansson takes a raw NUL after a top-level scalar ("0\0") as the end of
     * the text; JSON has no raw NUL anywhere, so jd_parse may refuse those. */
    if (ref && !v && !memchr(data, 0, size)) {
        fprintf(stderr, "jansson accepts what jd_parse rejects: %.*s\n", (int)(size > 200 ? 200 : size),
                (const char *)data);
        abort();
    }
    if (v) {
        json_t *back = jd_to_json(v);
        if (!back)
            abort();
        if (ref && !json_equal(back, ref)) {
            fprintf(stderr, "values differ: %.*s\n", (int)(size > 200 ? 200 : size), (const char *)data);
            abort();
        }
        json_decref(back);
        json_t *out = NULL;
        enum replay_cmp_class cls = replay_cmp_tuple_jd(cmp, v, &out);
        if ((int)cls < 0 || cls >= REPLAY_CMP_NCLASSES)
            abort();
        json_decref(out);
    }
    json_decref(ref);
    free(buf);
    return 0;
}

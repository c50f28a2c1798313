/* libFuzzer harness: SMILE decoder through all three consumers. The first
 * input byte selects limits; the rest is the document. */
#include "smile/smile.h"

#include <sm/buf.h>

#include <stddef.h>
#include <stdint.h>

static int count_cb(void *arg, const struct rfs_smile_event *ev)
{
    size_t *n = arg;
    *n += ev->len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct rfs_smile_limits lim = { .max_depth = 1 + (data[0] & 0x3f) * 4, .max_events = 1u << 16 };
    data++;
    size--;
    char err[256];
    size_t n = 0;
    (void)rfs_smile_parse(data, size, &lim, count_cb, &n, err, sizeof(err));
    struct sm_buf b;
    sm_buf_init(&b, 1 << 20);
    (void)rfs_smile_to_json(data, size, &lim, &b, err, sizeof(err));
    sm_buf_free(&b);
    json_t *j = NULL;
    if (rfs_smile_to_jansson(data, size, &lim, &j, err, sizeof(err)) == 0)
        json_decref(j);
    return 0;
}

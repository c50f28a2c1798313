#include <sm/utf8.h>

#include <sm/mem.h>

#include <string.h>

size_t sm_utf8_seq_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t k;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
        k = 1;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        k = 2;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        k = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (k > n - 1)
        return 0;
    for (size_t j = 1; j <= k; j++) {
        if ((s[j] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[j] & 0x3f);
    }
    if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k + 1;
}

bool sm_utf8_valid(const void *p, size_t n)
{
    const uint8_t *s = p;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = sm_utf8_seq_len(s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

char *sm_utf8_repair(const void *p, size_t n, size_t *outlen)
{
    const uint8_t *s = p;
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = sm_malloc(3 * n + 1);   /* worst case: every byte becomes EF BF BD */
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = sm_utf8_seq_len(s + i, n - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = 0;
    *outlen = o;
    return out;
}

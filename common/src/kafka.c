/* Kafka helpers: librdkafka configuration pass-through, log routing,
 * producer/consumer constructors with searchmig's defaults. */
#include <sm/err.h>
#include <sm/kafka.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#define PROPS_FILE_MAX (1u << 20)

bool sm_kafka_key_is_secret(const char *key)
{
    static const char *const words[] = { "password", "secret", "sasl.jaas", "ssl.key.pem",
                                         "ssl_key", "token", "credentials" };
    for (size_t i = 0; i < SM_ARRAY_LEN(words); i++)
        if (strstr(key, words[i]))
            return true;
    return false;
}

int sm_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *val,
                      char *err, size_t errlen)
{
    char rderr[512];
    rderr[0] = 0;
    char *resolved = NULL;
    if (val[0] == '@' || !strncmp(val, "file:", 5)) {
        char e2[384] = "";
        resolved = sm_secret_resolve(val, e2, sizeof(e2));
        if (!resolved)
            return sm_errf(err, errlen, SM_ECONFIG, "kafka property %s: %s", key,
                           e2[0] ? e2 : "out of memory");
        val = resolved;
    }
    rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, key, val, rderr, sizeof(rderr));
    sm_free(resolved);
    if (res == RD_KAFKA_CONF_OK)
        return SM_OK;
    if (res == RD_KAFKA_CONF_UNKNOWN)
        return sm_errf(err, errlen, SM_ECONFIG, "kafka property %s: unknown to librdkafka "
                       "(see its CONFIGURATION.md; Java client properties do not apply)", key);
    if (sm_kafka_key_is_secret(key))
        return sm_errf(err, errlen, SM_ECONFIG, "kafka property %s: invalid value (not shown)", key);
    return sm_errf(err, errlen, SM_ECONFIG, "kafka property %s: %s", key, rderr);
}

/* librdkafka log callback: syslog levels into sm_log. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const char *name = rk ? rd_kafka_name(rk) : "rdkafka";
    if (level <= LOG_ERR)
        sm_log_err("kafka[%s]: %s: %s", name, fac, buf);
    else if (level == LOG_WARNING)
        sm_log_warn("kafka[%s]: %s: %s", name, fac, buf);
    else if (level <= LOG_INFO)
        sm_log_info("kafka[%s]: %s: %s", name, fac, buf);
    else
        sm_dbg(SM_DBG_KAFKA, "kafka[%s]: %s: %s", name, fac, buf);
}

/* Java-style properties: decodes escapes of s[0..n) into out (NUL-terminated). */
static size_t unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\' || i + 1 >= n) {
            out[o++] = c;
            continue;
        }
        c = s[++i];
        switch (c) {
        case 't': out[o++] = '\t'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u': {
            unsigned cp = 0, k;
            for (k = 0; k < 4 && i + 1 < n && isxdigit((unsigned char)s[i + 1]); k++, i++) {
                char h = s[i + 1];
                cp = cp * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
            }
            if (cp < 0x80) {
                out[o++] = (char)cp;
            } else if (cp < 0x800) {
                out[o++] = (char)(0xc0 | (cp >> 6));
                out[o++] = (char)(0x80 | (cp & 0x3f));
            } else {
                out[o++] = (char)(0xe0 | (cp >> 12));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[o++] = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default: out[o++] = c; break;
        }
    }
    out[o] = 0;
    return o;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\f'; }

/* Loads a Java-style properties file into conf. */
static int load_props_file(rd_kafka_conf_t *conf, const char *path, char *err, size_t errlen)
{
    uint8_t *data;
    size_t len;
    int rc = sm_read_file(path, PROPS_FILE_MAX, &data, &len);
    if (rc)
        return sm_errf(err, errlen, rc == SM_ENOMEM ? rc : SM_ECONFIG, "kafka properties file %s: %s",
                       path, sm_strerror(rc));
    char *text = (char *)data;
    /* logical line buffer: never longer than the file */
    char *logical = sm_malloc(len + 1), *key = sm_malloc(len + 1), *val = sm_malloc(len + 1);
    if (!logical || !key || !val) {
        rc = SM_ENOMEM;
        goto out;
    }
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        size_t ll = 0, start_line = lineno + 1;
        bool cont = true;
        bool first = true;
        while (cont && pos < len) {
            size_t e = pos;
            while (e < len && text[e] != '\n' && text[e] != '\r')
                e++;
            lineno++;
            size_t b = pos;
            if (!first)   /* continuation lines drop leading whitespace */
                while (b < e && is_ws(text[b]))
                    b++;
            /* odd number of trailing backslashes: continues */
            size_t bs = 0;
            while (bs < e - b && text[e - 1 - bs] == '\\')
                bs++;
            cont = (bs & 1) != 0;
            size_t take = e - b - (cont ? 1 : 0);
            memcpy(logical + ll, text + b, take);
            ll += take;
            pos = e;
            if (pos < len && text[pos] == '\r') {
                pos++;
                if (pos < len && text[pos] == '\n')
                    pos++;
            } else if (pos < len && text[pos] == '\n') {
                pos++;
            }
            first = false;
            /* a comment line never continues */
            size_t k = 0;
            while (k < ll && is_ws(logical[k]))
                k++;
            if (k < ll && (logical[k] == '#' || logical[k] == '!'))
                cont = false;
        }
        size_t i = 0;
        while (i < ll && is_ws(logical[i]))
            i++;
        if (i == ll || logical[i] == '#' || logical[i] == '!')
            continue;
        size_t ks = i;
        while (i < ll && logical[i] != '=' && logical[i] != ':' && !is_ws(logical[i])) {
            if (logical[i] == '\\')
                i++;
            i++;
        }
        if (i > ll)
            i = ll;
        size_t ke = i;
        while (i < ll && is_ws(logical[i]))
            i++;
        if (i < ll && (logical[i] == '=' || logical[i] == ':')) {
            i++;
            while (i < ll && is_ws(logical[i]))
                i++;
        }
        unescape(logical + ks, ke - ks, key);
        unescape(logical + i, ll - i, val);
        char e2[512] = "";
        rc = sm_kafka_conf_set(conf, key, val, e2, sizeof(e2));
        if (rc) {
            sm_errf(err, errlen, rc, "%s:%zu: %s", path, start_line, e2);
            goto out;
        }
    }
    rc = SM_OK;
out:
    if (rc == SM_ENOMEM)
        sm_errf(err, errlen, rc, "kafka properties file %s: out of memory", path);
    sm_free(logical);
    sm_free(key);
    sm_free(val);
    sm_free(data);
    return rc;
}

/* Applies "k=v" entries. */
static int apply_props(rd_kafka_conf_t *conf, const struct sm_strlist *props, char *err, size_t errlen)
{
    for (size_t i = 0; props && i < props->n; i++) {
        const char *kv = props->v[i];
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv)
            return sm_errf(err, errlen, SM_ECONFIG, "--kafka-property '%s': expected key=value", kv);
        char key[256];
        size_t kl = (size_t)(eq - kv);
        if (kl >= sizeof(key))
            return sm_errf(err, errlen, SM_ECONFIG, "--kafka-property: key too long");
        memcpy(key, kv, kl);
        key[kl] = 0;
        int rc = sm_kafka_conf_set(conf, key, eq + 1, err, errlen);
        if (rc)
            return rc;
    }
    return SM_OK;
}

struct kv { const char *k, *v; };

static rd_kafka_conf_t *conf_build(const struct kv *defaults, size_t ndef, const char *brokers,
                                   const struct sm_strlist *props, const char *props_file,
                                   char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        sm_errf(err, errlen, SM_ENOMEM, "kafka: out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (sm_log_debug_cur & SM_DBG_KAFKA) {
        if (sm_kafka_conf_set(conf, "debug", "broker,topic,msg", err, errlen))
            goto fail;
    }
    for (size_t i = 0; i < ndef; i++)
        if (defaults[i].v && sm_kafka_conf_set(conf, defaults[i].k, defaults[i].v, err, errlen))
            goto fail;
    if (brokers && *brokers && sm_kafka_conf_set(conf, "bootstrap.servers", brokers, err, errlen))
        goto fail;
    if (props_file && *props_file && load_props_file(conf, props_file, err, errlen))
        goto fail;
    if (apply_props(conf, props, err, errlen))
        goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_conf_t *sm_kafka_conf_new(const char *brokers, const struct sm_strlist *props,
                                   const char *props_file, char *err, size_t errlen)
{
    return conf_build(NULL, 0, brokers, props, props_file, err, errlen);
}

rd_kafka_conf_t *sm_kafka_producer_conf_new(const struct sm_kafka_opts *ko, char *err, size_t errlen)
{
    static const struct kv defs[] = {
        { "enable.idempotence", "true" },
        { "acks", "all" },
        { "compression.type", "lz4" },
        { "linger.ms", "5" },
        { "message.max.bytes", "1048588" },
    };
    if (!ko->brokers || !*ko->brokers) {
        /* allowed when the properties carry bootstrap.servers */
        if (!sm_strlist_kv_get(&ko->props, "bootstrap.servers") && !ko->props_file) {
            sm_errf(err, errlen, SM_ECONFIG, "--kafka-brokers is required");
            return NULL;
        }
    }
    return conf_build(defs, SM_ARRAY_LEN(defs), ko->brokers, &ko->props, ko->props_file, err, errlen);
}

rd_kafka_conf_t *sm_kafka_consumer_conf_new(const struct sm_kafka_opts *ko, char *err, size_t errlen)
{
    if (!ko->group_id || !*ko->group_id) {
        if (!sm_strlist_kv_get(&ko->props, "group.id") && !ko->props_file) {
            sm_errf(err, errlen, SM_ECONFIG, "--kafka-group-id is required");
            return NULL;
        }
    }
    if ((!ko->brokers || !*ko->brokers) && !sm_strlist_kv_get(&ko->props, "bootstrap.servers") &&
        !ko->props_file) {
        sm_errf(err, errlen, SM_ECONFIG, "--kafka-brokers is required");
        return NULL;
    }
    const struct kv defs[] = {
        { "group.id", ko->group_id },
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "auto.offset.reset", "earliest" },
    };
    return conf_build(defs, SM_ARRAY_LEN(defs), ko->brokers, &ko->props, ko->props_file, err, errlen);
}

rd_kafka_t *sm_kafka_producer_new(rd_kafka_conf_t *conf, char *err, size_t errlen)
{
    char rderr[512] = "";
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        sm_errf(err, errlen, SM_ECONFIG, "kafka producer: %s", rderr);
    }
    return rk;
}

rd_kafka_t *sm_kafka_consumer_new(rd_kafka_conf_t *conf, const char *topics, char *err, size_t errlen)
{
    char rderr[512] = "";
    if (!topics || !*topics) {
        rd_kafka_conf_destroy(conf);
        sm_errf(err, errlen, SM_ECONFIG, "kafka consumer: no topic");
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        sm_errf(err, errlen, SM_ECONFIG, "kafka consumer: %s", rderr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(4);
    const char *p = topics;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n) {
            char *t = sm_strndup(p, n);
            if (!t) {
                rd_kafka_topic_partition_list_destroy(tl);
                rd_kafka_destroy(rk);
                sm_errf(err, errlen, SM_ENOMEM, "kafka consumer: out of memory");
                return NULL;
            }
            rd_kafka_topic_partition_list_add(tl, t, RD_KAFKA_PARTITION_UA);
            sm_free(t);
        }
        p += n;
        if (*p == ',')
            p++;
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    if (e) {
        rd_kafka_destroy(rk);
        sm_errf(err, errlen, SM_ECONFIG, "kafka consumer: subscribe %s: %s", topics, rd_kafka_err2str(e));
        return NULL;
    }
    return rk;
}

int sm_kafka_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t keylen,
                     const void *value, size_t len, void *msg_opaque, char *err, size_t errlen)
{
    rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                              RD_KAFKA_V_KEY(key, key ? keylen : 0),
                                              RD_KAFKA_V_VALUE((void *)value, len),
                                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                              RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
    if (!e)
        return SM_OK;
    int rc = sm_kafka_err_to_sm(e);
    return sm_errf(err, errlen, rc, "kafka produce to %s: %s", topic, rd_kafka_err2str(e));
}

const char *sm_kafka_err_str(rd_kafka_resp_err_t err)
{
    const char *s = rd_kafka_err2str(err);
    return s ? s : "unknown kafka error";
}

int sm_kafka_err_to_sm(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return SM_OK;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return SM_EFULL;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return SM_ETIMEOUT;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return SM_EAGAIN;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return SM_ECONFIG;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
        return SM_EPROTO;
    default:
        return SM_EIO;
    }
}

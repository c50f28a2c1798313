/* S3 repositories: an rfs_dir over the objects under s3://bucket/prefix.
 *
 * list  ListObjectsV2 (prefix + "/" delimiter, continuation tokens); names
 *       are the keys and common prefixes directly under the directory.
 * open  HEAD for the size, then ranged GETs (Range: bytes=a-b). Each blob keeps
 *       one read-ahead window (default 1 MiB): Lucene's small sequential reads
 *       become few requests, and memory is one window per open blob. Reads
 *       larger than the window go straight to one GET.
 * auth  SigV4 for service s3 (x-amz-content-sha256 signed) through
 *       <sm/http.h>/<sm/sigv4.h>; credentials from AWS_ACCESS_KEY_ID/... or the
 *       shared credentials file (profile), region from opts or AWS_REGION.
 * addressing: with an endpoint (S3-compatible stores, --s3-endpoint URL),
 *       path style: URL/bucket/key; without one, AWS virtual-hosted style:
 *       https://bucket.s3.REGION.amazonaws.com/key.
 * Errors name the object ("s3://b/p/index.latest: no such key (404 NoSuchKey)")
 * and, for 403, the access key id in use (never the secret).
 *
 * Threads: the dir keeps a pool of up to 16 HTTP clients (keep-alive
 * connections) under a mutex, so blobs of one dir may be read from different
 * threads (more than 16 concurrent requests wait for a free client); one blob
 * is used by one thread at a time (as every rfs_blob). */
#ifndef RFS_IO_S3_H
#define RFS_IO_S3_H
#include <stddef.h>
#include <stdint.h>

#include "io/blob.h"

struct rfs_s3_opts {
    const char *endpoint;      /* "http://127.0.0.1:9000" (path style), or NULL for AWS */
    const char *region;        /* NULL: AWS_REGION/AWS_DEFAULT_REGION/profile, else us-east-1 */
    const char *profile;       /* credentials profile, NULL: AWS_PROFILE/default */
    uint64_t readahead;        /* read-ahead window per blob; 0: 1 MiB */
    int64_t max_retries;       /* < 0: the HTTP client default */
    const char *ca_cert;       /* TLS CA bundle for the endpoint, or NULL */
    bool insecure;             /* do not verify TLS */
};

struct rfs_s3_stats {
    uint64_t requests;         /* HEAD + GET + list requests sent */
    uint64_t bytes;            /* object bytes received */
};

/* Opens s3://bucket/prefix (prefix may be "" or end with '/'). Checks the
 * credentials and the bucket with one list request. */
int rfs_dir_open_s3(const char *bucket, const char *prefix, const struct rfs_s3_opts *opts,
                    struct rfs_dir **out, char *err, size_t errlen);

/* "s3://bucket/prefix" -> S3, anything else (a path, or "file://path") ->
 * rfs_dir_open_fs. opts NULL: endpoint from SM_S3_ENDPOINT and region from
 * SM_S3_REGION when set (else AWS and the AWS_* defaults), so commands without
 * S3 flags still reach S3-compatible stores. */
int rfs_dir_open_uri(const char *repo, const struct rfs_s3_opts *opts, struct rfs_dir **out,
                     char *err, size_t errlen);

/* Request counters of an S3 dir (zero for other dirs). */
void rfs_s3_stats(const struct rfs_dir *dir, struct rfs_s3_stats *out);

#endif

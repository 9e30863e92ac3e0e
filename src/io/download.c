/* lm_download: libcurl into a temporary file, MD5 on the fly, then rename. */
#include "io/download.h"
#include "core/core.h"
#include "io/md5.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef LAMINA_HAVE_CURL
#include <curl/curl.h>
#include <pthread.h>
#include "nn/progbar.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_status = CURLE_FAILED_INIT;

static void init_curl(void) {
    curl_init_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct sink {
    FILE *f;
    lm_md5 md5;
    int64_t got;
    bool write_failed;
    int write_errno;
    lm_progbar *bar;
} sink;

static size_t on_data(char *p, size_t size, size_t n, void *user) {
    sink *s = user;
    size_t bytes = size * n;
    if (fwrite(p, 1, bytes, s->f) != bytes) {
        s->write_failed = true;
        s->write_errno = errno;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    lm_md5_update(&s->md5, p, bytes);
    s->got += (int64_t)bytes;
    return bytes;
}

/* Draws the byte counter once the size is known, as Keras's DLProgbar. */
static int on_progress(void *user, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un) {
    (void)ut;
    (void)un;
    sink *s = user;
    if (!s->bar) {
        if (total <= 0) return 0;
        s->bar = lm_progbar_new(stdout, (int64_t)total, 1);
        if (!s->bar) return 0;
    }
    if (now < total) lm_progbar_update(s->bar, (int64_t)now, NULL, false);
    return 0;
}

/* HTTP reason phrase, for messages in the form Keras gives them ("404 -- Not Found"). */
static const char *reason(long code) {
    switch (code) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 410:
        return "Gone";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "HTTP error";
    }
}

/* Runs the transfer into s; returns LM_OK or the failure, with its message. */
static lm_status transfer(lm_ctx *ctx, const char *url, sink *s) {
    pthread_once(&curl_once, init_curl);
    if (curl_init_status != CURLE_OK)
        return lm_fail(ctx, LM_ERR_IO, "URL fetch failure on %s: cannot initialise libcurl (%s)",
                       url, curl_easy_strerror(curl_init_status));
    CURL *c = curl_easy_init();
    if (!c) return lm_fail(ctx, LM_ERR_OOM, "URL fetch failure on %s: out of memory", url);
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L); /* an HTTP error status is a failure */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);    /* safe in threaded programs */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    /* Give up on a stalled transfer rather than hang: under 1 byte/s for 60 s. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "lamina/0.1");
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string forms replace the deprecated bitmasks */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (rc == CURLE_OK) return LM_OK;
    if (s->write_failed)
        return lm_fail(ctx, LM_ERR_IO, "URL fetch failure on %s: cannot write the download: %s",
                       url, strerror(s->write_errno));
    if (rc == CURLE_HTTP_RETURNED_ERROR)
        return lm_fail(ctx, LM_ERR_IO, "URL fetch failure on %s: %ld -- %s", url, code,
                       reason(code));
    return lm_fail(ctx, LM_ERR_IO, "URL fetch failure on %s: %s", url,
                   err[0] ? err : curl_easy_strerror(rc));
}

lm_status lm_download(lm_ctx *ctx, const char *url, const char *dest, const char *md5_hex) {
    if (!url || !dest) return lm_fail(ctx, LM_ERR_ARG, "download: url and dest must not be NULL");
    size_t len = strlen(dest) + sizeof ".part.XXXXXX";
    char *tmp = malloc(len);
    if (!tmp) return lm_fail(ctx, LM_ERR_OOM, "download: out of memory");
    snprintf(tmp, len, "%s.part.XXXXXX", dest);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        lm_status st =
            lm_fail(ctx, LM_ERR_IO, "download: cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    sink s = {.f = fdopen(fd, "wb")};
    if (!s.f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return lm_fail(ctx, LM_ERR_IO, "download: cannot open a temporary file beside %s", dest);
    }
    lm_md5_init(&s.md5);
    printf("Downloading data from %s\n", url);
    fflush(stdout);
    lm_status st = transfer(ctx, url, &s);
    if (s.bar) {
        if (st == LM_OK)
            lm_progbar_update(s.bar, s.got, NULL, true);
        else
            fputc('\n', stdout); /* end the unfinished bar's line */
        lm_progbar_free(s.bar);
    }
    /* Flush to disk before the rename so a crash never leaves a short file under dest. */
    if (fflush(s.f) != 0 || fsync(fileno(s.f)) != 0) {
        if (st == LM_OK)
            st = lm_fail(ctx, LM_ERR_IO, "download: cannot write %s: %s", tmp, strerror(errno));
    }
    if (fclose(s.f) != 0 && st == LM_OK)
        st = lm_fail(ctx, LM_ERR_IO, "download: cannot write %s: %s", tmp, strerror(errno));
    if (st == LM_OK && md5_hex) {
        char got[33];
        lm_md5_final_hex(&s.md5, got);
        if (strcmp(got, md5_hex) != 0)
            st = lm_fail(ctx, LM_ERR_FORMAT,
                         "Incomplete or corrupted file detected. The md5 file hash of %s (%s) "
                         "does not match the provided value of %s; the download was deleted.",
                         url, got, md5_hex);
    }
    if (st == LM_OK && rename(tmp, dest) != 0)
        st = lm_fail(ctx, LM_ERR_IO, "download: cannot rename %s to %s: %s", tmp, dest,
                     strerror(errno));
    if (st != LM_OK) unlink(tmp);
    free(tmp);
    return st;
}

#else /* !LAMINA_HAVE_CURL */

lm_status lm_download(lm_ctx *ctx, const char *url, const char *dest, const char *md5_hex) {
    (void)dest;
    (void)md5_hex;
    return lm_fail(ctx, LM_ERR_UNSUPPORTED,
                   "cannot download %s: Lamina was built without libcurl; install "
                   "libcurl4-openssl-dev and rebuild, or place the file in the cache or in "
                   "$LAMINA_DATA yourself",
                   url ? url : "(null)");
}

#endif

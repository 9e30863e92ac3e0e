/* Tests of the data set loaders and data helpers: MNIST from LAMINA_DATA;
 * the download path against a small HTTP/1.0 server on 127.0.0.1 (a thread
 * of this test serving LAMINA_DATA, no outside network) into temporary cache
 * folders, with a corrupted file, a 404 and a refused connection;
 * to_categorical; lm_rows and lm_take_rows. */
#include "lamina/datasets.h"
#include "io/md5.h"
#include "lmtest.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

static lm_ctx *ctx;
static const char *data_dir;
static bool have_curl = true; /* cleared when a download reports a build without libcurl */

static const char *names[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

/* ---- the HTTP server ---- */

/* Paths served: /mnist/<file> as is, /corrupt/<file> with one byte changed,
 * anything else 404. */
typedef struct server {
    int fd, port;
    pthread_t thread;
    atomic_int stop, requests;
} server;

static void send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) return; /* the client went away */
        c += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, const char *target) {
    char path[512];
    bool corrupt = !strncmp(target, "/corrupt/", 9);
    const char *name = strrchr(target, '/') + 1;
    FILE *f = NULL;
    if ((corrupt || !strncmp(target, "/mnist/", 7)) && *name && !strstr(target, "..")) {
        snprintf(path, sizeof path, "%s/mnist/%s", data_dir, name);
        f = fopen(path, "rb");
    }
    if (!f) {
        const char *msg = "HTTP/1.0 404 Not Found\r\nContent-Length: 9\r\n\r\nNot Found";
        send_all(fd, msg, strlen(msg));
        return;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char head[128];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %ld\r\n\r\n",
                     size);
    send_all(fd, head, (size_t)n);
    static char buf[1 << 16];
    size_t r, at = 0;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) {
        if (corrupt && at == 0 && r > 100) buf[100] ^= 0x5a;
        at += r;
        send_all(fd, buf, r);
    }
    fclose(f);
}

static void *serve(void *arg) {
    server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        char req[4096];
        size_t got = 0;
        while (got < sizeof req - 1) { /* up to the blank line ending the headers */
            ssize_t r = recv(c, req + got, sizeof req - 1 - got, 0);
            if (r <= 0) break;
            got += (size_t)r;
            req[got] = 0;
            if (strstr(req, "\r\n\r\n")) break;
        }
        req[got] = 0;
        char method[8] = "", target[256] = "";
        if (sscanf(req, "%7s %255s", method, target) == 2 && !strcmp(method, "GET")) {
            atomic_fetch_add(&s->requests, 1);
            respond(c, target);
        }
        close(c);
    }
    return NULL;
}

/* Binds 127.0.0.1 on a free port; listen false leaves it closed (refused). */
static int open_port(server *s, bool listen_too) {
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &len) != 0 ||
        (listen_too && listen(s->fd, 8) != 0)) {
        close(s->fd);
        return -1;
    }
    s->port = ntohs(a.sin_port);
    return 0;
}

static int server_start(server *s) {
    atomic_init(&s->stop, 0);
    atomic_init(&s->requests, 0);
    if (open_port(s, true) != 0) return -1;
    if (pthread_create(&s->thread, NULL, serve, s) != 0) {
        close(s->fd);
        return -1;
    }
    return 0;
}

static void server_stop(server *s) {
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* ---- helpers ---- */

static void rm_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Number of entries in a folder (-1 when it does not exist). */
static int count_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static bool exists(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static bool same(const lm_tensor *a, const lm_tensor *b) {
    if (!a || !b || lm_tensor_numel(a) != lm_tensor_numel(b)) return false;
    return !memcmp(lm_tensor_cdata(a), lm_tensor_cdata(b), (size_t)lm_tensor_numel(a));
}

static void free4(lm_tensor *t[4]) {
    for (int i = 0; i < 4; i++) lm_tensor_free(t[i]);
}

static lm_tensor *ref[4]; /* MNIST read from LAMINA_DATA */

/* ---- tests ---- */

static void test_load_local(void) {
    /* Nothing may be downloaded or cached when every file is in LAMINA_DATA. */
    char cache[] = "/tmp/lm_ds_XXXXXX";
    CHECK(mkdtemp(cache) != NULL);
    setenv("XDG_CACHE_HOME", cache, 1);
    setenv("LAMINA_DATASETS_URL", "http://127.0.0.1:9/none/", 1);
    lm_status st = lm_mnist_load_data(ctx, &ref[0], &ref[1], &ref[2], &ref[3]);
    CHECK_MSG(st == LM_OK, "%s", lm_ctx_error(ctx));
    CHECK(count_entries(cache) == 0);
    rm_tree(cache);
    if (st != LM_OK) return;
    int64_t want[4][3] = {{60000, 28, 28}, {60000}, {10000, 28, 28}, {10000}};
    for (int i = 0; i < 4; i++) {
        CHECK(lm_tensor_dtype(ref[i]) == LM_U8);
        CHECK(lm_tensor_ndim(ref[i]) == (i % 2 ? 1 : 3));
        for (int d = 0; d < lm_tensor_ndim(ref[i]); d++)
            CHECK(lm_tensor_dim(ref[i], d) == want[i][d]);
    }
    /* Known values: the first labels are 5, 0, 4 (train) and 7, 2, 1 (test). */
    CHECK(lm_tensor_get(ref[1], 0) == 5 && lm_tensor_get(ref[1], 1) == 0 &&
          lm_tensor_get(ref[1], 2) == 4);
    CHECK(lm_tensor_get(ref[3], 0) == 7 && lm_tensor_get(ref[3], 1) == 2 &&
          lm_tensor_get(ref[3], 2) == 1);
    double sum = 0, maxv = 0;
    for (int64_t i = 0; i < 784; i++) {
        double v = lm_tensor_get(ref[0], i);
        sum += v;
        if (v > maxv) maxv = v;
    }
    CHECK(maxv == 255);
    CHECK(sum == 27525); /* np.sum(x_train[0]) */
}

static void test_download(server *s) {
    if (!ref[0]) return;
    char tmp[] = "/tmp/lm_ds_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    char cache[256], url[128];
    snprintf(cache, sizeof cache, "%s/deep/er/mnist", tmp);          /* created on the way */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/mnist", s->port); /* no final slash */
    lm_tensor *t[4] = {0};
    lm_status st = lm_mnist_load_data_from(ctx, url, cache, &t[0], &t[1], &t[2], &t[3]);
    if (st == LM_ERR_UNSUPPORTED) {
        CHECK_CONTAINS(lm_ctx_error(ctx), "libcurl");
        have_curl = false;
        fprintf(stderr, "  built without libcurl: download tests skipped\n");
        rm_tree(tmp);
        return;
    }
    CHECK_MSG(st == LM_OK, "%s", lm_ctx_error(ctx));
    for (int i = 0; i < 4; i++) CHECK(same(t[i], ref[i]));
    free4(t);
    CHECK(atomic_load(&s->requests) == 4);
    CHECK(count_entries(cache) == 4); /* the four files, no temporary left */
    for (int i = 0; i < 4; i++) CHECK(exists(cache, names[i]));

    /* A second load reads the cache. */
    st = lm_mnist_load_data_from(ctx, url, cache, &t[0], &t[1], &t[2], &t[3]);
    CHECK(st == LM_OK);
    CHECK(atomic_load(&s->requests) == 4);
    free4(t);

    /* A damaged cached file is fetched again, as keras.utils.get_file does. */
    char p[512];
    snprintf(p, sizeof p, "%s/%s", cache, names[3]);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs("garbage", f);
        fclose(f);
    }
    st = lm_mnist_load_data_from(ctx, url, cache, &t[0], &t[1], &t[2], &t[3]);
    CHECK_MSG(st == LM_OK, "%s", lm_ctx_error(ctx));
    CHECK(atomic_load(&s->requests) == 5);
    CHECK(same(t[3], ref[3]));
    free4(t);
    rm_tree(tmp);
}

/* lm_mnist_load_data end to end: LAMINA_DATA without the files, the
 * XDG cache, and the URL from LAMINA_DATASETS_URL. */
static void test_default_paths(server *s) {
    if (!ref[0] || !have_curl) return;
    char tmp[] = "/tmp/lm_ds_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    char url[128], cache[300];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/mnist/", s->port);
    setenv("LAMINA_DATA", tmp, 1); /* holds no mnist/ */
    setenv("XDG_CACHE_HOME", tmp, 1);
    setenv("LAMINA_DATASETS_URL", url, 1);
    int before = atomic_load(&s->requests);
    lm_tensor *t[4] = {0};
    lm_status st = lm_mnist_load_data(ctx, &t[0], &t[1], &t[2], &t[3]);
    CHECK_MSG(st == LM_OK, "%s", lm_ctx_error(ctx));
    CHECK(atomic_load(&s->requests) == before + 4);
    for (int i = 0; i < 4; i++) CHECK(same(t[i], ref[i]));
    free4(t);
    snprintf(cache, sizeof cache, "%s/lamina/datasets/mnist", tmp);
    CHECK(count_entries(cache) == 4);
    setenv("LAMINA_DATA", data_dir, 1);
    rm_tree(tmp);
}

static void test_download_errors(server *s) {
    if (!ref[0] || !have_curl) return;
    char tmp[] = "/tmp/lm_ds_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    char url[128];
    lm_tensor *t[4] = {ref[0], ref[0], ref[0], ref[0]}; /* must come back NULL */

    /* A served file with the wrong checksum is refused and not kept. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/corrupt/", s->port);
    lm_status st = lm_mnist_load_data_from(ctx, url, tmp, &t[0], &t[1], &t[2], &t[3]);
    CHECK(st == LM_ERR_FORMAT);
    CHECK_CONTAINS(lm_ctx_error(ctx), "Incomplete or corrupted file detected");
    CHECK_CONTAINS(lm_ctx_error(ctx), "f68b3c2dcbeaaa9fbdd348bbdeb94873");
    CHECK_CONTAINS(lm_ctx_error(ctx), "/corrupt/train-images-idx3-ubyte.gz");
    for (int i = 0; i < 4; i++) CHECK(t[i] == NULL);
    CHECK(count_entries(tmp) == 0);

    /* 404 */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/missing/", s->port);
    st = lm_mnist_load_data_from(ctx, url, tmp, &t[0], &t[1], &t[2], &t[3]);
    CHECK(st == LM_ERR_IO);
    CHECK_CONTAINS(lm_ctx_error(ctx), "URL fetch failure on http://127.0.0.1:");
    CHECK_CONTAINS(lm_ctx_error(ctx), "404 -- Not Found");
    CHECK(count_entries(tmp) == 0);

    /* Nobody listening. */
    server closed;
    if (open_port(&closed, false) == 0) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/mnist/", closed.port);
        close(closed.fd);
        st = lm_mnist_load_data_from(ctx, url, tmp, &t[0], &t[1], &t[2], &t[3]);
        CHECK(st == LM_ERR_IO);
        CHECK_CONTAINS(lm_ctx_error(ctx), "URL fetch failure");
        CHECK(count_entries(tmp) == 0);
    }

    /* A cache path that is a file, not a folder. */
    char file[300];
    snprintf(file, sizeof file, "%s/plain", tmp);
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    st = lm_mnist_load_data_from(ctx, url, file, &t[0], &t[1], &t[2], &t[3]);
    CHECK(st == LM_ERR_IO);
    CHECK_CONTAINS(lm_ctx_error(ctx), "is not a folder");
    CHECK(lm_mnist_load_data_from(ctx, url, tmp, NULL, &t[1], &t[2], &t[3]) == LM_ERR_ARG);
    rm_tree(tmp);
}

/* RFC 1321's test vectors, fed in uneven pieces across block boundaries. */
static void test_md5(void) {
    static const struct {
        const char *text, *hex;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        for (size_t piece = 1; piece <= 70; piece += 23) {
            lm_md5 m;
            lm_md5_init(&m);
            size_t n = strlen(v[k].text);
            for (size_t at = 0; at < n; at += piece)
                lm_md5_update(&m, v[k].text + at, n - at < piece ? n - at : piece);
            char hex[33];
            lm_md5_final_hex(&m, hex);
            CHECK_MSG(!strcmp(hex, v[k].hex), "md5(\"%s\") = %s", v[k].text, hex);
        }
    }
    lm_md5 m; /* a million 'a's */
    lm_md5_init(&m);
    char a[1000];
    memset(a, 'a', sizeof a);
    for (int i = 0; i < 1000; i++) lm_md5_update(&m, a, sizeof a);
    char hex[33];
    lm_md5_final_hex(&m, hex);
    CHECK(!strcmp(hex, "7707d6ae4e027c70eea2a935c2296f21"));
    CHECK(lm_md5_file(ctx, "/nonexistent/file", hex) == LM_ERR_IO);
    CHECK_CONTAINS(lm_ctx_error(ctx), "cannot open /nonexistent/file");
}

static void test_to_categorical(void) {
    uint8_t lab[4] = {0, 2, 1, 2};
    lm_tensor *y = lm_tensor_from_data(ctx, LM_U8, LM_SHAPE(4), lab, 4);
    lm_tensor *c = lm_to_categorical(y, 0); /* 3 classes from the labels */
    CHECK(c && lm_tensor_dtype(c) == LM_F32 && lm_tensor_ndim(c) == 2 && lm_tensor_dim(c, 0) == 4 &&
          lm_tensor_dim(c, 1) == 3);
    const float want[12] = {1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1};
    for (int i = 0; c && i < 12; i++) CHECK(lm_tensor_get(c, i) == want[i]);
    lm_tensor_free(c);
    c = lm_to_categorical(y, 5);
    CHECK(c && lm_tensor_dim(c, 1) == 5 && lm_tensor_get(c, 5 + 2) == 1);
    lm_tensor_free(c);
    CHECK(lm_to_categorical(y, 2) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "label 2 at index 1 of labels (4,) is outside [0, 2)");
    CHECK(lm_to_categorical(y, -1) == NULL);
    lm_tensor_free(y);

    /* (N, 1) int32 labels give (N, C); a 2-D (2, 2) keeps its shape. */
    int32_t l2[4] = {3, 0, 1, 3};
    y = lm_tensor_from_data(ctx, LM_I32, LM_SHAPE(4, 1), l2, sizeof l2);
    c = lm_to_categorical(y, 0);
    CHECK(c && lm_tensor_ndim(c) == 2 && lm_tensor_dim(c, 0) == 4 && lm_tensor_dim(c, 1) == 4);
    CHECK(c && lm_tensor_get(c, 3) == 1 && lm_tensor_get(c, 4) == 1);
    lm_tensor_free(c);
    lm_tensor_free(y);
    y = lm_tensor_from_data(ctx, LM_I32, LM_SHAPE(2, 2), l2, sizeof l2);
    c = lm_to_categorical(y, 4);
    CHECK(c && lm_tensor_ndim(c) == 3 && lm_tensor_dim(c, 2) == 4);
    lm_tensor_free(c);
    l2[2] = -1;
    lm_tensor_free(y);
    y = lm_tensor_from_data(ctx, LM_I32, LM_SHAPE(4), l2, sizeof l2);
    CHECK(lm_to_categorical(y, 4) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "label -1 at index 2");
    CHECK(lm_to_categorical(y, 0) == NULL);
    lm_tensor_free(y);

    /* Float labels must be whole numbers. */
    float lf[3] = {1, 0, 2.5f};
    y = lm_tensor_from_data(ctx, LM_F32, LM_SHAPE(3), lf, sizeof lf);
    CHECK(lm_to_categorical(y, 3) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "label 2.5 at index 2");
    lf[2] = 2;
    lm_tensor_free(y);
    y = lm_tensor_from_data(ctx, LM_F32, LM_SHAPE(3), lf, sizeof lf);
    c = lm_to_categorical(y, 0);
    CHECK(c && lm_tensor_dim(c, 1) == 3 && lm_tensor_get(c, 1) == 1 && lm_tensor_get(c, 3) == 1);
    lm_tensor_free(c);
    lm_tensor_free(y);

    /* Empty labels: num_classes cannot be inferred, but may be given. */
    y = lm_tensor_new(ctx, LM_I32, LM_SHAPE(0));
    CHECK(lm_to_categorical(y, 0) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "empty");
    c = lm_to_categorical(y, 10);
    CHECK(c && lm_tensor_dim(c, 0) == 0 && lm_tensor_dim(c, 1) == 10);
    lm_tensor_free(c);
    lm_tensor_free(y);

    /* MNIST's labels. */
    if (ref[1]) {
        c = lm_to_categorical(ref[1], 10);
        CHECK(c && lm_tensor_dim(c, 0) == 60000 && lm_tensor_get(c, 5) == 1);
        lm_tensor_free(c);
    }
}

static void test_rows(void) {
    int32_t v[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    lm_tensor *t = lm_tensor_from_data(ctx, LM_I32, LM_SHAPE(5, 2), v, sizeof v);
    /* Batches of 2: the last holds the one row left. */
    int64_t seen = 0;
    for (int64_t start = 0; start < 5; start += 2) {
        lm_tensor *b = lm_rows(t, start, 2);
        CHECK(b && lm_tensor_dim(b, 0) == (start < 4 ? 2 : 1) && lm_tensor_dim(b, 1) == 2);
        CHECK(b && lm_tensor_get(b, 0) == 2 * start);
        seen += b ? lm_tensor_dim(b, 0) : 0;
        lm_tensor_free(b);
    }
    CHECK(seen == 5);
    lm_tensor *b = lm_rows(t, 1, 1); /* a view: writes show in t */
    CHECK(lm_tensor_set(b, 1, 42) == LM_OK);
    CHECK(lm_tensor_get(t, 3) == 42);
    lm_tensor_free(b);
    b = lm_rows(t, 5, 3);
    CHECK(b && lm_tensor_dim(b, 0) == 0);
    lm_tensor_free(b);
    CHECK(lm_rows(t, 6, 1) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "start 6 and count 1 do not fit a tensor of shape (5, 2)");
    CHECK(lm_rows(t, -1, 1) == NULL);
    CHECK(lm_rows(t, 0, -1) == NULL);

    const int64_t idx[3] = {4, 0, 4};
    lm_tensor *g = lm_take_rows(t, idx, 3);
    CHECK(g && lm_tensor_dim(g, 0) == 3 && lm_tensor_dim(g, 1) == 2);
    const double wg[6] = {8, 9, 0, 1, 8, 9};
    for (int i = 0; g && i < 6; i++) CHECK(lm_tensor_get(g, i) == wg[i]);
    lm_tensor_free(g);
    /* From a non-contiguous view: the transpose (2, 5). */
    lm_tensor *tr = lm_tensor_transpose(t, (const int[]){1, 0});
    g = lm_take_rows(tr, (const int64_t[]){1}, 1);
    CHECK(g && lm_tensor_dim(g, 0) == 1 && lm_tensor_dim(g, 1) == 5);
    const double wt[5] = {1, 42, 5, 7, 9};
    for (int i = 0; g && i < 5; i++) CHECK(lm_tensor_get(g, i) == wt[i]);
    lm_tensor_free(g);
    lm_tensor_free(tr);
    g = lm_take_rows(t, idx, 0);
    CHECK(g && lm_tensor_dim(g, 0) == 0);
    lm_tensor_free(g);
    CHECK(lm_take_rows(t, (const int64_t[]){0, 5}, 2) == NULL);
    CHECK_CONTAINS(lm_ctx_error(ctx), "row index 5 (entry 1) is outside [0, 5)");
    CHECK(lm_take_rows(t, NULL, 2) == NULL);
    lm_tensor_free(t);
}

int main(void) {
    ctx = lm_ctx_new();
    if (!ctx) return 1;
    data_dir = lmt_data_dir();
    if (data_dir) {
        server s;
        RUN(test_load_local);
        if (server_start(&s) == 0) {
            /* Each test takes its server as an argument; RUN takes none. */
#define RUN_S(fn)                                                                                  \
    do {                                                                                           \
        int lmt_before_ = lmt_failures;                                                            \
        lmt_tests++;                                                                               \
        fn(&s);                                                                                    \
        fprintf(stderr, "%s %s\n", lmt_failures == lmt_before_ ? "ok  " : "FAIL", #fn);            \
    } while (0)
            RUN_S(test_download);
            RUN_S(test_default_paths);
            RUN_S(test_download_errors);
            server_stop(&s);
        } else {
            CHECK_MSG(0, "cannot start the local HTTP server");
        }
    } else {
        fprintf(stderr, "LAMINA_DATA unset: MNIST tests skipped\n");
    }
    RUN(test_md5);
    RUN(test_to_categorical);
    RUN(test_rows);
    for (int i = 0; i < 4; i++) lm_tensor_free(ref[i]);
    lm_ctx_free(ctx);
    return lmt_summary("test_datasets");
}

/* Messages, exit codes and option parsing for the `lamina` subcommands. */
#include "cli.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void vmessage(const char *cmd, const char *fmt, va_list ap) {
    fprintf(stderr, "lamina%s%s: error: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(cmd, fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'lamina%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
    return CLI_USAGE;
}

bool cli_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static const cli_opt *find_long(const cli_opt *opts, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len)) return &opts[i];
    return NULL;
}

int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, int n_opts,
              const char **pos, int max_pos, int *n_pos, bool *help) {
    *n_pos = 0;
    *help = false;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const cli_opt *o = NULL;
        const char *inline_val = NULL;
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        if (!only_pos && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            *help = true;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            o = find_long(opts, n_opts, a + 2, len);
            if (!o) return cli_usage(cmd, "unknown option '%.*s'", (int)len + 2, a);
            if (eq) inline_val = eq + 1;
        } else if (!only_pos && a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9')) {
            for (int k = 0; k < n_opts && !o; k++)
                if (opts[k].short_name && opts[k].short_name == a[1]) o = &opts[k];
            if (!o) return cli_usage(cmd, "unknown option '%s'", a);
            if (a[2]) inline_val = a + 2;
        } else {
            if (*n_pos == max_pos) return cli_usage(cmd, "unexpected argument '%s'", a);
            pos[(*n_pos)++] = a;
            continue;
        }
        if (o->flag) {
            if (inline_val) return cli_usage(cmd, "option '--%s' takes no value", o->name);
            *o->flag = true;
            continue;
        }
        if (!inline_val) {
            if (i + 1 >= argc) return cli_usage(cmd, "option '--%s' needs a value", o->name);
            inline_val = argv[++i];
        }
        *o->value = inline_val;
    }
    return CLI_OK;
}

int cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno)
        return cli_usage(cmd, "option '--%s': '%s' is not a whole number", opt, s);
    if (v < lo || v > hi)
        return cli_usage(cmd, "option '--%s': %ld is outside [%ld, %ld]", opt, v, lo, hi);
    *out = v;
    return CLI_OK;
}

int cli_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v))
        return cli_usage(cmd, "option '--%s': '%s' is not a number", opt, s);
    if (v < lo || v > hi)
        return cli_usage(cmd, "option '--%s': %g is outside [%g, %g]", opt, v, lo, hi);
    *out = v;
    return CLI_OK;
}

int cli_write_atomic(const char *cmd, const char *path, const void *data, size_t len) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".tmpXXXXXX");
    if (!tmp) return cli_fail(cmd, "cannot write %s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmpXXXXXX", sizeof ".tmpXXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int err = errno;
        free(tmp);
        return cli_fail(cmd, "cannot write %s: %s", path, strerror(err));
    }
    const char *p = data;
    bool ok = fchmod(fd, 0644) == 0;
    for (size_t off = 0; ok && off < len;) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        ok = w > 0;
        if (ok) off += (size_t)w;
    }
    ok = ok && fsync(fd) == 0;
    int err = errno;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) != 0) ok = false, err = errno;
    if (!ok) unlink(tmp);
    free(tmp);
    return ok ? CLI_OK : cli_fail(cmd, "cannot write %s: %s", path, strerror(err));
}

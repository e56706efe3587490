/*
 * fileio.c -- whole-file reads and the temp-file-then-rename writer.
 *
 * Every file the CLI writes (segments from build and merge) goes through
 * cli_outfile: the bytes are written to a hidden temporary file in the
 * same directory (".<name>.tmpN", created exclusively so two runs never
 * share one), flushed and closed, and only then renamed over the final
 * name.  rename() within a directory is atomic on POSIX file systems and
 * under WASI (path_rename), so a reader sees either the old file or the
 * whole new one, and a failure at any step -- a full disk, a bad
 * directory, an error found late -- removes the temporary and leaves no
 * partial output.  Commands also validate all their input before opening
 * the output at all.
 *
 * Natively, SIGINT and SIGTERM remove a temporary in flight before the
 * process dies.  WASI has no signals: a killed wasm process can leave a
 * ".<name>.tmpN" behind (XXX: documented in docs/CLI.md).
 *
 * Under WASI only preopened directories are reachable (wasi/shoal preopens
 * the current one), so an absolute path or one escaping with ".." fails
 * with ENOTCAPABLE; the message says so instead of a bare errno text.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if !defined(__wasi__)
#include <signal.h>
#endif

#include "cli.h"

void cli_error_errno(const char *path, const char *doing, int err) {
#if defined(__wasi__)
    if (err == ENOTCAPABLE || ((path[0] == '/' || !strncmp(path, "..", 2)) && err == ENOENT)) {
        cli_error("%s: cannot %s: %s (under WASI only preopened directories are reachable; "
                  "use a path inside the current directory)",
                  path, doing, strerror(err));
        return;
    }
#endif
    cli_error("%s: cannot %s: %s", path, doing, strerror(err));
}

FILE *cli_open_input(const char *path, struct stat *st) {
    if (stat(path, st) != 0) {
        cli_error_errno(path, "read", errno);
        return NULL;
    }
    if (S_ISDIR(st->st_mode)) {
        cli_error("%s: is a directory, not a file", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) cli_error_errno(path, "open", errno);
    return f;
}

int cli_read_file(const char *path, uint8_t **bytes, size_t *size) {
    struct stat st;
    *bytes = NULL;
    *size = 0;
    FILE *f = cli_open_input(path, &st);
    if (!f) return CLI_DATA;
    size_t cap = st.st_size > 0 && (uint64_t)st.st_size < SIZE_MAX - 1 ? (size_t)st.st_size + 1 : 65536;
    size_t len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        cli_error("%s: out of memory reading %zu bytes", path, cap);
        return CLI_INTERNAL;
    }
    for (;;) {
        if (len == cap) {
            size_t ncap = cap + cap / 2 + 65536;
            uint8_t *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                free(buf);
                fclose(f);
                cli_error("%s: out of memory reading it", path);
                return CLI_INTERNAL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    int err = errno;
    fclose(f);
    if (bad) {
        free(buf);
        cli_error_errno(path, "read", err);
        return CLI_DATA;
    }
    *bytes = buf;
    *size = len;
    return CLI_OK;
}

/* ---------------------------------------------------------- the writer */

#if !defined(__wasi__)
static const char *volatile pending_tmp;

static void on_signal(int sig) {
    const char *tmp = pending_tmp;
    if (tmp) unlink(tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}
#endif

static void track(const char *tmp) {
#if !defined(__wasi__)
    static int installed;
    if (!installed) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        installed = 1;
    }
    pending_tmp = tmp;
#else
    (void)tmp;
#endif
}

int cli_out_open(cli_outfile *o, const char *path) {
    memset(o, 0, sizeof *o);
    size_t n = strlen(path);
    if (n == 0 || path[n - 1] == '/') {
        cli_error("'%s' is not a file name", path);
        return CLI_USAGE;
    }
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    o->path = malloc(n + 1);
    o->tmp = malloc(n + 16);
    if (!o->path || !o->tmp) {
        free(o->path);
        free(o->tmp);
        cli_error("out of memory");
        return CLI_INTERNAL;
    }
    memcpy(o->path, path, n + 1);
    int err = 0;
    for (int i = 0; i < 100 && !o->f; i++) {
        snprintf(o->tmp, n + 16, "%.*s.%s.tmp%d", (int)dir_len, path, path + dir_len, i);
        o->f = fopen(o->tmp, "wbx");
        if (!o->f) {
            err = errno;
            if (err != EEXIST) break;
        }
    }
    if (!o->f) {
        cli_error_errno(path, "create the output file", err);
        free(o->path);
        free(o->tmp);
        memset(o, 0, sizeof *o);
        return CLI_OUTPUT;
    }
    track(o->tmp);
    return CLI_OK;
}

int cli_out_write(cli_outfile *o, const void *bytes, size_t size) {
    if (size && fwrite(bytes, 1, size, o->f) != size) {
        cli_error_errno(o->path, "write", errno);
        cli_out_abort(o);
        return CLI_OUTPUT;
    }
    return CLI_OK;
}

static void release(cli_outfile *o) {
    track(NULL);
    free(o->path);
    free(o->tmp);
    memset(o, 0, sizeof *o);
}

void cli_out_abort(cli_outfile *o) {
    if (!o->tmp) return;
    if (o->f) fclose(o->f);
    remove(o->tmp);
    release(o);
}

int cli_out_commit(cli_outfile *o) {
    int err = 0;
    if (fflush(o->f) != 0 || ferror(o->f)) err = errno ? errno : EIO;
    if (!err && fsync(fileno(o->f)) != 0 && errno != EINVAL && errno != ENOTSUP) err = errno;
    if (fclose(o->f) != 0 && !err) err = errno ? errno : EIO;
    o->f = NULL;
    if (!err && rename(o->tmp, o->path) != 0) err = errno;
    if (err) {
        cli_error_errno(o->path, "write", err);
        remove(o->tmp);
        release(o);
        return CLI_OUTPUT;
    }
    release(o);
    return CLI_OK;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

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
 * Natively, SIGINT, SIGTERM and SIGHUP remove a temporary in flight (and
 * a collection's DIR/lock that this process holds) before the process
 * dies of the signal; a signal that was ignored when the CLI started
 * (nohup, a background job of a script) stays ignored.  The handler only
 * calls unlink() and re-raises, both async-signal-safe, and the names it
 * reads are set and cleared with those signals blocked, so the file's
 * existence and its being tracked change together: no instant exists in
 * which a temporary is on disk but unknown to the handler, or in which the
 * handler could remove a name this process no longer owns.  SIGXFSZ is
 * ignored while a temporary or the lock exists: past a file-size limit
 * (ulimit -f) write() then fails with EFBIG, which is reported and cleaned
 * up like any write error, instead of the default action killing the
 * process and leaving the partial temporary behind (it did, before).
 * tests/cli/partial.test.mjs checks all of these.  WASI has no signals: a killed wasm process can
 * leave a ".<name>.tmpN" behind (XXX: documented in docs/CLI.md).
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
typedef sigset_t cli_sigmask;

/* What the handler removes: the temporary in flight and the lock held.
 * Written only with the handled signals blocked (guard / unguard). */
static const char *volatile pending_tmp;
static const char *volatile pending_lock;
static const int HANDLED[] = {SIGINT, SIGTERM, SIGHUP};
#define HANDLED_COUNT (sizeof HANDLED / sizeof HANDLED[0])
static struct sigaction xfsz_before;
static int xfsz_ignored;

static void on_signal(int sig) {
    const char *tmp = pending_tmp, *lock = pending_lock;
    pending_tmp = pending_lock = NULL;
    if (tmp) unlink(tmp);
    if (lock) unlink(lock);
    signal(sig, SIG_DFL);
    raise(sig); /* blocked until the handler returns, then the default: death */
}

static void install_handlers(void) {
    static int installed;
    if (installed) return;
    installed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < HANDLED_COUNT; i++) sigaddset(&sa.sa_mask, HANDLED[i]);
    for (size_t i = 0; i < HANDLED_COUNT; i++) {
        struct sigaction before;
        if (sigaction(HANDLED[i], NULL, &before) == 0 && before.sa_handler == SIG_IGN) continue;
        sigaction(HANDLED[i], &sa, NULL);
    }
}

/* Blocks the handled signals; unguard restores the mask. */
static void guard(cli_sigmask *saved) {
    install_handlers();
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < HANDLED_COUNT; i++) sigaddset(&set, HANDLED[i]);
    sigprocmask(SIG_BLOCK, &set, saved);
}

static void unguard(const cli_sigmask *saved) { sigprocmask(SIG_SETMASK, saved, NULL); }

/* Called guarded, after pending_tmp or pending_lock changed: SIGXFSZ is
 * ignored while either names a file of ours. */
static void xfsz_update(void) {
    int want = pending_tmp || pending_lock;
    if (want && !xfsz_ignored) {
        struct sigaction ign;
        memset(&ign, 0, sizeof ign);
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        xfsz_ignored = sigaction(SIGXFSZ, &ign, &xfsz_before) == 0;
    } else if (!want && xfsz_ignored) {
        sigaction(SIGXFSZ, &xfsz_before, NULL);
        xfsz_ignored = 0;
    }
}

/* Called guarded: tmp is now on disk (or, NULL, no longer ours). */
static void track(const char *tmp) {
    pending_tmp = tmp;
    xfsz_update();
}

#else
typedef int cli_sigmask;
static void guard(cli_sigmask *saved) { *saved = 0; }
static void unguard(const cli_sigmask *saved) { (void)saved; }
static void track(const char *tmp) { (void)tmp; }
#endif

FILE *cli_lock_create(const char *path) {
    size_t n = strlen(path) + 1;
    char *copy = malloc(n);
    if (!copy) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(copy, path, n);
    cli_sigmask saved;
    guard(&saved);
    FILE *f = fopen(path, "wx");
#if !defined(__wasi__)
    if (f) {
        pending_lock = copy;
        copy = NULL;
        xfsz_update();
    }
#endif
    unguard(&saved);
    int err = errno;
    free(copy);
    errno = err;
    return f;
}

void cli_lock_remove(const char *path) {
    cli_sigmask saved;
    guard(&saved);
    remove(path);
#if !defined(__wasi__)
    char *held = (char *)pending_lock;
    pending_lock = NULL;
    xfsz_update();
#else
    char *held = NULL;
#endif
    unguard(&saved);
    free(held);
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
    cli_sigmask saved;
    guard(&saved); /* the file exists exactly when it is tracked */
    for (int i = 0; i < 100 && !o->f; i++) {
        snprintf(o->tmp, n + 16, "%.*s.%s.tmp%d", (int)dir_len, path, path + dir_len, i);
        o->f = fopen(o->tmp, "wbx");
        if (!o->f) {
            err = errno;
            if (err != EEXIST) break;
        }
    }
    if (o->f) track(o->tmp);
    unguard(&saved);
    if (!o->f) {
        cli_error_errno(path, "create the output file", err);
        free(o->path);
        free(o->tmp);
        memset(o, 0, sizeof *o);
        return CLI_OUTPUT;
    }
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
    free(o->path);
    free(o->tmp);
    memset(o, 0, sizeof *o);
}

void cli_out_abort(cli_outfile *o) {
    if (!o->tmp) return;
    if (o->f) fclose(o->f);
    cli_sigmask saved;
    guard(&saved);
    remove(o->tmp);
    track(NULL);
    unguard(&saved);
    release(o);
}

int cli_out_commit(cli_outfile *o) {
    int err = 0;
    if (fflush(o->f) != 0 || ferror(o->f)) err = errno ? errno : EIO;
    if (!err && fsync(fileno(o->f)) != 0 && errno != EINVAL && errno != ENOTSUP) err = errno;
    if (fclose(o->f) != 0 && !err) err = errno ? errno : EIO;
    o->f = NULL;
    cli_sigmask saved;
    guard(&saved); /* renamed or removed: either way no longer ours */
    if (!err && rename(o->tmp, o->path) != 0) err = errno;
    if (err) remove(o->tmp);
    track(NULL);
    unguard(&saved);
    if (err) cli_error_errno(o->path, "write", err);
    release(o);
    return err ? CLI_OUTPUT : CLI_OK;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * collection.c -- a collection kept in a folder, and `shoal compact`.
 *
 * The layout (docs/CLI.md, "Collections"):
 *
 *   DIR/root          the CID of the current manifest as text, and "\n"
 *   DIR/blocks/<cid>  every block of the DAG, raw bytes, named by its CID
 *   DIR/log           optional: a write-ahead log -- log records as
 *                     shoal_collection_log_* encode them, appended by a
 *                     writer (the JS file store); applied when opened
 *
 * The core does no I/O: it says which blocks it wants (shoal_collection_
 * wants) and verifies each one it is given against its CID; this file
 * reads and writes the files.  Writing a version follows the order that
 * keeps the folder valid at every instant: every block the new root needs
 * is written first (each under a temporary name, flushed and renamed, so a
 * block file is whole or absent), then DIR/root is replaced the same way,
 * then -- for commands that folded the log into the version -- DIR/log is
 * emptied.  A crash between two steps leaves the old root and some unused
 * blocks, or the new root and a log whose records the root already holds
 * (replay skips them by sequence number).  Block files are content-
 * addressed, so an existing file is never rewritten.
 *
 * Reading trusts nothing: every block is hashed against its name before
 * the core sees it, and a missing or damaged block is exit code 2 with a
 * message naming the file.
 *
 * Writers take DIR/lock, as the JS file store does (js/src/file-store.mjs):
 * a file created exclusively holding the writer's process id, removed when
 * it is done; a lock whose process is gone is taken over.  Readers take no
 * lock.  XXX: WASI has no process ids and no way to probe one, so under
 * WASI the lock holds 0 (which other writers treat as stale) and any lock
 * already there is refused with a message saying how to clear it.
 *
 * Directories are fsync'ed after the renames into them (blocks/, then DIR
 * after the root), best effort: some file systems and WASI runtimes refuse
 * to sync a directory, which is ignored; a real I/O error is not.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if !defined(__wasi__)
#include <signal.h>
#endif

#include "cli.h"

/* ----------------------------------------------------------------- paths */

char *cli_path_join(const char *dir, const char *name) {
    size_t d = strlen(dir), n = strlen(name);
    while (d > 1 && dir[d - 1] == '/') d--;
    char *p = malloc(d + 1 + n + 1);
    if (!p) {
        cli_error("out of memory");
        return NULL;
    }
    memcpy(p, dir, d);
    p[d] = '/';
    memcpy(p + d + 1, name, n + 1);
    return p;
}

/* DIR/blocks/<cid> */
static char *block_path(const char *dir, const uint8_t cid[SHOAL_CID_BYTES]) {
    char name[7 + SHOAL_CID_SIZE] = "blocks/";
    if (shoal_cid_format(cid, name + 7) < 0) snprintf(name + 7, SHOAL_CID_SIZE, "(bad cid)");
    return cli_path_join(dir, name);
}

int cli_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cli_is_collection(const char *path) {
    if (!cli_is_dir(path)) return 0;
    char *root = cli_path_join(path, "root");
    struct stat st;
    int yes = root && stat(root, &st) == 0;
    free(root);
    return yes;
}

static int64_t now_ms(void) { return (int64_t)time(NULL) * 1000; }

int cli_collection_failure(const char *source, shoal_collection *c, int rc, const char *doing) {
    const char *detail = c ? shoal_collection_errmsg(c) : "";
    cli_error("%s: %s failed: %s%s%s (%s)", source, doing, shoal_strerror(rc),
              *detail ? ": " : "", detail, shoal_error_name(rc));
    return cli_exit_of(rc);
}

/* ------------------------------------------------------------ reading */

int cli_read_root(const char *dir, uint8_t root[SHOAL_CID_BYTES], int *exists) {
    char *path = cli_path_join(dir, "root");
    if (!path) return CLI_INTERNAL;
    struct stat st;
    if (exists) *exists = stat(path, &st) == 0;
    if (exists && !*exists) {
        free(path);
        return CLI_DATA;
    }
    uint8_t *bytes;
    size_t size;
    int rc = cli_read_file(path, &bytes, &size);
    if (rc) {
        free(path);
        return rc;
    }
    /* "<cid>\n"; trailing white space of any kind is forgiven. */
    while (size && (bytes[size - 1] == '\n' || bytes[size - 1] == '\r' || bytes[size - 1] == ' ' ||
                    bytes[size - 1] == '\t'))
        size--;
    if (shoal_cid_parse((const char *)bytes, size, root) < 0) {
        cli_error("%s: not a CID (it should hold the manifest's CID, \"bafyrei...\", and a "
                  "newline)", path);
        rc = CLI_DATA;
    } else if (root[1] != SHOAL_CODEC_DAG_CBOR) {
        cli_error("%s: %.*s is a raw CID; a collection's root is a DAG-CBOR manifest "
                  "(\"bafyrei...\")", path, (int)size, (const char *)bytes);
        rc = CLI_DATA;
    }
    free(bytes);
    free(path);
    return rc;
}

int cli_read_block(const char *dir, const uint8_t cid[SHOAL_CID_BYTES], const char *why,
                   uint8_t **bytes, size_t *size) {
    *bytes = NULL;
    *size = 0;
    char *path = block_path(dir, cid);
    if (!path) return CLI_INTERNAL;
    struct stat st;
    int rc = CLI_OK;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) cli_error("%s: missing (%s)", path, why);
        else cli_error_errno(path, "read", errno);
        rc = CLI_DATA;
    } else if (S_ISDIR(st.st_mode)) {
        cli_error("%s: is a directory, not a block (%s)", path, why);
        rc = CLI_DATA;
    } else if ((uint64_t)st.st_size > SHOAL_BLOCK_MAX) {
        cli_error("%s: %llu bytes; blocks are at most %u (%s)", path,
                  (unsigned long long)st.st_size, SHOAL_BLOCK_MAX, why);
        rc = CLI_DATA;
    } else if (!(rc = cli_read_file(path, bytes, size))) {
        if (*size > SHOAL_BLOCK_MAX) {
            cli_error("%s: %zu bytes; blocks are at most %u (%s)", path, *size, SHOAL_BLOCK_MAX, why);
            rc = CLI_DATA;
        } else if (!shoal_cid_verify(cid, *bytes, *size)) {
            cli_error("%s: damaged: its bytes do not hash to its name (%s)", path, why);
            rc = CLI_DATA;
        }
        if (rc) {
            free(*bytes);
            *bytes = NULL;
        }
    }
    free(path);
    return rc;
}

#define WANT_CAP 1024

int cli_collection_open(const char *dir, const uint8_t *root, int apply_log, shoal_simd simd,
                        int quiet, cli_collection *cc) {
    memset(cc, 0, sizeof *cc);
    cc->dir = dir;
    int rc;
    if (root) {
        memcpy(cc->root, root, SHOAL_CID_BYTES);
    } else {
        int exists;
        if ((rc = cli_read_root(dir, cc->root, &exists))) {
            if (!exists)
                cli_error("%s: not a collection: there is no %s/root", dir, dir);
            return rc;
        }
    }
    shoal_cid_format(cc->root, cc->root_text);
    if ((rc = cli_read_block(dir, cc->root, "the manifest, named by the root", &cc->manifest,
                             &cc->manifest_size)))
        return rc;
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    lp.simd = simd;
    char msg[256] = "";
    lp.errmsg = msg;
    lp.errmsg_size = sizeof msg;
    int code = shoal_collection_open(cc->manifest, cc->manifest_size, &lp, &cc->c);
    if (code < 0) {
        char *path = block_path(dir, cc->root);
        cli_error("%s: not a valid manifest: %s%s%s (%s)", path ? path : dir, shoal_strerror(code),
                  *msg ? ": " : "", msg, shoal_error_name(code));
        free(path);
        cli_collection_close(cc);
        return cli_exit_of(code);
    }
    cc->blocks_read = 1;
    cc->bytes_read = cc->manifest_size;
    /* Every block the collection wants, until it wants none. */
    uint8_t (*cids)[SHOAL_CID_BYTES] = malloc(WANT_CAP * sizeof *cids);
    if (!cids) {
        cli_error("out of memory");
        cli_collection_close(cc);
        return CLI_INTERNAL;
    }
    rc = CLI_OK;
    for (;;) {
        int n = shoal_collection_wants(cc->c, SHOAL_WANT_ALL, NULL, 0, 0, NULL, cids, WANT_CAP);
        if (n < 0) {
            rc = cli_collection_failure(dir, cc->c, n, "opening the collection");
            break;
        }
        if (n == 0) break;
        for (int i = 0; i < n && i < WANT_CAP && !rc; i++) {
            uint8_t *bytes;
            size_t size;
            if ((rc = cli_read_block(dir, cids[i], "a block the manifest needs", &bytes, &size))) break;
            int given = shoal_collection_give(cc->c, bytes, size);
            free(bytes);
            if (given != 1) {
                char *path = block_path(dir, cids[i]);
                const char *detail = shoal_collection_errmsg(cc->c);
                if (given == 0)
                    cli_error("%s: not a block the collection can use (it asked for it)",
                              path ? path : dir);
                else /* (out of memory is no damage: say which it is) */
                    cli_error("%s: %s: %s%s%s (%s)", path ? path : dir,
                              given == SHOAL_ENOMEM ? "cannot open it" : "damaged",
                              shoal_strerror(given), *detail ? ": " : "", detail,
                              shoal_error_name(given));
                free(path);
                rc = given == SHOAL_ENOMEM ? CLI_INTERNAL : CLI_DATA;
                break;
            }
            cc->blocks_read++;
            cc->bytes_read += size;
        }
        if (rc) break;
    }
    free(cids);
    if (rc) {
        cli_collection_close(cc);
        return rc;
    }
    /* The log: writes made after the root was committed. */
    char *log = cli_path_join(dir, "log");
    struct stat st;
    if (!log) rc = CLI_INTERNAL;
    else if (stat(log, &st) == 0) {
        cc->has_log = 1;
        uint8_t *bytes;
        size_t size;
        if (!(rc = cli_read_file(log, &bytes, &size))) {
            cc->log_size = size;
            if (apply_log && size) {
                int a = shoal_collection_apply(cc->c, bytes, size, &cc->log);
                if (a < 0) {
                    const char *detail = shoal_collection_errmsg(cc->c);
                    cli_error("%s: %s: %s%s%s (%s)", log,
                              a == SHOAL_ENOMEM ? "cannot apply it" : "damaged", shoal_strerror(a),
                              *detail ? ": " : "", detail, shoal_error_name(a));
                    rc = cli_exit_of(a);
                } else if (cc->log.torn) {
                    cli_note(quiet, "%s: the last record is torn (an append cut short); the %llu "
                                    "bytes after byte %llu are ignored",
                             log, (unsigned long long)(size - cc->log.valid_size),
                             (unsigned long long)cc->log.valid_size);
                }
            }
            free(bytes);
        }
    }
    free(log);
    if (rc) cli_collection_close(cc);
    return rc;
}

void cli_collection_close(cli_collection *cc) {
    shoal_collection_free(cc->c);
    free(cc->manifest);
    cc->c = NULL;
    cc->manifest = NULL;
}

/* ------------------------------------------------------------ writing */

static long own_pid(void) {
#if defined(__wasi__)
    return 0; /* WASI has no process ids */
#else
    return (long)getpid();
#endif
}

int cli_lock_take(const char *dir) {
    char *path = cli_path_join(dir, "lock");
    if (!path) return CLI_INTERNAL;
    for (int attempt = 0; attempt < 2; attempt++) {
        FILE *f = cli_lock_create(path);
        if (f) {
            int bad = fprintf(f, "%ld\n", own_pid()) < 0;
            if (fclose(f) != 0 || bad) {
                cli_error_errno(path, "write the lock", errno);
                cli_lock_remove(path);
                free(path);
                return CLI_OUTPUT;
            }
            free(path);
            return CLI_OK;
        }
        if (errno != EEXIST) {
            cli_error_errno(path, "take the lock", errno);
            free(path);
            return CLI_OUTPUT;
        }
        char text[32] = "";
        FILE *held = fopen(path, "rb");
        if (held) {
            size_t n = fread(text, 1, sizeof text - 1, held);
            text[n] = '\0';
            fclose(held);
        }
        long pid = strtol(text, NULL, 10);
#if defined(__wasi__)
        cli_error("%s is being written by process %ld (%s exists); if no process is writing "
                  "it any more, remove %s",
                  dir, pid, path, path);
        free(path);
        return CLI_OUTPUT;
#else
        if (pid > 0 && pid != own_pid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
            cli_error("%s is being written by process %ld (%s); try again when it is done", dir,
                      pid, path);
            free(path);
            return CLI_OUTPUT;
        }
        remove(path); /* its process is gone: take it over */
#endif
    }
    cli_error("%s: cannot take the lock", path);
    free(path);
    return CLI_OUTPUT;
}

void cli_lock_release(const char *dir) {
    char *path = cli_path_join(dir, "lock");
    if (path) cli_lock_remove(path);
    free(path);
}

/* fsync of a directory after renames into it: best effort (see above). */
static int sync_dir(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return CLI_OK;
    int rc = CLI_OK;
    if (fsync(fd) != 0 && (errno == EIO || errno == ENOSPC)) {
        cli_error_errno(path, "sync the directory", errno);
        rc = CLI_OUTPUT;
    }
    close(fd);
    return rc;
}

int cli_sync_blocks(const char *dir) {
    char *blocks = cli_path_join(dir, "blocks");
    if (!blocks) return CLI_INTERNAL;
    int rc = sync_dir(blocks);
    free(blocks);
    return rc;
}

static int make_dir(const char *path) {
    if (mkdir(path, 0777) == 0) return CLI_OK;
    int err = errno;
    if (err == EEXIST && cli_is_dir(path)) return CLI_OK;
    if (err == EEXIST) cli_error("%s: exists and is not a directory", path);
    else cli_error_errno(path, "create the directory", err);
    return CLI_OUTPUT;
}

int cli_collection_mkdirs(const char *dir) {
    int rc = make_dir(dir);
    if (rc) return rc;
    char *blocks = cli_path_join(dir, "blocks");
    if (!blocks) return CLI_INTERNAL;
    rc = make_dir(blocks);
    free(blocks);
    return rc;
}

int cli_write_block(const char *dir, const uint8_t cid[SHOAL_CID_BYTES], const uint8_t *bytes,
                    size_t size, int *written) {
    if (written) *written = 0;
    char *path = block_path(dir, cid);
    if (!path) return CLI_INTERNAL;
    struct stat st;
    int rc = CLI_OK;
    if (stat(path, &st) != 0) { /* content-addressed: present means written */
        cli_outfile o;
        if ((rc = cli_out_open(&o, path)) == CLI_OK && (rc = cli_out_write(&o, bytes, size)) == CLI_OK)
            rc = cli_out_commit(&o);
        if (!rc && written) *written = 1;
    }
    free(path);
    return rc;
}

int cli_write_root(const char *dir, const uint8_t root[SHOAL_CID_BYTES]) {
    char text[SHOAL_CID_SIZE + 1];
    int n = shoal_cid_format(root, text);
    if (n < 0) {
        cli_error("%s: internal error: the root is not a CID", dir);
        return CLI_INTERNAL;
    }
    text[n++] = '\n';
    char *path = cli_path_join(dir, "root");
    if (!path) return CLI_INTERNAL;
    cli_outfile o;
    int rc;
    if ((rc = cli_out_open(&o, path)) == CLI_OK && (rc = cli_out_write(&o, text, (size_t)n)) == CLI_OK)
        rc = cli_out_commit(&o);
    free(path);
    return rc ? rc : sync_dir(dir);
}

int cli_truncate_log(const char *dir) {
    char *path = cli_path_join(dir, "log");
    if (!path) return CLI_INTERNAL;
    struct stat st;
    int rc = CLI_OK;
    if (stat(path, &st) == 0 && st.st_size > 0) {
        /* O_TRUNC, in every libc; synced, though a log that survives a
         * crash holds only records the root has, which replay skips. */
        FILE *f = fopen(path, "wb");
        int err = f ? 0 : errno;
        if (f && fsync(fileno(f)) != 0 && errno != EINVAL && errno != ENOTSUP) err = errno;
        if (f && fclose(f) != 0 && !err) err = errno;
        if (err) {
            cli_error_errno(path, "empty the log", err);
            rc = CLI_OUTPUT;
        }
    }
    free(path);
    return rc;
}

int cli_collection_save(const char *dir, shoal_collection *c, int drop_history, cli_saved *out) {
    memset(out, 0, sizeof *out);
    int n = shoal_collection_commit(c, drop_history, out->root);
    if (n < 0) return cli_collection_failure(dir, c, n, "committing the collection");
    shoal_cid_format(out->root, out->root_text);
    int rc = cli_collection_mkdirs(dir);
    if (rc) return rc;
    shoal_block_ref ref;
    for (uint32_t i = 0; shoal_collection_block(c, i, &ref) == SHOAL_OK; i++) {
        out->blocks++;
        out->bytes += ref.size;
        if (!ref.bytes) {
            /* Not held in memory (a lazily opened segment): it must be in
             * the folder already. */
            uint8_t *b;
            size_t s;
            if ((rc = cli_read_block(dir, ref.cid, "a block of the new version", &b, &s))) return rc;
            free(b);
            continue;
        }
        int written;
        if ((rc = cli_write_block(dir, ref.cid, ref.bytes, ref.size, &written))) return rc;
        out->written += (uint32_t)written;
    }
    if (out->written && (rc = cli_sync_blocks(dir))) return rc;
    return cli_write_root(dir, out->root);
}

/* ----------------------------------------------------------- DAG walks */

/* A set of CIDs (open addressing on the digest). */
typedef struct cid_set {
    uint8_t (*slots)[SHOAL_CID_BYTES];
    uint8_t *used;
    size_t cap, n;
} cid_set;

static size_t cid_hash(const uint8_t *cid) {
    size_t h;
    memcpy(&h, cid + 4, sizeof h);
    return h ^ cid[1];
}

/* 1 if added, 0 if present, -1 out of memory. */
static int cid_set_add(cid_set *s, const uint8_t *cid) {
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        uint8_t (*slots)[SHOAL_CID_BYTES] = malloc(cap * sizeof *slots);
        uint8_t *used = calloc(cap, 1);
        if (!slots || !used) {
            free(slots);
            free(used);
            return -1;
        }
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->used[i]) continue;
            size_t h = cid_hash(s->slots[i]) & (cap - 1);
            while (used[h]) h = (h + 1) & (cap - 1);
            memcpy(slots[h], s->slots[i], SHOAL_CID_BYTES);
            used[h] = 1;
        }
        free(s->slots);
        free(s->used);
        s->slots = slots;
        s->used = used;
        s->cap = cap;
    }
    size_t h = cid_hash(cid) & (s->cap - 1);
    for (; s->used[h]; h = (h + 1) & (s->cap - 1))
        if (!memcmp(s->slots[h], cid, SHOAL_CID_BYTES)) return 0;
    memcpy(s->slots[h], cid, SHOAL_CID_BYTES);
    s->used[h] = 1;
    s->n++;
    return 1;
}

static void cid_set_free(cid_set *s) {
    free(s->slots);
    free(s->used);
}

/* The links of a DAG-CBOR block, malloc'd (*links NULL when there are
 * none).  Returns the count, or -1 after a message. */
static int block_links(const char *dir, const uint8_t cid[SHOAL_CID_BYTES], const uint8_t *bytes,
                       size_t size, uint8_t (**links)[SHOAL_CID_BYTES]) {
    *links = NULL;
    int n = shoal_dag_links(bytes, size, NULL, 0);
    if (n < 0) {
        char *path = block_path(dir, cid);
        cli_error("%s: not a valid DAG-CBOR block: %s (%s)", path ? path : dir, shoal_strerror(n),
                  shoal_error_name(n));
        free(path);
        return -1;
    }
    if (n == 0) return 0;
    *links = malloc((size_t)n * sizeof **links);
    if (!*links) {
        cli_error("out of memory");
        return -1;
    }
    shoal_dag_links(bytes, size, *links, (uint32_t)n);
    return n;
}

/* A raw block not read: present, and no larger than a block can be. */
static int block_present(const char *dir, const uint8_t cid[SHOAL_CID_BYTES], size_t *size) {
    char *path = block_path(dir, cid);
    if (!path) return CLI_INTERNAL;
    struct stat st;
    int rc = CLI_OK;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) cli_error("%s: missing (reachable from the root)", path);
        else cli_error_errno(path, "read", errno);
        rc = CLI_DATA;
    } else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > SHOAL_BLOCK_MAX) {
        cli_error("%s: not a block file of at most %u bytes", path, SHOAL_BLOCK_MAX);
        rc = CLI_DATA;
    } else {
        *size = (size_t)st.st_size;
    }
    free(path);
    return rc;
}

int cli_dag_walk(const char *dir, const uint8_t root[SHOAL_CID_BYTES], int read_raw,
                 cli_block_fn fn, void *ctx) {
    cid_set seen = {NULL, NULL, 0, 0};
    uint8_t (*stack)[SHOAL_CID_BYTES] = NULL;
    size_t depth = 0, cap = 0;
    int rc = CLI_OK;
    /* Pre-order with an explicit stack: children pushed in reverse, a block
     * counted when popped -- the order a recursive walk visits them in. */
    stack = malloc(64 * sizeof *stack);
    if (!stack) {
        cli_error("out of memory");
        return CLI_INTERNAL;
    }
    cap = 64;
    memcpy(stack[depth++], root, SHOAL_CID_BYTES);
    while (depth && !rc) {
        uint8_t cid[SHOAL_CID_BYTES];
        memcpy(cid, stack[--depth], SHOAL_CID_BYTES);
        int added = cid_set_add(&seen, cid);
        if (added < 0) {
            cli_error("out of memory");
            rc = CLI_INTERNAL;
            break;
        }
        if (!added) continue;
        int dag = cid[1] == SHOAL_CODEC_DAG_CBOR;
        uint8_t *bytes = NULL;
        size_t size = 0;
        if (dag || read_raw) {
            if ((rc = cli_read_block(dir, cid, "reachable from the root", &bytes, &size))) break;
        } else if ((rc = block_present(dir, cid, &size))) {
            break;
        }
        uint8_t (*links)[SHOAL_CID_BYTES] = NULL;
        int n = dag ? block_links(dir, cid, bytes, size, &links) : 0;
        if (n < 0) rc = CLI_DATA;
        if (!rc && fn) rc = fn(ctx, cid, bytes, size);
        if (!rc && depth + (size_t)n > cap) {
            size_t ncap = cap;
            while (ncap < depth + (size_t)n) ncap *= 2;
            uint8_t (*ns)[SHOAL_CID_BYTES] = realloc(stack, ncap * sizeof *ns);
            if (!ns) {
                cli_error("out of memory");
                rc = CLI_INTERNAL;
            } else {
                stack = ns;
                cap = ncap;
            }
        }
        for (int i = n - 1; !rc && i >= 0; i--) memcpy(stack[depth++], links[i], SHOAL_CID_BYTES);
        free(links);
        free(bytes);
    }
    free(stack);
    cid_set_free(&seen);
    return rc;
}

/* Appends the raw blocks under cid (a node: its links in order) to *buf. */
static int gather(const char *dir, const uint8_t cid[SHOAL_CID_BYTES], int depth, uint8_t **buf,
                  size_t *len, size_t *cap) {
    uint8_t *bytes;
    size_t size;
    int rc = cli_read_block(dir, cid, "a block of a segment", &bytes, &size);
    if (rc) return rc;
    if (cid[1] == SHOAL_CODEC_RAW) {
        if (*len + size > *cap) {
            size_t ncap = *cap ? *cap : 1 << 20;
            while (ncap < *len + size) ncap *= 2;
            uint8_t *nb = realloc(*buf, ncap);
            if (!nb) {
                free(bytes);
                cli_error("out of memory for a segment of more than %zu bytes", *len);
                return CLI_INTERNAL;
            }
            *buf = nb;
            *cap = ncap;
        }
        memcpy(*buf + *len, bytes, size);
        *len += size;
        free(bytes);
        return CLI_OK;
    }
    /* A segment node links its blocks in order, or its part nodes, which
     * link blocks: two levels at most. */
    uint8_t (*links)[SHOAL_CID_BYTES];
    int n = depth < 2 ? block_links(dir, cid, bytes, size, &links) : -1;
    free(bytes);
    if (n < 0) {
        if (depth >= 2) cli_error("%s: segment nodes nest deeper than part nodes", dir);
        return CLI_DATA;
    }
    for (int i = 0; i < n && !rc; i++) rc = gather(dir, links[i], depth + 1, buf, len, cap);
    free(links);
    return rc;
}

int cli_segment_bytes(const char *dir, const uint8_t link[SHOAL_CID_BYTES], uint8_t **bytes,
                      size_t *size) {
    size_t cap = 0;
    *bytes = NULL;
    *size = 0;
    int rc = gather(dir, link, 0, bytes, size, &cap);
    if (rc) {
        free(*bytes);
        *bytes = NULL;
        *size = 0;
    }
    return rc;
}

/* --------------------------------------------------------------- compact */

static const char COMPACT_HELP[] =
    "usage: shoal compact DIR [--drop-history] [--json]\n"
    "\n"
    "Rewrites a collection folder as one new version: opens it with every\n"
    "block, applies DIR/log, flushes it, merges every tier into one segment\n"
    "(dropping replaced and deleted records; with the collection's --recent-ms,\n"
    "aged records move to the large tier), writes the new blocks and DIR/root,\n"
    "then empties DIR/log.\n"
    "\n"
    "      --drop-history      the new manifest does not link the previous one\n"
    "                          (older blocks stay in DIR/blocks, unreferenced)\n"
    "      --simd WORD         kernels to compute with (same results)\n"
    "      --json              print {\"collection\",\"root\",\"previous\",\"records\",\n"
    "                          \"segments\",\"blocks\",\"bytes\",\"written\"} on stdout\n"
    "  -q, --quiet             no notes\n"
    "  -h, --help              this help\n"
    "\n"
    "example: shoal compact docs.coll\n";

int cli_cmd_compact(int argc, char **argv) {
    cli_opt opts[] = {{"drop-history", 0, 0, NULL, 0}, {"json", 0, 0, NULL, 0},
                      {"simd", 0, 1, NULL, 0},         {"quiet", 'q', 0, NULL, 0},
                      {NULL, 0, 0, NULL, 0}};
    cli_args args;
    cli_collection cc;
    memset(&cc, 0, sizeof cc);
    int locked = 0;
    int rc = cli_parse(&args, opts, argc, argv);
    if (rc || args.help) {
        if (!rc) fputs(COMPACT_HELP, stdout);
        free(args.pos);
        return rc;
    }
    if (args.npos != 1) {
        cli_error("compact: expected one collection folder, got %d (run 'shoal compact --help')",
                  args.npos);
        free(args.pos);
        return CLI_USAGE;
    }
    const char *dir = args.pos[0];
    int quiet = cli_flag(&args, "quiet"), json = cli_flag(&args, "json");
    shoal_simd simd = SHOAL_SIMD_AUTO;
    if ((rc = cli_simd_param(&args, &simd))) goto out;
    if (!cli_is_collection(dir)) {
        rc = cli_collection_open(dir, NULL, 1, simd, quiet, &cc); /* (says what is wrong) */
        goto out;
    }
    if ((rc = cli_lock_take(dir))) goto out;
    locked = 1;
    if ((rc = cli_collection_open(dir, NULL, 1, simd, quiet, &cc))) goto out;
    shoal_collection_stats before;
    shoal_collection_stats_get(cc.c, &before);
    int code = shoal_collection_flush(cc.c);
    if (code >= 0) code = shoal_collection_compact(cc.c, 1, now_ms());
    if (code < 0) {
        rc = cli_collection_failure(dir, cc.c, code, "compacting");
        goto out;
    }
    cli_saved saved;
    if ((rc = cli_collection_save(dir, cc.c, cli_flag(&args, "drop-history"), &saved))) goto out;
    if (cc.has_log && (rc = cli_truncate_log(dir))) goto out;
    shoal_collection_stats after;
    shoal_collection_stats_get(cc.c, &after);
    if (json) {
        printf("{\"collection\":");
        json_write_string(stdout, dir, strlen(dir));
        printf(",\"root\":\"%s\",\"previous\":\"%s\",\"records\":%u,\"segments\":%u,\"blocks\":%u,"
               "\"bytes\":%llu,\"written\":%u,\"log_records\":%u}\n",
               saved.root_text, cc.root_text, after.size, after.segments, saved.blocks,
               (unsigned long long)saved.bytes, saved.written, cc.log.records);
    } else {
        printf("compacted %s: %u records in %u segment%s (was %u), %u blocks (%u new), %llu bytes",
               dir, after.size, after.segments, after.segments == 1 ? "" : "s", before.segments,
               saved.blocks, saved.written, (unsigned long long)saved.bytes);
        if (cc.log.records) printf(", %u log records folded in", cc.log.records);
        printf("\nroot %s\n", saved.root_text);
    }
out:
    cli_collection_close(&cc);
    if (locked) cli_lock_release(dir);
    free(args.pos);
    return rc;
}

/*
 * car.c -- `shoal car export` and `shoal car import`: a collection folder
 * as one CARv1 file (ipld.io/specs/transport/car/carv1) and back.
 *
 * export writes the header for the root (shoal_car_header) and then every
 * block reachable from the root -- earlier versions included -- in DAG
 * walk order: depth-first, pre-order, links in the order shoal_dag_links
 * lists them, each block once.  Each block is read from DIR/blocks and
 * checked against its name on the way (a damaged folder is not exported),
 * framed by shoal_car_frame.  The order depends only on the DAG, so both
 * builds write the same bytes.
 *
 * import streams the CAR through a window (never the whole file in
 * memory): shoal_car_read_header, then shoal_car_next, which verifies each
 * block against its CID.  Blocks go to DIR/blocks as they come (they are
 * content-addressed: a valid block is never wrong to keep); DIR/root is
 * written only at the end, after the collection opens from the folder
 * with every block and every block reachable from the root is present.
 * A tampered, truncated or incomplete CAR therefore leaves no root.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* ---------------------------------------------------------------- export */

typedef struct export_ctx {
    cli_outfile *o;
    uint32_t blocks;
    uint64_t bytes;
    int rc;
} export_ctx;

static int export_block(void *ctx, const uint8_t cid[SHOAL_CID_BYTES], const uint8_t *bytes,
                        size_t size) {
    export_ctx *x = ctx;
    uint8_t frame[48];
    int n = shoal_car_frame(cid, size, frame);
    int rc = cli_out_write(x->o, frame, (size_t)n);
    if (!rc) rc = cli_out_write(x->o, bytes, size);
    if (rc) {
        x->rc = rc; /* (cli_out_write aborted the file) */
        return rc;
    }
    x->blocks++;
    x->bytes += (uint64_t)n + size;
    return CLI_OK;
}

static const char EXPORT_HELP[] =
    "usage: shoal car export DIR --out FILE.car [--json]\n"
    "\n"
    "Writes the collection in DIR as a CARv1 file: its root as the only root,\n"
    "then every block reachable from it (earlier versions too), depth-first in\n"
    "DAG order, each once.  Every block is checked against its CID first.\n"
    "DIR/log is not part of the version: compact first to include it.\n"
    "\n"
    "  -o, --out FILE          the CAR file to write (temporary name, then renamed)\n"
    "      --json              print {\"out\",\"root\",\"blocks\",\"bytes\"} on stdout\n"
    "                          (bytes: the whole file)\n"
    "  -q, --quiet             no notes\n"
    "  -h, --help              this help\n"
    "\n"
    "example: shoal car export docs.coll --out docs.car\n";

static int car_export(int argc, char **argv) {
    cli_opt opts[] = {{"out", 'o', 1, NULL, 0}, {"json", 0, 0, NULL, 0}, {"quiet", 'q', 0, NULL, 0},
                      {NULL, 0, 0, NULL, 0}};
    cli_args args;
    int rc = cli_parse(&args, opts, argc, argv);
    if (rc || args.help) {
        if (!rc) fputs(EXPORT_HELP, stdout);
        free(args.pos);
        return rc;
    }
    const char *dir = args.npos == 1 ? args.pos[0] : NULL, *out_path = cli_str(&args, "out");
    if (!dir || !out_path) {
        cli_error("car export: expected a collection folder and --out FILE.car (run 'shoal car "
                  "export --help')");
        free(args.pos);
        return CLI_USAGE;
    }
    uint8_t root[SHOAL_CID_BYTES];
    int exists;
    if ((rc = cli_read_root(dir, root, &exists))) {
        if (!exists) cli_error("%s: not a collection: there is no %s/root", dir, dir);
        free(args.pos);
        return rc;
    }
    char *log = cli_path_join(dir, "log");
    struct stat st;
    if (log && stat(log, &st) == 0 && st.st_size > 0)
        cli_note(cli_flag(&args, "quiet"),
                 "%s holds %lld bytes of writes that are not in the root; run 'shoal compact %s' "
                 "first to export them",
                 log, (long long)st.st_size, dir);
    free(log);
    cli_outfile o;
    if ((rc = cli_out_open(&o, out_path))) {
        free(args.pos);
        return rc;
    }
    uint8_t header[128];
    int hn = shoal_car_header(root, header, sizeof header);
    export_ctx x = {&o, 0, (uint64_t)hn, CLI_OK};
    rc = cli_out_write(&o, header, (size_t)hn);
    if (rc) x.rc = rc;
    if (!rc) rc = cli_dag_walk(dir, root, 1, export_block, &x);
    if (rc) {
        if (!x.rc) cli_out_abort(&o); /* (a write failure aborted it already) */
        free(args.pos);
        return rc;
    }
    if ((rc = cli_out_commit(&o))) {
        free(args.pos);
        return rc;
    }
    char text[SHOAL_CID_SIZE];
    shoal_cid_format(root, text);
    if (cli_flag(&args, "json")) {
        printf("{\"out\":");
        json_write_string(stdout, out_path, strlen(out_path));
        printf(",\"root\":\"%s\",\"blocks\":%u,\"bytes\":%llu}\n", text, x.blocks,
               (unsigned long long)x.bytes);
    } else {
        printf("wrote %s: %u blocks, %llu bytes\nroot %s\n", out_path, x.blocks,
               (unsigned long long)x.bytes, text);
    }
    free(args.pos);
    return CLI_OK;
}

/* ---------------------------------------------------------------- import */

/* A window over a file read in chunks; blocks are at most SHOAL_BLOCK_MAX,
 * so the window never needs to hold much more than one. */
typedef struct window {
    FILE *f;
    uint8_t *buf;
    size_t len, pos, cap;
    uint64_t base; /* file offset of buf[0] */
    int eof;
} window;

#define WINDOW_MAX ((size_t)2 * SHOAL_BLOCK_MAX + 65536)

/* Reads more bytes, keeping those from pos on.  0, or an exit code. */
static int window_fill(window *w, const char *path) {
    if (w->pos) {
        memmove(w->buf, w->buf + w->pos, w->len - w->pos);
        w->len -= w->pos;
        w->base += w->pos;
        w->pos = 0;
    }
    if (w->len == w->cap) {
        if (w->cap >= WINDOW_MAX) {
            cli_error("%s: a block at byte %llu is larger than %u bytes (blocks of a collection "
                      "are at most 1 MiB)",
                      path, (unsigned long long)w->base, SHOAL_BLOCK_MAX);
            return CLI_DATA;
        }
        size_t cap = w->cap * 2 > WINDOW_MAX ? WINDOW_MAX : w->cap * 2;
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) {
            cli_error("out of memory");
            return CLI_INTERNAL;
        }
        w->buf = nb;
        w->cap = cap;
    }
    size_t got = fread(w->buf + w->len, 1, w->cap - w->len, w->f);
    w->len += got;
    if (got == 0) {
        if (ferror(w->f)) {
            cli_error("%s: read error", path);
            return CLI_DATA;
        }
        w->eof = 1;
    }
    return CLI_OK;
}

static const char *car_problem(int code) {
    switch (code) {
    case SHOAL_ECHECKSUM: return "its bytes do not hash to its CID (tampered or damaged)";
    case SHOAL_ETRUNCATED: return "the file ends inside it (truncated)";
    case SHOAL_EUNSUPPORTED: return "its CID is not CIDv1 / sha2-256 of raw or DAG-CBOR";
    case SHOAL_EVERSION: return "not CARv1";
    default: return "malformed";
    }
}

static const char IMPORT_HELP[] =
    "usage: shoal car import FILE.car --collection DIR [--force] [--json]\n"
    "\n"
    "Reads a CARv1 file into a collection folder: every block (each verified\n"
    "against its CID) to DIR/blocks, then DIR/root = the CAR's root -- written\n"
    "last, once the collection opens from DIR with every block and every block\n"
    "reachable from the root is there.  A damaged or incomplete CAR leaves no\n"
    "root (exit 2).  DIR is created if missing.\n"
    "\n"
    "      --collection DIR    the folder to import into (required)\n"
    "      --force             replace DIR's root if it holds another collection\n"
    "                          (its blocks stay; a non-empty DIR/log is refused)\n"
    "      --json              print {\"collection\",\"root\",\"blocks\",\"written\",\"bytes\",\n"
    "                          \"records\",\"segments\"} on stdout\n"
    "  -q, --quiet             no notes\n"
    "  -h, --help              this help\n"
    "\n"
    "example: shoal car import docs.car --collection docs.coll\n";

static int car_import(int argc, char **argv) {
    cli_opt opts[] = {{"collection", 0, 1, NULL, 0}, {"force", 0, 0, NULL, 0},
                      {"json", 0, 0, NULL, 0},       {"quiet", 'q', 0, NULL, 0},
                      {NULL, 0, 0, NULL, 0}};
    cli_args args;
    window w;
    memset(&w, 0, sizeof w);
    cli_collection cc;
    memset(&cc, 0, sizeof cc);
    int locked = 0;
    const char *dir = NULL;
    int rc = cli_parse(&args, opts, argc, argv);
    if (rc || args.help) {
        if (!rc) fputs(IMPORT_HELP, stdout);
        free(args.pos);
        return rc;
    }
    const char *path = args.npos == 1 ? args.pos[0] : NULL;
    dir = cli_str(&args, "collection");
    if (!path || !dir) {
        cli_error("car import: expected a CAR file and --collection DIR (run 'shoal car import "
                  "--help')");
        free(args.pos);
        return CLI_USAGE;
    }
    int quiet = cli_flag(&args, "quiet");
    struct stat st;
    uint8_t root[SHOAL_CID_BYTES], old[SHOAL_CID_BYTES];
    char text[SHOAL_CID_SIZE];
    if (!(w.f = cli_open_input(path, &st))) {
        rc = CLI_DATA;
        goto out;
    }
    w.cap = 1 << 16;
    if (!(w.buf = malloc(w.cap))) {
        cli_error("out of memory");
        rc = CLI_INTERNAL;
        goto out;
    }
    /* The header. */
    size_t offset = 0;
    for (;;) {
        int code = shoal_car_read_header(w.buf, w.len, root, &offset);
        if (code == 0) break;
        if (code == SHOAL_ETRUNCATED && !w.eof) {
            if ((rc = window_fill(&w, path))) goto out;
            continue;
        }
        cli_error("%s: not a CARv1 file: its header is %s (%s)", path,
                  code == SHOAL_ETRUNCATED ? "cut short" : car_problem(code), shoal_error_name(code));
        rc = CLI_DATA;
        goto out;
    }
    w.pos = offset;
    shoal_cid_format(root, text);
    if (root[1] != SHOAL_CODEC_DAG_CBOR) {
        cli_error("%s: its root %s is a raw block, not a collection's manifest", path, text);
        rc = CLI_DATA;
        goto out;
    }
    /* What DIR holds already. */
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        cli_error("car import: %s exists and is not a directory", dir);
        rc = CLI_OUTPUT;
        goto out;
    }
    if ((rc = cli_collection_mkdirs(dir)) || (rc = cli_lock_take(dir))) goto out;
    locked = 1;
    int replacing = 0;
    if (cli_is_collection(dir)) {
        int exists;
        int same = cli_read_root(dir, old, &exists) == CLI_OK && !memcmp(old, root, SHOAL_CID_BYTES);
        if (!same && !cli_flag(&args, "force")) {
            char old_text[SHOAL_CID_SIZE] = "unreadable";
            if (cli_read_root(dir, old, NULL) == CLI_OK) shoal_cid_format(old, old_text);
            cli_error("car import: %s holds another collection (root %s; the CAR's is %s); give "
                      "--force to replace its root",
                      dir, old_text, text);
            rc = CLI_USAGE;
            goto out;
        }
        char *log = cli_path_join(dir, "log");
        struct stat ls;
        int pending = log && stat(log, &ls) == 0 && ls.st_size > 0;
        free(log);
        if (!same && pending) {
            cli_error("car import: %s/log holds writes to the collection being replaced; run "
                      "'shoal compact %s' or move the log away first",
                      dir, dir);
            rc = CLI_USAGE;
            goto out;
        }
        replacing = !same;
    }
    /* The blocks, each verified by shoal_car_next, written as they come. */
    uint32_t blocks = 0, written = 0;
    uint64_t bytes = 0;
    for (;;) {
        uint8_t cid[SHOAL_CID_BYTES];
        const uint8_t *data;
        size_t size, at = w.pos;
        int code = shoal_car_next(w.buf, w.len, &at, cid, &data, &size);
        if (code == 1) {
            if (size > SHOAL_BLOCK_MAX) {
                cli_error("%s: block %u (byte %llu) is %zu bytes; blocks of a collection are at "
                          "most %u",
                          path, blocks, (unsigned long long)(w.base + w.pos), size, SHOAL_BLOCK_MAX);
                rc = CLI_DATA;
                goto out;
            }
            int fresh;
            if ((rc = cli_write_block(dir, cid, data, size, &fresh))) goto out;
            written += (uint32_t)fresh;
            blocks++;
            bytes += size;
            w.pos = at;
            continue;
        }
        if ((code == 0 || code == SHOAL_ETRUNCATED) && !w.eof) {
            if ((rc = window_fill(&w, path))) goto out;
            continue;
        }
        if (code == 0) break;
        if (written) cli_sync_blocks(dir);
        cli_error("%s: block %u (byte %llu): %s (%s); no root written", path, blocks,
                  (unsigned long long)(w.base + w.pos), car_problem(code), shoal_error_name(code));
        rc = CLI_DATA;
        goto out;
    }
    if (written && (rc = cli_sync_blocks(dir))) goto out;
    /* Complete?  The collection must open from the folder, and every block
     * reachable from the root (history too) must be in it. */
    if ((rc = cli_dag_walk(dir, root, 0, NULL, NULL)) ||
        (rc = cli_collection_open(dir, root, 0, SHOAL_SIMD_AUTO, quiet, &cc))) {
        cli_error("%s: the CAR does not hold a whole collection under %s; no root written", path,
                  text);
        if (rc != CLI_INTERNAL) rc = CLI_DATA;
        goto out;
    }
    if ((rc = cli_write_root(dir, root))) goto out;
    shoal_collection_stats cs;
    shoal_collection_stats_get(cc.c, &cs);
    if (cli_flag(&args, "json")) {
        printf("{\"collection\":");
        json_write_string(stdout, dir, strlen(dir));
        printf(",\"root\":\"%s\",\"blocks\":%u,\"written\":%u,\"bytes\":%llu,\"records\":%u,"
               "\"segments\":%u}\n",
               text, blocks, written, (unsigned long long)bytes, cs.size, cs.segments);
    } else {
        printf("imported %s into %s: %u blocks (%u new), %llu bytes; %u records in %u segment%s%s\n",
               path, dir, blocks, written, (unsigned long long)bytes, cs.size, cs.segments,
               cs.segments == 1 ? "" : "s", replacing ? " (root replaced)" : "");
        printf("root %s\n", text);
    }
out:
    cli_collection_close(&cc);
    if (locked) cli_lock_release(dir);
    if (w.f) fclose(w.f);
    free(w.buf);
    free(args.pos);
    return rc;
}

/* ------------------------------------------------------------------- car */

static const char CAR_HELP[] =
    "usage: shoal car export DIR --out FILE.car\n"
    "       shoal car import FILE.car --collection DIR [--force]\n"
    "\n"
    "Moves a collection folder as one CARv1 file (the format IPFS tools import\n"
    "and gateways serve).  Run 'shoal car export --help' or 'shoal car import\n"
    "--help' for the options.\n";

int cli_cmd_car(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "export") || !strcmp(argv[1], "import"))) {
        /* The subcommand's arguments, named "car export" in messages. */
        static char export_name[] = "car export", import_name[] = "car import";
        char *saved = argv[1];
        argv[1] = saved[0] == 'e' ? export_name : import_name;
        int rc = saved[0] == 'e' ? car_export(argc - 1, argv + 1) : car_import(argc - 1, argv + 1);
        argv[1] = saved;
        return rc;
    }
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
        fputs(CAR_HELP, stdout);
        return CLI_OK;
    }
    if (argc < 2) cli_error("car: expected 'export' or 'import' (run 'shoal car --help')");
    else cli_error("car: unknown subcommand '%s' (expected export or import)", argv[1]);
    return CLI_USAGE;
}

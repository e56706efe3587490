/*
 * cli.h -- the shared pieces of the `shoal` command-line tool.
 *
 * The CLI is a host, like the JS binding: it does the file I/O, the
 * argument parsing and the printing, and calls the core only through the
 * public header (src/shoal.h).  The same sources build natively and as a
 * WASI program (build/shoal.wasm), so everything here sticks to C11 plus the
 * few POSIX calls wasi-libc has (stat, isatty, rename, remove,
 * clock_gettime): no threads, no mmap, no signals under WASI.
 *
 * Files
 *   main.c      dispatch, global help, exit codes
 *   args.c      the option parser every command shares, index options
 *   input.c     vector readers: fvecs, bvecs, ivecs, npy (float32), JSONL
 *   json.c      a small strict JSON reader (for JSONL) and JSON writers
 *   fileio.c    whole-file reads and the temp-file-then-rename writer
 *   progress.c  the stderr progress bar (terminal only)
 *   build.c     build (segments and collections), merge and the shared
 *               "make an index from records"
 *   search.c    search and bench (segments and collections)
 *   inspect.c   info, verify, cid (segments and collections)
 *   collection.c  the collection folder: open, write a version, walk the
 *               DAG; compact
 *   cbor.c      a small DAG-CBOR reader (manifests, for info)
 *   car.c       car export, car import
 *
 * Errors are reported where they happen, as "shoal: <file>: <problem>",
 * and a command returns one of the exit codes below.
 */
#ifndef SHOAL_CLI_H
#define SHOAL_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "shoal.h"

/* ------------------------------------------------------------ exit codes */

enum cli_exit {
    CLI_OK = 0,        /* success */
    CLI_USAGE = 1,     /* bad command line: unknown flag, missing argument */
    CLI_DATA = 2,      /* bad input: missing, unreadable or malformed file or segment */
    CLI_OUTPUT = 3,    /* the output file could not be written */
    CLI_INTERNAL = 4,  /* out of memory or an unexpected library error */
    CLI_THRESHOLD = 5  /* bench: recall below --min-recall */
};

/* Prints "shoal: <message>\n" to stderr.  Returns nothing: callers return
 * the exit code themselves so that the code is visible at the call site. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* The text of the last cli_error message ("" if none), for JSON reports. */
const char *cli_last_error(void);
/* Prints "shoal: note: <message>\n" unless quiet. */
void cli_note(int quiet, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Maps a core error code to an exit code: corrupt / dimension / vector /
 * id / parameter problems are bad data, out of memory is internal. */
int cli_exit_of(int shoal_code);

/* ------------------------------------------------------------- options */

typedef struct cli_opt {
    const char *name;  /* long name without "--"; NULL ends a table */
    char short_name;   /* 0 if none */
    int has_value;     /* 1: takes a value (--name V, --name=V, -x V, -xV) */
    const char *value; /* last value given, or NULL */
    int seen;          /* times given */
} cli_opt;

typedef struct cli_args {
    const char *command;   /* for messages: "build" */
    cli_opt *opts;
    const char **pos;      /* positional arguments */
    int npos;
    int help;              /* --help / -h given */
} cli_args;

/* Parses argv (after the command name) against opts.  --help and -h are
 * always accepted.  Returns 0, or CLI_USAGE after printing a message. */
int cli_parse(cli_args *args, cli_opt *opts, int argc, char **argv);
cli_opt *cli_find(cli_opt *opts, const char *name);
const char *cli_str(cli_args *args, const char *name); /* NULL if absent */
int cli_flag(cli_args *args, const char *name);        /* given at all */
/* Reads an unsigned option into *out (left alone if absent).  Returns 0 or
 * CLI_USAGE with a message naming the flag. */
int cli_u32(cli_args *args, const char *name, uint32_t min, uint32_t max, uint32_t *out);
int cli_u64(cli_args *args, const char *name, uint64_t *out);
int cli_double(cli_args *args, const char *name, double min, double max, double *out);
/* A comma-separated list of unsigned values ("16,32,64"), at most cap. */
int cli_u32_list(cli_args *args, const char *name, uint32_t min, uint32_t max,
                 uint32_t *out, uint32_t cap, uint32_t *count);

/* The index options shared by build, merge, search and bench on raw data:
 * one flag per row of SHOAL_PARAM_LIST in shoal.h (kind, metric,
 * quantizer, seed, simd and the per-kind parameters), so a new parameter
 * reaches the CLI without an edit here.  CLI_INDEX_OPTS expands to their
 * table rows. */
#define CLI__OPT_ROW(field, type, js, flag, applies, en, doc) \
    {flag, flag[0] == 'M' && !flag[1] ? 'M' : 0, 1, NULL, 0},
#define CLI_INDEX_OPTS SHOAL_PARAM_LIST(CLI__OPT_ROW)
/* Fills params from the index options (after shoal_params_init and with
 * dim set by the caller).  --nprobe becomes the index default unless
 * for_search (where the command reads it per search).  A flag given to a
 * kind it does not apply to is a usage error.  Returns 0 or CLI_USAGE. */
int cli_index_params(cli_args *args, shoal_params *params, int for_search);
/* Reads --simd alone (for helper indexes such as exact truth). */
int cli_simd_param(cli_args *args, shoal_simd *out);
/* Prints the index options' help lines. */
void cli_print_index_help(FILE *f, int for_search);

/* The collection options of build: one flag per row of
 * SHOAL_COLLECTION_PARAM_LIST (--flush-records, ...) and, for the large
 * segments, --large-<flag> per row of SHOAL_PARAM_LIST (--large-kind,
 * --large-nlist, ...; large-dim, large-metric and large-simd are rows too,
 * refused when given: large segments take the collection's). */
#define CLI__POLICY_ROW(field, type, js, flag, doc) {flag, 0, 1, NULL, 0},
#define CLI__LARGE_ROW(field, type, js, flag, applies, en, doc) {"large-" flag, 0, 1, NULL, 0},
#define CLI_COLLECTION_OPTS \
    SHOAL_COLLECTION_PARAM_LIST(CLI__POLICY_ROW) SHOAL_PARAM_LIST(CLI__LARGE_ROW)
/* Fills a collection's parameters (after shoal_collection_params_init, with
 * small.dim set): the index options for the small ones (kind hnsw or
 * flat), the large- options and the policy.  Returns 0 or CLI_USAGE. */
int cli_collection_params(cli_args *args, shoal_collection_params *cp);
/* Whether any policy or large- option was given (*which: its name). */
int cli_collection_flag_given(cli_args *args, const char **which);
void cli_print_collection_help(FILE *f);

/* --------------------------------------------------------------- input */

typedef enum cli_format {
    CLI_FORMAT_AUTO = 0,
    CLI_FORMAT_FVECS,
    CLI_FORMAT_BVECS,
    CLI_FORMAT_NPY,
    CLI_FORMAT_JSONL,
    CLI_FORMAT_SEGMENT
} cli_format;

/* Records read from a file: n vectors of dim floats and their ids in the
 * core's bytes + offsets form.  Binary formats have no ids: record i gets
 * the decimal id "i". */
typedef struct cli_records {
    uint32_t n, dim;
    float *vectors;
    size_t rows_cap;
    char *id_bytes;
    size_t id_len, id_cap;
    uint32_t *id_offsets; /* n + 1 entries */
    uint32_t with_metadata; /* JSONL records that had a "metadata" field */
    uint32_t other_fields;  /* JSONL records with fields other than id/vector/metadata/time */
    /* Per record, NULL until a record has some: metadata JSON text (an empty
     * span = none) and times (SHOAL_TIME_NONE = none). */
    char *meta_bytes;
    size_t meta_len, meta_cap;
    uint32_t *meta_offsets; /* annotated + 1 */
    int64_t *times;         /* annotated */
    uint32_t annotated, annotated_cap; /* records the two arrays cover */
} cli_records;

void cli_records_free(cli_records *r);
/* Appends one record (copies the vector and id).  Returns 0 or SHOAL_ENOMEM. */
int cli_records_push(cli_records *r, const char *id, uint32_t id_len, const float *vector);
/* Sets the metadata (JSON text, NULL = none) and time of the record just
 * pushed.  Returns 0 or SHOAL_ENOMEM. */
int cli_records_annotate(cli_records *r, const char *meta, size_t meta_len, int64_t time);
/* The batch of records as the core takes it. */
void cli_records_batch(const cli_records *r, shoal_records *out);

/* Parses a --format word; CLI_USAGE on an unknown one. */
int cli_format_param(cli_args *args, cli_format *out);
/* Decides a file's format from its first bytes and its name. */
cli_format cli_sniff(const char *path, const uint8_t *head, size_t head_len);
const char *cli_format_name(cli_format f);

/* Reads vectors (fvecs, bvecs, npy, JSONL; fmt AUTO sniffs).  Returns 0 or
 * an exit code after printing a message naming the file and the problem. */
int cli_read_records(const char *path, cli_format fmt, cli_records *out);
/* Reads an .ivecs ground-truth file: rows of k int32 neighbour indices. */
int cli_read_ivecs(const char *path, uint32_t **rows, uint32_t *n, uint32_t *k);
/* Parses "0.1,0.2,0.3" or "[0.1, 0.2, 0.3]" into one vector. */
int cli_parse_vector_arg(const char *text, cli_records *out);

/* ------------------------------------------------------------------ json */

/* One parsed JSONL record line.  The id is decoded into id_buf. */
typedef struct json_record {
    char id_buf[SHOAL_ID_MAX];
    uint32_t id_len;
    int has_id, has_vector, has_metadata, has_time, has_other;
    const char *meta_at; /* the "metadata" value's text (the core parses it) */
    size_t meta_len;
    int64_t time;        /* "time": milliseconds since the epoch, an integer */
} json_record;

/* Parses one JSONL line [p, end) whose vector is appended to *vec (grown as
 * needed; *dim is set from the first record, 0 meaning unknown).  On a
 * syntax or content error returns -1 and writes a message (with the
 * 1-based column) to err. */
int json_parse_record(const char *p, const char *end, json_record *rec, float **vec,
                      size_t *vec_cap, uint32_t *count, char *err, size_t err_size);
/* Strict JSON number at [p, end) -> float; -1 on bad syntax or overflow. */
int json_parse_float(const char *p, size_t len, float *out);

/* Writers: a JSON string (bytes escaped; invalid UTF-8 bytes become
 * \u00XX), and a float as the shortest "%.9g" that round-trips. */
void json_write_string(FILE *f, const char *s, size_t len);
void json_write_float(FILE *f, double v);

/* --------------------------------------------------------------- files */

/* Reads a whole file.  Returns 0 or CLI_DATA after printing a message. */
/* Opens an input file for reading ("rb"), filling *st; NULL (after a message
 * naming the file: missing, a directory, unreadable) on failure. */
FILE *cli_open_input(const char *path, struct stat *st);
int cli_read_file(const char *path, uint8_t **bytes, size_t *size);
/* Prints "shoal: <path>: <strerror>" with a hint under WASI. */
void cli_error_errno(const char *path, const char *doing, int err);

/* An output file written under a temporary name in the same directory and
 * renamed over the final name on commit, so a failure never leaves a
 * partial file: abort (or any failure in commit) removes it. */
typedef struct cli_outfile {
    char *path;
    char *tmp;
    FILE *f;
} cli_outfile;

int cli_out_open(cli_outfile *o, const char *path);
int cli_out_write(cli_outfile *o, const void *bytes, size_t size);
int cli_out_commit(cli_outfile *o);
void cli_out_abort(cli_outfile *o);

/* A collection's DIR/lock (collection.c), created exclusively (fopen "wx";
 * NULL with errno on failure) and removed through these two, so that,
 * natively, SIGINT, SIGTERM or SIGHUP remove a lock this process holds as
 * they remove a temporary in flight (fileio.c). */
FILE *cli_lock_create(const char *path);
void cli_lock_remove(const char *path);

/* ------------------------------------------------------------- progress */

typedef struct cli_progress {
    int enabled;
    const char *label;
    int last_width;  /* bar cells last drawn, to redraw only on change */
    uint64_t last_done;
    double started;
} cli_progress;

/* Enabled only when stderr is a terminal and quiet is 0. */
void cli_progress_start(cli_progress *p, const char *label, int quiet);
void cli_progress_update(cli_progress *p, uint64_t done, uint64_t total);
/* Adapter for shoal_index_on_progress. */
int cli_progress_cb(void *ctx, uint32_t done, uint32_t total);
void cli_progress_finish(cli_progress *p);

/* Monotonic seconds. */
double cli_now(void);

/* ------------------------------------------------------------- commands */

/* Builds an index from records with the index options (training IVF on
 * the records first).  Returns 0 or an exit code after a message. */
int cli_make_index(cli_args *args, const char *source, cli_records *recs, int quiet,
                   int for_search, shoal_index **out);
/* The same with parameters already filled. */
int cli_make_index_with(const shoal_params *params, const char *source, cli_records *recs,
                        int quiet, uint32_t threads, shoal_index **out);
/* Opens a segment file as an index (load).  bytes/size may be NULL. */
int cli_load_segment(const char *path, shoal_index **out, uint8_t **bytes, size_t *size);
/* Either loads a segment or builds an index from a data file. */
int cli_open_index(cli_args *args, const char *path, int quiet, shoal_index **out,
                   cli_records *records_or_null);
/* Appends every live record of an index to recs (vectors and ids; for bench). */
int cli_extract_records(shoal_index *index, const char *source, cli_records *recs);

int cli_cmd_build(int argc, char **argv);
int cli_cmd_merge(int argc, char **argv);
int cli_cmd_search(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);
int cli_cmd_info(int argc, char **argv);
int cli_cmd_verify(int argc, char **argv);
int cli_cmd_cid(int argc, char **argv);
int cli_cmd_compact(int argc, char **argv);
int cli_cmd_car(int argc, char **argv);

/* ---------------------------------------------------------- collections */

/*
 * A collection kept in a folder (docs/CLI.md, "Collections"):
 *   DIR/root          the manifest's CID as text, and a newline
 *   DIR/blocks/<cid>  every block of the DAG, named by its CID's text
 *   DIR/log           optional: a write-ahead log of log records
 *                     (shoal_collection_apply), applied when opened
 *   DIR/lock          while a process writes the folder: its process id
 * Blocks are written before the root that needs them, each under a
 * temporary name and renamed; the root is written last.
 */
typedef struct cli_collection {
    const char *dir;
    shoal_collection *c;
    uint8_t root[SHOAL_CID_BYTES];
    char root_text[SHOAL_CID_SIZE];
    uint8_t *manifest;    /* the root block */
    size_t manifest_size;
    uint32_t blocks_read; /* blocks given to the core */
    uint64_t bytes_read;
    int has_log;          /* DIR/log exists */
    uint64_t log_size;
    shoal_apply_result log; /* what applying it did */
} cli_collection;

/* A path under dir ("dir/name"), malloc'd; NULL after a message on OOM. */
char *cli_path_join(const char *dir, const char *name);
/* 1 if path is a directory, 0 if not (or missing). */
int cli_is_dir(const char *path);
/* 1 if path is a directory holding a root file. */
int cli_is_collection(const char *path);
/* Reads DIR/root: 0 and root set, or an exit code after a message.
 * *exists (may be NULL) tells a missing file (then CLI_DATA, no message
 * when exists is given) from a bad one. */
int cli_read_root(const char *dir, uint8_t root[SHOAL_CID_BYTES], int *exists);
/* Reads DIR/blocks/<cid>, checks its size (<= SHOAL_BLOCK_MAX) and that it
 * hashes to cid; 0 or CLI_DATA after a message naming the file (why: what
 * the block is for, e.g. "reachable from the root"). */
int cli_read_block(const char *dir, const uint8_t cid[SHOAL_CID_BYTES], const char *why,
                   uint8_t **bytes, size_t *size);
/* Opens the collection in dir (root NULL: DIR/root) with every block
 * (SHOAL_WANT_ALL), then applies DIR/log if apply_log (a torn tail is
 * noted, the file is not changed).  Returns 0 or an exit code after a
 * message: 2 for a missing or damaged block, naming it. */
int cli_collection_open(const char *dir, const uint8_t *root, int apply_log, shoal_simd simd,
                        int quiet, cli_collection *out);
void cli_collection_close(cli_collection *cc);

typedef struct cli_saved {
    uint8_t root[SHOAL_CID_BYTES];
    char root_text[SHOAL_CID_SIZE];
    uint32_t blocks, written; /* blocks of the version; files written */
    uint64_t bytes;           /* bytes of the version's blocks */
} cli_saved;
/* Commits c (flushed) as a new version and writes it to dir: every block
 * missing from DIR/blocks (temporary name, then rename), then DIR/root.
 * Creates dir and dir/blocks if missing.  0 or an exit code. */
int cli_collection_save(const char *dir, shoal_collection *c, int drop_history, cli_saved *out);
/* Creates dir (one level) and dir/blocks if missing: 0 or CLI_OUTPUT. */
int cli_collection_mkdirs(const char *dir);
/* Writes one block as DIR/blocks/<cid> unless present; *written (may be
 * NULL) is set to 1 if it wrote it.  0 or CLI_OUTPUT. */
int cli_write_block(const char *dir, const uint8_t cid[SHOAL_CID_BYTES], const uint8_t *bytes,
                    size_t size, int *written);
/* Writes DIR/root ("<cid>\n") through a temporary: 0 or CLI_OUTPUT. */
int cli_write_root(const char *dir, const uint8_t root[SHOAL_CID_BYTES]);
/* DIR/lock, the one-writer lock the JS file store uses too: taken by every
 * command that writes a collection folder (dir must exist).  0, or
 * CLI_OUTPUT after a message when another live process holds it. */
int cli_lock_take(const char *dir);
void cli_lock_release(const char *dir);
/* fsync of DIR/blocks after new blocks were renamed into it (best effort:
 * refusals to sync a directory are ignored).  0 or CLI_OUTPUT. */
int cli_sync_blocks(const char *dir);
/* Empties DIR/log if it exists: 0 or CLI_OUTPUT. */
int cli_truncate_log(const char *dir);
/* Prints "source: doing failed: <error>: <detail> (NAME)"; returns the exit
 * code (cli_exit_of). */
int cli_collection_failure(const char *source, shoal_collection *c, int rc, const char *doing);

/* Called for each block of a DAG walk: bytes NULL for raw blocks the walk
 * did not read (size is then the file's).  Returns 0 or an exit code
 * (which stops the walk). */
typedef int (*cli_block_fn)(void *ctx, const uint8_t cid[SHOAL_CID_BYTES], const uint8_t *bytes,
                            size_t size);
/* Walks the DAG under root in DIR/blocks depth-first, pre-order, following
 * shoal_dag_links, each block once: every block it reads is checked as
 * cli_read_block does (raw ones only when read_raw, otherwise just found
 * present; dag-cbor ones always, for their links).  Returns 0 or an exit
 * code after a message. */
int cli_dag_walk(const char *dir, const uint8_t root[SHOAL_CID_BYTES], int read_raw,
                 cli_block_fn fn, void *ctx);
/* The bytes of the segment linked by link (a raw block, or a segment node
 * with its parts), concatenated from DIR/blocks.  0 or an exit code. */
int cli_segment_bytes(const char *dir, const uint8_t link[SHOAL_CID_BYTES], uint8_t **bytes,
                      size_t *size);

/* cbor.c: reading a manifest (validated by shoal_collection_open). */
typedef struct cli_cbor {
    const uint8_t *p, *end; /* an item at p, inside a buffer ending at end */
} cli_cbor;
cli_cbor cli_cbor_at(const uint8_t *bytes, size_t size);
int cli_cbor_ok(cli_cbor v);                 /* 0 for a missing item */
cli_cbor cli_cbor_get(cli_cbor map, const char *key); /* missing: !ok */
uint32_t cli_cbor_count(cli_cbor v);         /* array or map entries; 0 otherwise */
cli_cbor cli_cbor_index(cli_cbor array, uint32_t i);
int cli_cbor_uint(cli_cbor v, uint64_t *out);  /* 0, or -1 if not an unsigned integer */
int cli_cbor_int(cli_cbor v, int64_t *out);
int cli_cbor_text(cli_cbor v, const char **s, size_t *len);
int cli_cbor_link(cli_cbor v, uint8_t cid[SHOAL_CID_BYTES]);
int cli_cbor_is_null(cli_cbor v);
/* The item as JSON (links as {"/": "<cid>"}, as DAG-JSON writes them). */
void cli_cbor_json(FILE *f, cli_cbor v);

#endif

/*
 * build.c -- `shoal build` and `shoal merge`, and the shared step both
 * (and search / bench on raw data) use: records in, index out.
 *
 * build reads a vector file completely and validates it, then makes the
 * index, then saves it, and only then opens the output -- so a bad input
 * never creates a file, and a failure while writing removes the temporary
 * (fileio.c).  The segment bytes depend only on the input, the options and
 * the seed, never on the build: the WASI program writes the same bytes as
 * the native one (tests/cli checks it).
 *
 * IVF is trained explicitly on all the records before they are added (the
 * core samples at most train_sample vectors per list itself), rather than
 * relying on a large first add, so a small file gets a clear message about
 * nlist instead of a state error.
 *
 * build --collection writes a collection folder instead (or as well):
 * the records go into a shoal_collection in batches cut where a flush
 * falls due, so the segments, their blocks and the root CID depend only on
 * the input and the options -- the WASI build writes the same folder.
 * The index options are the collection's small parameters (kind hnsw by
 * default, or flat), --large-* its large ones, and the policy flags come
 * from SHOAL_COLLECTION_PARAM_LIST.  The folder layer is collection.c.
 *
 * merge opens every segment as a view and hands them to shoal_index_merge,
 * which keeps the last version of each id (like an upsert in segment
 * order) with its metadata and time and rebuilds one index -- graphs and
 * lists are recomputed.  Every index parameter (kind, metric, quantizer,
 * seed, HNSW M / ef / build batch, IVF nlist / PQ sizes, rerank) defaults to
 * the first segment's, and command-line flags override them.  Vectors come
 * back as stored: exact for f32 and rerank copies, decoded approximations
 * for sq8 and PQ without rerank.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

/* ------------------------------------------------------------ the index */

static int core_failure(const char *source, shoal_index *index, int rc, const char *doing) {
    const char *detail = index ? shoal_index_errmsg(index) : "";
    cli_error("%s: %s failed: %s%s%s (%s)", source, doing, shoal_strerror(rc),
              detail && *detail ? ": " : "", detail ? detail : "", shoal_error_name(rc));
    return cli_exit_of(rc);
}

int cli_make_index(cli_args *args, const char *source, cli_records *recs, int quiet,
                   int for_search, shoal_index **out) {
    shoal_params p;
    shoal_params_init(&p);
    p.dim = recs->dim;
    int rc = cli_index_params(args, &p, for_search);
    if (rc) return rc;
    /* --threads: HNSW links in batches whose searches run in parallel; the
     * batch (64 unless --build-batch says: on Fashion-MNIST 60k, 2 threads
     * built in 13.6 s with 32 or 64, 15.2 s with 256, whose phases no longer
     * share the cache) makes the bytes the same for every thread count. */
    uint32_t threads = 0;
    if ((rc = cli_u32(args, "threads", 1, 64, &threads))) return rc;
    if (threads && p.kind == SHOAL_KIND_HNSW && !p.hnsw.build_batch) {
        if (cli_flag(args, "build-batch")) {
            cli_error("%s: --threads needs batched inserts, and --build-batch 0 turns them off",
                      args->command);
            return CLI_USAGE;
        }
        p.hnsw.build_batch = 64;
    }
    return cli_make_index_with(&p, source, recs, quiet, threads ? threads : 1, out);
}

int cli_make_index_with(const shoal_params *params, const char *source, cli_records *recs,
                        int quiet, uint32_t threads, shoal_index **out) {
    shoal_index *index = NULL;
    *out = NULL;
    char msg[256] = "";
    shoal_params p_copy = *params, *p = &p_copy;
    p->errmsg = msg;
    p->errmsg_size = sizeof msg;
    int rc = shoal_index_new(p, &index);
    if (rc < 0) {
        cli_error("%s: cannot create a %s index of dimension %u: %s%s%s (%s)", source,
                  shoal_kind_word(p->kind), p->dim, shoal_strerror(rc), *msg ? ": " : "", msg,
                  shoal_error_name(rc));
        return rc == SHOAL_EPARAM ? CLI_USAGE : cli_exit_of(rc);
    }
    if (threads > 1 && (rc = shoal_index_set_threads(index, threads)) < 0) {
        /* (The WASI build: one thread gives the same bytes.) */
        if (rc == SHOAL_EUNSUPPORTED) {
            cli_note(quiet, "%s: this build has no threads; building on one (the same bytes)",
                     source);
        } else {
            rc = core_failure(source, index, rc, "starting threads");
            shoal_index_free(index);
            return rc;
        }
    }
    if (p->kind == SHOAL_KIND_IVF) {
        cli_progress prog;
        cli_progress_start(&prog, "training", quiet);
        cli_progress_update(&prog, 0, 1);
        rc = shoal_index_train(index, recs->n, recs->vectors, recs->dim);
        cli_progress_update(&prog, 1, 1);
        cli_progress_finish(&prog);
        if (rc < 0) {
            rc = core_failure(source, index, rc, "training");
            shoal_index_free(index);
            return rc;
        }
    }
    cli_progress prog;
    cli_progress_start(&prog, "adding", quiet);
    shoal_index_on_progress(index, cli_progress_cb, &prog);
    shoal_records batch;
    cli_records_batch(recs, &batch);
    rc = shoal_index_upsert(index, &batch);
    shoal_index_on_progress(index, NULL, NULL);
    cli_progress_finish(&prog);
    if (rc < 0) {
        rc = core_failure(source, index, rc, "adding records");
        shoal_index_free(index);
        return rc;
    }
    *out = index;
    return CLI_OK;
}

int cli_load_segment(const char *path, shoal_index **out, uint8_t **bytes_out, size_t *size_out) {
    uint8_t *bytes;
    size_t size;
    *out = NULL;
    int rc = cli_read_file(path, &bytes, &size);
    if (rc) return rc;
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    char msg[256] = "";
    lp.errmsg = msg;
    lp.errmsg_size = sizeof msg;
    rc = shoal_index_load(bytes, size, &lp, out);
    if (rc < 0) {
        cli_error("%s: not a valid segment: %s%s%s (%s)", path, shoal_strerror(rc),
                  *msg ? ": " : "", msg, shoal_error_name(rc));
        free(bytes);
        return cli_exit_of(rc);
    }
    if (bytes_out) {
        *bytes_out = bytes;
        *size_out = size;
    } else {
        free(bytes);
    }
    return CLI_OK;
}

/* Whether the file starts like a segment (1), not (0), or cannot be read. */
static int is_segment_file(const char *path, int *is_segment) {
    FILE *f = fopen(path, "rb");
    *is_segment = 0;
    if (!f) return CLI_OK; /* the reader that follows reports it */
    uint8_t head[16];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    *is_segment = cli_sniff("", head, n) == CLI_FORMAT_SEGMENT;
    return CLI_OK;
}

int cli_open_index(cli_args *args, const char *path, int quiet, shoal_index **out,
                   cli_records *records) {
    int seg;
    is_segment_file(path, &seg);
    if (seg) {
        /* Index options make no sense for a segment: say so. */
#define CLI__BUILD_ONLY(field, type, js, flag, applies, en, doc)                       \
    if (strcmp(flag, "simd") && strcmp(flag, "nprobe") && strcmp(flag, "rerank") &&      \
        cli_flag(args, flag)) {                                                          \
        cli_error("%s: --%s builds an index from a data file; %s is a segment, which "  \
                  "already has its parameters", args->command, flag, path);               \
        return CLI_USAGE;                                                                \
    }
        SHOAL_PARAM_LIST(CLI__BUILD_ONLY)
#undef CLI__BUILD_ONLY
        if (cli_flag(args, "format")) {
            cli_error("%s: --format applies to data files; %s is a segment", args->command, path);
            return CLI_USAGE;
        }
        int rc = cli_load_segment(path, out, NULL, NULL);
        if (rc) return rc;
        if (records) {
            memset(records, 0, sizeof *records);
            records->dim = shoal_index_dim(*out);
        }
        return CLI_OK;
    }
    cli_format fmt;
    int rc = cli_format_param(args, &fmt);
    if (rc) return rc;
    cli_records recs;
    if ((rc = cli_read_records(path, fmt, &recs))) return rc;
    rc = cli_make_index(args, path, &recs, quiet, 1, out);
    if (records && !rc) *records = recs;
    else cli_records_free(&recs);
    return rc;
}

int cli_extract_records(shoal_index *index, const char *source, cli_records *recs) {
    uint32_t dim = shoal_index_dim(index);
    if (recs->dim == 0) recs->dim = dim;
    float *v = malloc((size_t)dim * sizeof *v);
    if (!v) {
        cli_error("%s: out of memory", source);
        return CLI_INTERNAL;
    }
    uint32_t bound = shoal_index_label_bound(index);
    for (uint32_t label = 0; label < bound; label++) {
        const char *id;
        int len = shoal_index_label_id(index, label, &id);
        if (len < 0) continue;
        int rc = shoal_index_get(index, id, (uint32_t)len, v);
        if (rc == 0) rc = cli_records_push(recs, id, (uint32_t)len, v);
        /* Metadata and time too, so a filter gives the same answers. */
        const uint8_t *m;
        int64_t t;
        if (rc == 0 && shoal_index_metadata(index, label, &m) > 0) {
            char *text;
            size_t size;
            rc = shoal_index_metadata_json(index, 1, &label, &text, &size);
            if (rc == 0) {
                shoal_index_record_info(index, label, &t, NULL);
                rc = cli_records_annotate(recs, text + 1, size - 2, t);
                shoal_index_free_bytes(index, text);
            }
        } else if (rc == 0 && shoal_index_record_info(index, label, &t, NULL) == 0 &&
                   (t != SHOAL_TIME_NONE || recs->annotated)) {
            rc = cli_records_annotate(recs, NULL, 0, t);
        }
        if (rc < 0) {
            free(v);
            cli_error("%s: reading record %u: %s", source, label, shoal_strerror(rc));
            return cli_exit_of(rc);
        }
    }
    free(v);
    return CLI_OK;
}

/* Saves, names the CID, writes the file.  Prints the summary. */
static int save_index(shoal_index *index, const char *out_path, int zstd_level, int json,
                      const char *source_desc, double seconds) {
    shoal_save_params sp;
    shoal_save_params_init(&sp);
    sp.zstd_level = zstd_level;
    uint8_t *seg = NULL;
    size_t size = 0;
    int rc = shoal_index_save(index, &sp, &seg, &size);
    if (rc < 0) return core_failure(out_path, index, rc, "saving the segment");
    char cid[SHOAL_CID_SIZE];
    shoal_cid(seg, size, cid);
    cli_outfile o;
    if ((rc = cli_out_open(&o, out_path)) == CLI_OK && (rc = cli_out_write(&o, seg, size)) == CLI_OK)
        rc = cli_out_commit(&o);
    shoal_index_free_bytes(index, seg);
    if (rc) return rc;
    if (json) {
        printf("{\"out\":");
        json_write_string(stdout, out_path, strlen(out_path));
        printf(",\"kind\":\"%s\",\"metric\":\"%s\",\"dim\":%u,\"records\":%u,\"bytes\":%zu,"
               "\"zstd\":%d,\"cid\":\"%s\"}\n",
               shoal_kind_word(shoal_index_kind(index)), shoal_metric_word(shoal_index_metric(index)),
               shoal_index_dim(index), shoal_index_size(index), size, zstd_level, cid);
    } else {
        printf("wrote %s: %s, %s, %u records of dimension %u from %s, %zu bytes in %.2f s\n",
               out_path, shoal_kind_word(shoal_index_kind(index)),
               shoal_metric_word(shoal_index_metric(index)), shoal_index_size(index),
               shoal_index_dim(index), source_desc, size, seconds);
        printf("cid %s\n", cid);
    }
    return CLI_OK;
}

/* ------------------------------------------------------ build: collections */

/* The buffer's flush_records when the flag is absent (shoal.h: "default
 * 10000").  The CLI needs the number to cut its batches at flush points;
 * the core has no accessor for a collection's effective parameters. */
#define CLI_FLUSH_RECORDS_DEFAULT 10000u
/* Records per upsert at most (the progress bar moves per batch). */
#define CLI_BATCH_MAX 1024u

/* Records [from, from + n) of r as one batch. */
static void records_slice(const cli_records *r, uint32_t from, uint32_t n, shoal_records *b) {
    cli_records_batch(r, b);
    b->n = n;
    b->id_offsets = r->id_offsets + from; /* offsets are absolute: same bytes */
    b->vectors = r->vectors + (size_t)from * r->dim;
    if (r->annotated >= from + n) {
        b->metadata_offsets = r->meta_offsets + from;
        b->times = r->times + from;
    } else {
        b->metadata = NULL;
        b->metadata_offsets = NULL;
        b->times = NULL;
    }
}

/* flush_records of an open collection, from its manifest's config. */
static uint32_t manifest_flush_records(const cli_collection *cc) {
    cli_cbor m = cli_cbor_at(cc->manifest, cc->manifest_size);
    uint64_t v;
    if (cli_cbor_uint(cli_cbor_get(cli_cbor_get(m, "config"), "flushRecords"), &v) || v == 0 ||
        v > UINT32_MAX)
        return CLI_FLUSH_RECORDS_DEFAULT;
    return (uint32_t)v;
}

/*
 * Upserts the records into a new collection (cp, or the one in dir when
 * append), in batches cut where a flush falls due: after each batch a due
 * flush runs, then a tiered compaction; at the end a last flush, then the
 * version is committed and written.  The cuts depend only on the records
 * and flush_records, so every build makes the same segments.
 */
static int build_collection(cli_args *args, const char *dir, int append,
                            const shoal_collection_params *cp_in, cli_records *recs,
                            const char *input, int quiet, int json, double t0) {
    cli_collection cc;
    memset(&cc, 0, sizeof cc);
    shoal_collection *c = NULL;
    uint32_t flush_records;
    int rc;
    if (append) {
        shoal_simd simd = SHOAL_SIMD_AUTO;
        if ((rc = cli_simd_param(args, &simd)) || (rc = cli_lock_take(dir))) return rc;
        if ((rc = cli_collection_open(dir, NULL, 1, simd, quiet, &cc))) {
            cli_lock_release(dir);
            return rc;
        }
        c = cc.c;
        if (shoal_collection_dim(c) != recs->dim) {
            cli_error("%s: the records have dimension %u; the collection in %s has %u", input,
                      recs->dim, dir, shoal_collection_dim(c));
            cli_collection_close(&cc);
            cli_lock_release(dir);
            return CLI_DATA;
        }
        flush_records = manifest_flush_records(&cc);
    } else {
        shoal_collection_params cp = *cp_in;
        cp.small.dim = recs->dim;
        char msg[256] = "";
        cp.errmsg = msg;
        cp.errmsg_size = sizeof msg;
        int code = shoal_collection_new(&cp, &c);
        if (code < 0) {
            cli_error("%s: cannot create a collection of dimension %u: %s%s%s (%s)", dir, recs->dim,
                      shoal_strerror(code), *msg ? ": " : "", msg, shoal_error_name(code));
            return code == SHOAL_EPARAM ? CLI_USAGE : cli_exit_of(code);
        }
        flush_records = cp.flush_records ? cp.flush_records : CLI_FLUSH_RECORDS_DEFAULT;
    }
    cli_progress prog;
    cli_progress_start(&prog, "adding", quiet);
    rc = CLI_OK;
    for (uint32_t done = 0; done < recs->n && !rc;) {
        shoal_collection_stats st;
        shoal_collection_stats_get(c, &st);
        uint32_t room = flush_records > st.buffered ? flush_records - st.buffered : 1;
        uint32_t n = recs->n - done;
        if (n > room) n = room;
        if (n > CLI_BATCH_MAX) n = CLI_BATCH_MAX;
        if (recs->annotated > done && recs->annotated < done + n) n = recs->annotated - done;
        shoal_records batch;
        records_slice(recs, done, n, &batch);
        int code = shoal_collection_upsert(c, &batch);
        if (code < 0) {
            char doing[64];
            snprintf(doing, sizeof doing, "adding records %u..%u", done + 1, done + n);
            rc = cli_collection_failure(input, c, code, doing);
            break;
        }
        done += n;
        cli_progress_update(&prog, done, recs->n);
        if (shoal_collection_flush_due(c)) {
            code = shoal_collection_flush(c);
            if (code >= 0) code = shoal_collection_compact(c, 0, (int64_t)time(NULL) * 1000);
            if (code < 0) rc = cli_collection_failure(dir, c, code, "flushing the buffer");
        }
    }
    cli_progress_finish(&prog);
    if (!rc) {
        int code = shoal_collection_flush(c);
        if (code < 0) rc = cli_collection_failure(dir, c, code, "flushing the buffer");
    }
    /* A new collection: the folder, its lock, and -- with the lock held --
     * no root that another writer made meanwhile. */
    int locked = append;
    if (!rc && !append && !(rc = cli_collection_mkdirs(dir)) && !(rc = cli_lock_take(dir))) {
        locked = 1;
        if (cli_is_collection(dir)) {
            cli_error("build: %s holds a collection now (another process wrote it meanwhile)", dir);
            rc = CLI_USAGE;
        }
    }
    cli_saved saved;
    if (!rc) rc = cli_collection_save(dir, c, 0, &saved);
    /* The log's records are in the new version now. */
    if (!rc && cc.has_log) rc = cli_truncate_log(dir);
    if (!rc) {
        shoal_collection_stats st;
        shoal_collection_stats_get(c, &st);
        if (json) {
            printf("{\"collection\":");
            json_write_string(stdout, dir, strlen(dir));
            printf(",\"root\":\"%s\",\"records\":%u,\"segments\":%u,\"blocks\":%u,\"bytes\":%llu,"
                   "\"written\":%u}\n",
                   saved.root_text, st.size, st.segments, saved.blocks,
                   (unsigned long long)saved.bytes, saved.written);
        } else {
            printf("%s %s: %u records in %u segment%s (dimension %u, %s) from %s, %u blocks "
                   "(%u new), %llu bytes in %.2f s\n",
                   append ? "appended to" : "wrote", dir, st.size, st.segments,
                   st.segments == 1 ? "" : "s", shoal_collection_dim(c),
                   shoal_metric_word(shoal_collection_metric(c)), input, saved.blocks, saved.written,
                   (unsigned long long)saved.bytes, cli_now() - t0);
            printf("root %s\n", saved.root_text);
        }
    }
    if (append) cli_collection_close(&cc);
    else shoal_collection_free(c);
    if (locked) cli_lock_release(dir);
    return rc;
}

/* ----------------------------------------------------------------- build */

static const char BUILD_HELP[] =
    "usage: shoal build INPUT (--out FILE | --collection DIR) [options]\n"
    "\n"
    "Builds an index from a vector file and writes it as a segment (--out), or\n"
    "builds a collection folder (--collection), or both.\n"
    "INPUT is .fvecs, .bvecs, .npy (float32, C order) or JSONL (one\n"
    "{\"id\": ..., \"vector\": [...], \"metadata\": {...}, \"time\": ms} per line; metadata\n"
    "and time are optional and stored).  Binary formats have no ids: record i\n"
    "gets the id \"i\".\n"
    "\n"
    "  -o, --out FILE          segment to write; written to a temporary name and\n"
    "                          renamed, so a failure leaves no file\n"
    "      --collection DIR    collection folder to write: DIR/blocks/<cid> and\n"
    "                          DIR/root (created if missing; refused if DIR holds a\n"
    "                          collection already, unless --append)\n"
    "      --append            add the records to the collection in DIR (its own\n"
    "                          parameters apply; DIR/log is folded in and emptied)\n"
    "      --format F          auto (default), fvecs, bvecs, npy, jsonl\n"
    "      --zstd LEVEL        compress the --out segment's sections with zstd 1..19;\n"
    "                          0 (default) stores them raw, which lets readers view\n"
    "                          them zero-copy\n"
    "      --limit N           use only the first N records\n"
    "      --threads N         hnsw --out: search for neighbours on N threads while\n"
    "                          linking in batches (--build-batch, default 64 here);\n"
    "                          the same bytes for every N\n"
    "\n"
    "  index options (--out; for --collection the buffer and small segments, whose\n"
    "  kind is hnsw (default there) or flat):\n";

static const char BUILD_HELP_COLLECTION[] =
    "\n"
    "  collection options (--collection):\n";

static const char BUILD_HELP_TAIL[] =
    "\n"
    "      --json              print a JSON summary on stdout (one object per output)\n"
    "  -q, --quiet             no progress bar, no notes\n"
    "  -h, --help              this help\n"
    "\n"
    "examples: shoal build base.fvecs --kind hnsw --metric l2 --seed 1 --out base.seg\n"
    "          shoal build docs.jsonl --collection docs.coll --flush-records 50000\n";

int cli_cmd_build(int argc, char **argv) {
    cli_opt opts[] = {{"out", 'o', 1, NULL, 0},   {"collection", 0, 1, NULL, 0},
                      {"append", 0, 0, NULL, 0},  {"format", 0, 1, NULL, 0},
                      {"zstd", 0, 1, NULL, 0},    {"limit", 0, 1, NULL, 0},
                      {"json", 0, 0, NULL, 0},    {"quiet", 'q', 0, NULL, 0},
                      {"threads", 0, 1, NULL, 0},
                      CLI_INDEX_OPTS CLI_COLLECTION_OPTS {NULL, 0, 0, NULL, 0}};
    cli_args args;
    int rc = cli_parse(&args, opts, argc, argv);
    if (rc) goto out;
    if (args.help) {
        fputs(BUILD_HELP, stdout);
        cli_print_index_help(stdout, 0);
        fputs(BUILD_HELP_COLLECTION, stdout);
        cli_print_collection_help(stdout);
        fputs(BUILD_HELP_TAIL, stdout);
        goto out;
    }
    if (args.npos != 1) {
        cli_error("build: expected one input file, got %d (run 'shoal build --help')", args.npos);
        rc = CLI_USAGE;
        goto out;
    }
    const char *input = args.pos[0], *out_path = cli_str(&args, "out"),
               *dir = cli_str(&args, "collection"), *which;
    if (!out_path && !dir) {
        cli_error("build: --out FILE or --collection DIR is required (run 'shoal build --help')");
        rc = CLI_USAGE;
        goto out;
    }
    if (!dir && (cli_flag(&args, "append") || cli_collection_flag_given(&args, &which))) {
        cli_error("build: --%s applies to --collection DIR",
                  cli_flag(&args, "append") ? "append" : which);
        rc = CLI_USAGE;
        goto out;
    }
    if (!out_path && cli_flag(&args, "zstd")) {
        cli_error("build: --zstd compresses the --out segment; a collection's segments take "
                  "--zstd-level");
        rc = CLI_USAGE;
        goto out;
    }
    uint32_t zstd = 0, limit = UINT32_MAX;
    cli_format fmt;
    /* Every flag is checked before the (possibly long) read. */
    if ((rc = cli_u32(&args, "zstd", 0, 19, &zstd)) || (rc = cli_u32(&args, "limit", 1, UINT32_MAX, &limit)) ||
        (rc = cli_format_param(&args, &fmt)))
        goto out;
    if (out_path) {
        shoal_params check;
        shoal_params_init(&check);
        if ((rc = cli_index_params(&args, &check, 0))) goto out;
    }
    shoal_collection_params cp;
    shoal_collection_params_init(&cp);
    int append = 0;
    if (dir) {
        struct stat st;
        if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
            cli_error("build: %s exists and is not a directory", dir);
            rc = CLI_OUTPUT;
            goto out;
        }
        if (cli_is_collection(dir)) {
            uint8_t root[SHOAL_CID_BYTES];
            char text[SHOAL_CID_SIZE] = "";
            if (cli_read_root(dir, root, NULL) == CLI_OK) shoal_cid_format(root, text);
            if (!cli_flag(&args, "append")) {
                cli_error("build: %s holds a collection already (root %s); give --append to add "
                          "the records to it, or choose another folder",
                          dir, *text ? text : "unreadable");
                rc = CLI_USAGE;
                goto out;
            }
            append = 1;
            /* Its parameters are in its manifest. */
            const char *given = NULL;
#define CLI__NOT_ON_APPEND(field, type, js, flag, applies, en, doc)               \
    if (!given && strcmp(flag, "simd") && cli_flag(&args, flag)) given = flag;
            if (!out_path) {
                SHOAL_PARAM_LIST(CLI__NOT_ON_APPEND)
            }
#undef CLI__NOT_ON_APPEND
            if (!given) cli_collection_flag_given(&args, &given);
            if (given) {
                cli_error("build: --%s: the collection in %s has its parameters already (--append "
                          "adds records with them)",
                          given, dir);
                rc = CLI_USAGE;
                goto out;
            }
        } else {
            char *log = cli_path_join(dir, "log");
            struct stat ls;
            int stale = log && stat(log, &ls) == 0 && ls.st_size > 0;
            free(log);
            if (stale) {
                cli_error("build: %s/log holds writes but there is no %s/root: a new collection "
                          "would ignore them; move the log away first",
                          dir, dir);
                rc = CLI_USAGE;
                goto out;
            }
            if (cli_flag(&args, "append"))
                cli_note(cli_flag(&args, "quiet"), "%s holds no collection yet: --append creates one",
                         dir);
            cp.small.dim = 1; /* (the records' dimension, once read) */
            if ((rc = cli_collection_params(&args, &cp))) goto out;
        }
    }
    int quiet = cli_flag(&args, "quiet"), json = cli_flag(&args, "json");
    double t0 = cli_now();
    cli_records recs;
    if ((rc = cli_read_records(input, fmt, &recs))) goto out;
    if (recs.n > limit) {
        recs.n = limit;
        recs.id_len = recs.id_offsets[limit];
    }
    if (recs.other_fields)
        cli_note(quiet, "%s: %u records have fields other than id, vector, metadata and time; "
                        "they were ignored",
                 input, recs.other_fields);
    if (out_path) {
        shoal_index *index;
        rc = cli_make_index(&args, input, &recs, quiet, 0, &index);
        if (!rc) {
            rc = save_index(index, out_path, (int)zstd, json, input, cli_now() - t0);
            shoal_index_free(index);
        }
    }
    if (!rc && dir) rc = build_collection(&args, dir, append, &cp, &recs, input, quiet, json, t0);
    cli_records_free(&recs);
out:
    free(args.pos);
    return rc;
}

/* ----------------------------------------------------------------- merge */

static const char MERGE_HELP[] =
    "usage: shoal merge SEGMENT SEGMENT... --out FILE [options]\n"
    "\n"
    "Merges segments into one by rebuilding an index from all their records.\n"
    "A record in a later segment replaces one with the same id in an earlier\n"
    "segment.  All segments must have the same dimension and metric.\n"
    "Every index parameter defaults to the first segment's; flags override them.\n"
    "Records come back from the stored vectors: exact for flat, hnsw f32, ivf\n"
    "flat and sq8/pq with rerank copies; decoded approximations otherwise.\n"
    "\n"
    "  -o, --out FILE          segment to write (required)\n"
    "      --zstd LEVEL        as for build (default 0: uncompressed)\n"
    "\n";

static const char MERGE_HELP_TAIL[] =
    "      --json              print a JSON summary on stdout\n"
    "  -q, --quiet             no progress bar\n"
    "  -h, --help              this help\n"
    "\n"
    "example: shoal merge day1.seg day2.seg --out week.seg\n";

int cli_cmd_merge(int argc, char **argv) {
    cli_opt opts[] = {{"out", 'o', 1, NULL, 0},  {"zstd", 0, 1, NULL, 0},
                      {"json", 0, 0, NULL, 0},   {"quiet", 'q', 0, NULL, 0},
                      CLI_INDEX_OPTS             {NULL, 0, 0, NULL, 0}};
    cli_args args;
    shoal_index **sources = NULL;
    uint8_t **buffers = NULL;
    int loaded = 0;
    int rc = cli_parse(&args, opts, argc, argv);
    if (rc) goto out;
    if (args.help) {
        fputs(MERGE_HELP, stdout);
        cli_print_index_help(stdout, 0);
        fputs(MERGE_HELP_TAIL, stdout);
        goto out;
    }
    const char *out_path = cli_str(&args, "out");
    if (args.npos < 1 || !out_path) {
        cli_error("merge: expected segments and --out FILE (run 'shoal merge --help')");
        rc = CLI_USAGE;
        goto out;
    }
    uint32_t zstd = 0;
    if ((rc = cli_u32(&args, "zstd", 0, 19, &zstd))) goto out;
    int json = cli_flag(&args, "json");
    double t0 = cli_now();
    sources = calloc((size_t)args.npos, sizeof *sources);
    buffers = calloc((size_t)args.npos, sizeof *buffers);
    if (!sources || !buffers) {
        cli_error("merge: out of memory");
        rc = CLI_INTERNAL;
        goto out;
    }
    /* Every segment opened as a view (zero-copy where uncompressed); the
     * core does the merging (shoal_index_merge). */
    shoal_segment_summary first;
    uint64_t total = 0;
    for (int i = 0; i < args.npos; i++, loaded++) {
        size_t size;
        if ((rc = cli_read_file(args.pos[i], &buffers[i], &size))) goto out;
        shoal_load_params lp;
        shoal_load_params_init(&lp);
        char msg[256] = "";
        lp.errmsg = msg;
        lp.errmsg_size = sizeof msg;
        int code = shoal_index_view(buffers[i], size, &lp, &sources[i]);
        if (code < 0) {
            cli_error("%s: not a valid segment: %s%s%s (%s)", args.pos[i], shoal_strerror(code),
                      *msg ? ": " : "", msg, shoal_error_name(code));
            rc = cli_exit_of(code);
            goto out;
        }
        total += shoal_index_size(sources[i]);
        if (i == 0) {
            shoal_segment_info(buffers[i], size, &first);
        } else if (shoal_index_dim(sources[i]) != first.dim ||
                   shoal_index_metric(sources[i]) != first.metric) {
            /* The core refuses it too; here the message can name the file. */
            cli_error("%s: dimension %u and metric %s differ from %s's (%u, %s)", args.pos[i],
                      shoal_index_dim(sources[i]), shoal_metric_word(shoal_index_metric(sources[i])),
                      args.pos[0], first.dim, shoal_metric_word(first.metric));
            loaded++;
            rc = CLI_DATA;
            goto out;
        }
    }
    if (total == 0) {
        cli_error("merge: the segments hold no records");
        rc = CLI_DATA;
        goto out;
    }
    shoal_params p = first.params;
    /* nlist was chosen for the first segment's records; more lists than
     * merged records cannot be trained. */
    if (p.ivf.nlist > total) p.ivf.nlist = 0;
    if ((rc = cli_index_params(&args, &p, 0))) goto out;
    char msg[256] = "";
    p.errmsg = msg;
    p.errmsg_size = sizeof msg;
    shoal_index *index;
    int code = shoal_index_merge((const shoal_index *const *)sources, (uint32_t)args.npos, &p, &index);
    if (code < 0) {
        cli_error("merge: %s%s%s (%s)", shoal_strerror(code), *msg ? ": " : "", msg,
                  shoal_error_name(code));
        rc = code == SHOAL_EPARAM ? CLI_DATA : cli_exit_of(code);
        goto out;
    }
    char desc[64];
    snprintf(desc, sizeof desc, "%d segments", args.npos);
    rc = save_index(index, out_path, (int)zstd, json, desc, cli_now() - t0);
    shoal_index_free(index);
out:
    for (int i = 0; i < loaded; i++) {
        shoal_index_free(sources[i]);
        free(buffers[i]);
    }
    free(sources);
    free(buffers);
    free(args.pos);
    return rc;
}

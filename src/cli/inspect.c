/*
 * inspect.c -- `shoal info`, `shoal verify` and `shoal cid`: looking at
 * segments without changing them.
 *
 * info reads the header, section table and config through
 * shoal_segment_info and shoal_segment_sections (which verify their
 * checksums), then lists the sections grouped by kind with stored and raw
 * sizes, the IPFS block count and the CID.
 *
 * verify is the strict check a pipeline runs before shipping a segment:
 *   1. load -- header, table, every section's CRC-32C, every count, link,
 *      list and label (shoal_index_load validates everything it trusts);
 *   2. shoal_index_check -- the index's own invariants (HNSW: links valid
 *      and live, degrees in bounds, entry point live, every node
 *      reachable);
 *   3. for an uncompressed segment, save the loaded index again and
 *      compare: the format is canonical, so a faithful segment re-saves to
 *      the same bytes.  (Compressed segments do not record their zstd
 *      level, so this step is skipped for them and verify says so.)
 *
 * Both also take a collection folder (collection.c).  info opens it and
 * reads what it prints from the manifest (cbor.c) and the stats.  verify
 * walks the DAG from the root (every block present, <= SHOAL_BLOCK_MAX,
 * hashing to its name), opens the collection whole, and then -- since the
 * public API has no accessor for a segment's index -- puts each segment
 * together from its blocks and checks it as a standalone segment: load,
 * shoal_index_check, canonical re-save.
 *
 * cid prints the CIDv1 (raw codec, sha2-256, base32) of any file's bytes,
 * the same string Index.cid gives in JS.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The SHOAL_FIELD_* bits, in order. */
static const char *const type_words[6] = {"number", "string", "boolean", "null", "array", "object"};

static const char *quantizer_word(const shoal_segment_summary *s) {
    const char *w = shoal_quantizer_word(s->quantizer);
    return w ? w : "unknown";
}


/* ------------------------------------------------------------------ info */

typedef struct kind_group {
    const char *name;
    uint32_t kind, count, compressed;
    uint64_t stored, raw;
} kind_group;

static const char INFO_HELP[] =
    "usage: shoal info (SEGMENT | DIR)... [--json]\n"
    "\n"
    "Prints a segment's header (format version, features), index (kind,\n"
    "metric, dimension, records), sections grouped by kind with stored and raw\n"
    "sizes, IPFS block count and CID.  Checks the header, table and config\n"
    "checksums; 'shoal verify' checks everything.\n"
    "\n"
    "For a collection folder DIR: its root CID, records, next sequence number,\n"
    "parameters, the log, and each segment's kind, tier, records, live records,\n"
    "bytes, blocks and CID, and the blocks of the version (it opens the\n"
    "collection with every block, so missing or damaged blocks are exit 2).\n"
    "\n"
    "      --json              one JSON object per segment on stdout\n"
    "  -h, --help              this help\n";

static int info_collection(const char *dir, int json);

static int info_one(const char *path, int json) {
    if (cli_is_dir(path)) return info_collection(path, json);
    uint8_t *bytes;
    size_t size;
    int rc = cli_read_file(path, &bytes, &size);
    if (rc) return rc;
    shoal_segment_summary s;
    memset(&s, 0, sizeof s);
    int code = shoal_segment_info(bytes, size, &s);
    if (code < 0) {
        free(bytes);
        cli_error("%s: not a valid segment: %s%s%s (%s)", path, shoal_strerror(code),
                  *s.message ? ": " : "", s.message, shoal_error_name(code));
        return cli_exit_of(code);
    }
    int nblocks = shoal_segment_blocks(bytes, size, NULL, 0);
    char cid[SHOAL_CID_SIZE];
    shoal_cid(bytes, size, cid);
    /* Group the section table by kind, in order of first appearance. */
    kind_group groups[32];
    uint32_t ngroups = 0;
    shoal_section_info *table = malloc((size_t)s.sections * sizeof *table);
    if (!table) {
        free(bytes);
        cli_error("%s: out of memory", path);
        return CLI_INTERNAL;
    }
    shoal_segment_sections(bytes, size, table, s.sections);
    for (uint32_t i = 0; i < s.sections; i++) {
        uint32_t g = 0;
        while (g < ngroups && groups[g].kind != table[i].kind) g++;
        if (g == ngroups) {
            if (ngroups == sizeof groups / sizeof *groups) continue;
            memset(&groups[g], 0, sizeof groups[g]);
            groups[g].kind = table[i].kind;
            groups[g].name = table[i].name;
            ngroups++;
        }
        groups[g].count++;
        groups[g].compressed += table[i].codec != 0;
        groups[g].stored += table[i].stored;
        groups[g].raw += table[i].raw;
    }
    free(table);
    /* The metadata fields, from a view of the whole segment (zero-copy
     * where uncompressed), when it has metadata. */
    int has_meta = 0;
    for (uint32_t g = 0; g < ngroups; g++) has_meta |= groups[g].kind == 0x80000004u;
    shoal_index *view = NULL;
    shoal_field_info fields[64];
    int nfields = 0;
    shoal_stats st;
    memset(&st, 0, sizeof st);
    if (has_meta && shoal_index_view(bytes, size, NULL, &view) == SHOAL_OK) {
        nfields = shoal_index_metadata_fields(view, fields, 64);
        shoal_index_stats(view, &st);
    }
    if (nfields > 64) nfields = 64;
    if (json) {
        printf("{\"file\":");
        json_write_string(stdout, path, strlen(path));
        printf(",\"format\":\"%u.%u\",\"required_features\":%llu,\"optional_features\":%llu,"
               "\"kind\":\"%s\",\"metric\":\"%s\",\"dim\":%u,\"records\":%u,\"label_bound\":%u,"
               "\"quantizer\":\"%s\",\"nlist\":%u,\"rerank\":%u,\"build_batch\":%u,"
               "\"bytes\":%llu,\"head_bytes\":%llu,"
               "\"compressed_sections\":%u,\"blocks\":%d,\"cid\":\"%s\",\"sections\":[",
               s.format_major, s.format_minor, (unsigned long long)s.required_features,
               (unsigned long long)s.optional_features, shoal_kind_word(s.kind),
               shoal_metric_word(s.metric), s.dim, s.size, s.label_bound, quantizer_word(&s), s.nlist,
               s.params.rerank, s.params.hnsw.build_batch, (unsigned long long)s.segment_size, (unsigned long long)s.head_size, s.compressed,
               nblocks, cid);
        for (uint32_t g = 0; g < ngroups; g++)
            printf("%s{\"kind\":\"%s\",\"count\":%u,\"zstd\":%u,\"stored\":%llu,\"raw\":%llu}",
                   g ? "," : "", groups[g].name, groups[g].count,
                   groups[g].compressed, (unsigned long long)groups[g].stored,
                   (unsigned long long)groups[g].raw);
        printf("],\"with_metadata\":%u,\"metadata_bytes\":%zu,\"fields\":[", st.with_metadata,
               st.metadata_bytes);
        for (int f = 0; f < nfields; f++) {
            printf("%s{\"name\":", f ? "," : "");
            json_write_string(stdout, fields[f].name, fields[f].name_len);
            printf(",\"count\":%u,\"types\":[", fields[f].count);
            int first = 1;
            for (int b = 0; b < 6; b++)
                if (fields[f].types & (1u << b)) {
                    printf("%s\"%s\"", first ? "" : ",", type_words[b]);
                    first = 0;
                }
            printf("]}");
        }
        printf("]}\n");
    } else {
        printf("%s\n", path);
        printf("  format     %u.%u (required features 0x%llx, optional 0x%llx)\n", s.format_major,
               s.format_minor, (unsigned long long)s.required_features,
               (unsigned long long)s.optional_features);
        printf("  index      %s, %s, quantizer %s", shoal_kind_word(s.kind), shoal_metric_word(s.metric),
               quantizer_word(&s));
        if (s.kind == SHOAL_KIND_IVF) printf(", nlist %u", s.nlist);
        if (s.params.rerank) printf(", rerank %u", s.params.rerank);
        if (s.params.hnsw.build_batch) printf(", build batch %u", s.params.hnsw.build_batch);
        printf("\n  records    %u of dimension %u (label bound %u)\n", s.size, s.dim, s.label_bound);
        printf("  size       %llu bytes (head %llu)\n", (unsigned long long)s.segment_size,
               (unsigned long long)s.head_size);
        printf("  sections   %u (%u compressed with zstd)\n", s.sections, s.compressed);
        for (uint32_t g = 0; g < ngroups; g++) {
            printf("    %-20s", groups[g].name);
            if (groups[g].count > 1) printf(" x%-6u", groups[g].count);
            else printf("        ");
            printf(" %12llu bytes", (unsigned long long)groups[g].stored);
            if (groups[g].compressed)
                printf(" (raw %llu, %u zstd)", (unsigned long long)groups[g].raw,
                       groups[g].compressed);
            printf("\n");
        }
        if (has_meta) {
            printf("  metadata   %u records, %zu bytes; fields:\n", st.with_metadata, st.metadata_bytes);
            for (int f = 0; f < nfields; f++) {
                printf("    %-20.*s %8u records  ", (int)fields[f].name_len, fields[f].name,
                       fields[f].count);
                int first = 1;
                for (int b = 0; b < 6; b++)
                    if (fields[f].types & (1u << b)) {
                        printf("%s%s", first ? "" : ", ", type_words[b]);
                        first = 0;
                    }
                printf("\n");
            }
        }
        printf("  blocks     %d (IPFS blocks of at most %u bytes)\n", nblocks, SHOAL_BLOCK_MAX);
        printf("  cid        %s\n", cid);
    }
    shoal_index_free(view);
    free(bytes);
    return CLI_OK;
}

int cli_cmd_info(int argc, char **argv) {
    cli_opt opts[] = {{"json", 0, 0, NULL, 0}, {NULL, 0, 0, NULL, 0}};
    cli_args args;
    int rc = cli_parse(&args, opts, argc, argv);
    if (rc || args.help) {
        if (!rc) fputs(INFO_HELP, stdout);
        free(args.pos);
        return rc;
    }
    if (args.npos < 1) {
        cli_error("info: expected one or more segments (run 'shoal info --help')");
        free(args.pos);
        return CLI_USAGE;
    }
    int worst = CLI_OK;
    for (int i = 0; i < args.npos; i++) {
        int r = info_one(args.pos[i], cli_flag(&args, "json"));
        if (r && !worst) worst = r;
    }
    free(args.pos);
    return worst;
}

/* ----------------------------------------------------------- collections */

static int segment_problem(const uint8_t *bytes, size_t size, char *problem, size_t cap,
                           shoal_index **index, const char **canonical);

typedef struct dag_count {
    uint32_t blocks;
    uint64_t bytes;
} dag_count;

static int count_block(void *ctx, const uint8_t cid[SHOAL_CID_BYTES], const uint8_t *bytes,
                       size_t size) {
    (void)cid;
    (void)bytes;
    dag_count *n = ctx;
    n->blocks++;
    n->bytes += size;
    return CLI_OK;
}

static void print_range(cli_cbor v, int json) {
    int64_t lo, hi;
    if (cli_cbor_int(cli_cbor_index(v, 0), &lo) || cli_cbor_int(cli_cbor_index(v, 1), &hi)) {
        fputs(json ? "null" : "-", stdout);
        return;
    }
    if (json) printf("[%lld,%lld]", (long long)lo, (long long)hi);
    else printf("%lld..%lld", (long long)lo, (long long)hi);
}

static const char *text_of(cli_cbor v, char *buf, size_t cap) {
    const char *t;
    size_t len;
    if (cli_cbor_text(v, &t, &len)) return "?";
    snprintf(buf, cap, "%.*s", (int)len, t);
    return buf;
}

static uint64_t uint_of(cli_cbor v) {
    uint64_t n = 0;
    cli_cbor_uint(v, &n);
    return n;
}

/* One line of the index parameters a manifest keeps for small or large. */
static void print_params(cli_cbor p) {
    char kind[16], q[16];
    text_of(cli_cbor_get(p, "kind"), kind, sizeof kind);
    printf("%s, quantizer %s", kind, text_of(cli_cbor_get(p, "quantizer"), q, sizeof q));
    if (!strcmp(kind, "hnsw"))
        printf(", M %llu, ef-construction %llu, ef-search %llu",
               (unsigned long long)uint_of(cli_cbor_get(p, "M")),
               (unsigned long long)uint_of(cli_cbor_get(p, "efConstruction")),
               (unsigned long long)uint_of(cli_cbor_get(p, "efSearch")));
    if (!strcmp(kind, "ivf")) {
        printf(", nlist %llu, nprobe %llu", (unsigned long long)uint_of(cli_cbor_get(p, "nlist")),
               (unsigned long long)uint_of(cli_cbor_get(p, "nprobe")));
        if (!strcmp(q, "pq"))
            printf(", pq-m %llu, pq-bits %llu", (unsigned long long)uint_of(cli_cbor_get(p, "pqM")),
                   (unsigned long long)uint_of(cli_cbor_get(p, "pqBits")));
    }
    if (uint_of(cli_cbor_get(p, "rerank")))
        printf(", rerank %llu", (unsigned long long)uint_of(cli_cbor_get(p, "rerank")));
    printf(" (0 = default)\n");
}

static int info_collection(const char *dir, int json) {
    cli_collection cc;
    int rc = cli_collection_open(dir, NULL, 1, SHOAL_SIMD_AUTO, 0, &cc);
    if (rc) return rc;
    shoal_collection_stats st;
    shoal_collection_stats_get(cc.c, &st);
    cli_cbor m = cli_cbor_at(cc.manifest, cc.manifest_size);
    cli_cbor segs = cli_cbor_get(m, "segments"), config = cli_cbor_get(m, "config");
    uint32_t nsegs = cli_cbor_count(segs);
    /* Blocks per segment: its DAG (node, parts, blocks) and its tombstones. */
    dag_count *per = calloc(nsegs ? nsegs : 1, sizeof *per);
    if (!per) {
        cli_collection_close(&cc);
        cli_error("out of memory");
        return CLI_INTERNAL;
    }
    for (uint32_t i = 0; i < nsegs && !rc; i++) {
        uint8_t link[SHOAL_CID_BYTES];
        cli_cbor e = cli_cbor_index(segs, i);
        if (!cli_cbor_link(cli_cbor_get(e, "segment"), link))
            rc = cli_dag_walk(dir, link, 0, count_block, &per[i]);
        if (!cli_cbor_link(cli_cbor_get(e, "tombstones"), link)) per[i].blocks++;
    }
    uint32_t version_blocks = 0;
    uint64_t version_bytes = 0;
    shoal_block_ref ref;
    for (uint32_t i = 0; shoal_collection_block(cc.c, i, &ref) == SHOAL_OK; i++) {
        version_blocks++;
        version_bytes += ref.size;
    }
    uint8_t prev[SHOAL_CID_BYTES];
    char prev_text[SHOAL_CID_SIZE] = "";
    if (!cli_cbor_link(cli_cbor_get(m, "prev"), prev)) shoal_cid_format(prev, prev_text);
    if (rc) goto done;
    char word[32];
    if (json) {
        printf("{\"collection\":");
        json_write_string(stdout, dir, strlen(dir));
        printf(",\"root\":\"%s\",\"dim\":%u,\"metric\":\"%s\",\"records\":%u,\"buffered\":%u,"
               "\"segments\":%u,\"tombstones\":%u,\"next_seq\":%llu,\"blocks\":%u,\"bytes\":%llu,"
               "\"segment_bytes\":%llu,\"prev\":",
               cc.root_text, shoal_collection_dim(cc.c),
               shoal_metric_word(shoal_collection_metric(cc.c)), st.size, st.buffered, st.segments,
               st.tombstones, (unsigned long long)st.next_seq, version_blocks,
               (unsigned long long)version_bytes, (unsigned long long)st.segment_bytes);
        if (*prev_text) printf("\"%s\"", prev_text);
        else printf("null");
        printf(",\"log\":");
        if (cc.has_log)
            printf("{\"bytes\":%llu,\"records\":%u,\"skipped\":%u,\"written\":%u,\"deleted\":%u,"
                   "\"torn\":%s}",
                   (unsigned long long)cc.log_size, cc.log.records, cc.log.skipped, cc.log.written,
                   cc.log.deleted, cc.log.torn ? "true" : "false");
        else
            printf("null");
        printf(",\"config\":");
        cli_cbor_json(stdout, config);
        printf(",\"segment_list\":[");
        for (uint32_t i = 0; i < nsegs; i++) {
            cli_cbor e = cli_cbor_index(segs, i);
            uint8_t link[SHOAL_CID_BYTES];
            char cid[SHOAL_CID_SIZE] = "";
            if (!cli_cbor_link(cli_cbor_get(e, "segment"), link)) shoal_cid_format(link, cid);
            printf("%s{\"kind\":\"%s\"", i ? "," : "", text_of(cli_cbor_get(e, "kind"), word, sizeof word));
            printf(",\"tier\":\"%s\",\"records\":%llu,\"live\":%llu,\"bytes\":%llu,\"blocks\":%u,"
                   "\"seqs\":",
                   text_of(cli_cbor_get(e, "tier"), word, sizeof word),
                   (unsigned long long)uint_of(cli_cbor_get(e, "records")),
                   (unsigned long long)uint_of(cli_cbor_get(e, "live")),
                   (unsigned long long)uint_of(cli_cbor_get(e, "bytes")), per[i].blocks);
            print_range(cli_cbor_get(e, "seqs"), 1);
            printf(",\"times\":");
            print_range(cli_cbor_get(e, "times"), 1);
            printf(",\"cid\":\"%s\",\"tombstones\":", cid);
            if (!cli_cbor_link(cli_cbor_get(e, "tombstones"), link)) {
                shoal_cid_format(link, cid);
                printf("\"%s\"}", cid);
            } else {
                printf("null}");
            }
        }
        printf("]}\n");
    } else {
        printf("%s\n", dir);
        printf("  root       %s\n", cc.root_text);
        printf("  records    %u of dimension %u, %s (next sequence number %llu)\n", st.size,
               shoal_collection_dim(cc.c), shoal_metric_word(shoal_collection_metric(cc.c)),
               (unsigned long long)st.next_seq);
        if (cc.has_log && !cc.log_size)
            printf("  log        empty\n");
        else if (cc.has_log)
            printf("  log        %llu bytes: %u log records (%u already in the root): %u records "
                   "upserted, %u deleted%s; %u in the buffer, not yet in a segment\n",
                   (unsigned long long)cc.log_size, cc.log.records, cc.log.skipped, cc.log.written,
                   cc.log.deleted, cc.log.torn ? "; a torn tail ignored" : "", st.buffered);
        printf("  small      ");
        print_params(cli_cbor_get(config, "small"));
        printf("  large      ");
        print_params(cli_cbor_get(config, "large"));
        printf("  policy     large-from %llu, flush-records %llu, flush-bytes %llu, merge-factor %llu,"
               " recent-ms %llu, zstd-level %llu\n",
               (unsigned long long)uint_of(cli_cbor_get(config, "largeFrom")),
               (unsigned long long)uint_of(cli_cbor_get(config, "flushRecords")),
               (unsigned long long)uint_of(cli_cbor_get(config, "flushBytes")),
               (unsigned long long)uint_of(cli_cbor_get(config, "mergeFactor")),
               (unsigned long long)uint_of(cli_cbor_get(config, "recentMs")),
               (unsigned long long)uint_of(cli_cbor_get(config, "zstdLevel")));
        printf("  segments   %u, %llu bytes, %u tombstones\n", st.segments,
               (unsigned long long)st.segment_bytes, st.tombstones);
        if (nsegs)
            printf("    %-4s %-5s %-6s %9s %9s %12s %7s  %s\n", "#", "kind", "tier", "records", "live",
                   "bytes", "blocks", "cid");
        for (uint32_t i = 0; i < nsegs; i++) {
            cli_cbor e = cli_cbor_index(segs, i);
            uint8_t link[SHOAL_CID_BYTES];
            char cid[SHOAL_CID_SIZE] = "?", tier[16];
            if (!cli_cbor_link(cli_cbor_get(e, "segment"), link)) shoal_cid_format(link, cid);
            printf("    %-4u %-5s %-6s %9llu %9llu %12llu %7u  %s\n", i,
                   text_of(cli_cbor_get(e, "kind"), word, sizeof word),
                   text_of(cli_cbor_get(e, "tier"), tier, sizeof tier),
                   (unsigned long long)uint_of(cli_cbor_get(e, "records")),
                   (unsigned long long)uint_of(cli_cbor_get(e, "live")),
                   (unsigned long long)uint_of(cli_cbor_get(e, "bytes")), per[i].blocks, cid);
        }
        printf("  blocks     %u in this version, %llu bytes (IPFS blocks of at most %u bytes)\n",
               version_blocks, (unsigned long long)version_bytes, SHOAL_BLOCK_MAX);
        printf("  previous   %s\n", *prev_text ? prev_text : "none (no history)");
    }
done:
    free(per);
    cli_collection_close(&cc);
    return rc;
}

/* verify DIR: the DAG, the collection, every segment. */
static int verify_collection(const char *dir, int json) {
    cli_collection cc;
    memset(&cc, 0, sizeof cc);
    uint8_t root[SHOAL_CID_BYTES];
    char root_text[SHOAL_CID_SIZE] = "";
    char problem[600] = "";
    dag_count reach = {0, 0};
    uint32_t nsegs = 0, version_blocks = 0;
    int exists, rc = cli_read_root(dir, root, &exists);
    if (rc && !exists) cli_error("%s: not a collection: there is no %s/root", dir, dir);
    if (!rc) shoal_cid_format(root, root_text);
    /* 1. Every block reachable from the root (history included): present,
     *    at most SHOAL_BLOCK_MAX, hashing to its name; DAG-CBOR ones with
     *    valid links. */
    if (!rc) rc = cli_dag_walk(dir, root, 1, count_block, &reach);
    /* 2. The collection opens whole: the manifest against its schema, each
     *    segment as a view (every section's checksum and structure) with
     *    its entry's counts, tombstones; the log applies. */
    if (!rc) rc = cli_collection_open(dir, root, 1, SHOAL_SIMD_AUTO, 0, &cc);
    /* 3. Each segment as a standalone segment: loaded, its invariants
     *    checked (shoal_index_check) and re-saved to the same bytes. */
    if (!rc) {
        cli_cbor m = cli_cbor_at(cc.manifest, cc.manifest_size);
        cli_cbor segs = cli_cbor_get(m, "segments");
        nsegs = cli_cbor_count(segs);
        shoal_block_ref ref;
        while (shoal_collection_block(cc.c, version_blocks, &ref) == SHOAL_OK) version_blocks++;
        for (uint32_t i = 0; i < nsegs && !rc; i++) {
            cli_cbor e = cli_cbor_index(segs, i);
            uint8_t link[SHOAL_CID_BYTES];
            uint8_t *bytes = NULL;
            size_t size = 0;
            if (cli_cbor_link(cli_cbor_get(e, "segment"), link)) {
                cli_error("%s: segment %u has no segment link", dir, i);
                rc = CLI_DATA;
                break;
            }
            if ((rc = cli_segment_bytes(dir, link, &bytes, &size))) break;
            shoal_index *index = NULL;
            const char *canonical;
            char seg_problem[400];
            int code = segment_problem(bytes, size, seg_problem, sizeof seg_problem, &index,
                                       &canonical);
            uint64_t want_bytes = uint_of(cli_cbor_get(e, "bytes"));
            uint64_t want_records = uint_of(cli_cbor_get(e, "records"));
            if (code < 0) {
                cli_error("%s: segment %u: %s", dir, i, seg_problem);
                rc = code == SHOAL_ENOMEM ? CLI_INTERNAL : CLI_DATA;
            } else if (size != want_bytes || shoal_index_size(index) != want_records) {
                cli_error("%s: segment %u: %zu bytes and %u records; its manifest entry says %llu "
                          "and %llu",
                          dir, i, size, shoal_index_size(index), (unsigned long long)want_bytes,
                          (unsigned long long)want_records);
                rc = CLI_DATA;
            }
            shoal_index_free(index);
            free(bytes);
        }
    }
    if (rc) snprintf(problem, sizeof problem, "%s", cli_last_error());
    shoal_collection_stats st;
    memset(&st, 0, sizeof st);
    if (cc.c) shoal_collection_stats_get(cc.c, &st);
    if (json) {
        printf("{\"collection\":");
        json_write_string(stdout, dir, strlen(dir));
        printf(",\"ok\":%s", rc ? "false" : "true");
        if (rc) {
            printf(",\"problem\":");
            json_write_string(stdout, problem, strlen(problem));
        } else {
            printf(",\"records\":%u,\"segments\":%u,\"blocks\":%u,\"bytes\":%llu,"
                   "\"version_blocks\":%u,\"log_records\":%u,\"log_torn\":%s",
                   st.size, nsegs, reach.blocks, (unsigned long long)reach.bytes, version_blocks,
                   cc.log.records, cc.log.torn ? "true" : "false");
        }
        printf(",\"root\":\"%s\"}\n", root_text);
    } else if (rc) {
        printf("FAIL %s: %s\n", dir, problem);
    } else {
        printf("ok   %s: root %s, %u records in %u segment%s; %u blocks reachable from the root "
               "(%u in this version), %llu bytes: all present, at most %u bytes and matching their "
               "CIDs; opens whole (views check every section)%s; each segment loads, passes its "
               "invariants and re-saves canonically\n",
               dir, root_text, st.size, nsegs, nsegs == 1 ? "" : "s", reach.blocks, version_blocks,
               (unsigned long long)reach.bytes, SHOAL_BLOCK_MAX,
               cc.has_log ? " with its log" : "");
    }
    cli_collection_close(&cc);
    return rc;
}

/* ---------------------------------------------------------------- verify */

static const char VERIFY_HELP[] =
    "usage: shoal verify (SEGMENT | DIR)... [--json]\n"
    "\n"
    "Checks segments completely: header, table and every section's checksum,\n"
    "every count, link, list and label (by loading); the index invariants (HNSW:\n"
    "links valid and live, degrees in bounds, every node reachable); and, for\n"
    "uncompressed segments, that re-saving gives back the same bytes.\n"
    "\n"
    "For a collection folder DIR: every block reachable from DIR/root (earlier\n"
    "versions included) is present, at most 1 MiB and hashes to its name; the\n"
    "collection opens with every block (manifest schema, each segment's sections\n"
    "and checksums, tombstones) and its log applies; and each segment, put\n"
    "together from its blocks, passes the segment checks above.\n"
    "Exit code 0 if all are good, 2 if any is not.\n"
    "\n"
    "      --json              one JSON object per segment on stdout\n"
    "  -h, --help              this help\n";

/* Checks a segment's bytes completely: load, invariants, canonical re-save
 * (uncompressed only).  Returns 0 with *index loaded, or a code with
 * problem filled (*index may still be set; the caller frees it). */
static int segment_problem(const uint8_t *bytes, size_t size, char *problem, size_t cap,
                           shoal_index **index, const char **canonical) {
    shoal_segment_summary s;
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    char msg[256] = "";
    lp.errmsg = msg;
    lp.errmsg_size = sizeof msg;
    *index = NULL;
    *canonical = "skipped (compressed)";
    problem[0] = '\0';
    int code = shoal_segment_info(bytes, size, &s);
    if (code == 0) code = shoal_index_load(bytes, size, &lp, index);
    if (code < 0) {
        snprintf(problem, cap, "%s%s%s (%s)", shoal_strerror(code), *msg ? ": " : "", msg,
                 shoal_error_name(code));
    } else if ((code = shoal_index_check(*index)) < 0) {
        snprintf(problem, cap, "invariant broken: %s (%s)", shoal_index_errmsg(*index),
                 shoal_error_name(code));
    } else if (s.compressed == 0) {
        uint8_t *again;
        size_t again_size;
        code = shoal_index_save(*index, NULL, &again, &again_size);
        if (code < 0) {
            snprintf(problem, cap, "re-saving failed: %s", shoal_strerror(code));
        } else {
            if (again_size != size || memcmp(again, bytes, size)) {
                size_t at = 0;
                while (at < size && at < again_size && again[at] == bytes[at]) at++;
                snprintf(problem, cap,
                         "not canonical: re-saving gives %zu bytes that differ from byte %zu",
                         again_size, at);
                code = SHOAL_ECORRUPT;
            }
            *canonical = "ok";
            shoal_index_free_bytes(*index, again);
        }
    }
    return code < 0 ? code : 0;
}

static int verify_one(const char *path, int json) {
    if (cli_is_dir(path)) return verify_collection(path, json);
    uint8_t *bytes;
    size_t size;
    int rc = cli_read_file(path, &bytes, &size);
    if (rc) return rc;
    shoal_index *index = NULL;
    char problem[400] = "";
    const char *canonical;
    int code = segment_problem(bytes, size, problem, sizeof problem, &index, &canonical);
    char cid[SHOAL_CID_SIZE];
    shoal_cid(bytes, size, cid);
    if (json) {
        printf("{\"file\":");
        json_write_string(stdout, path, strlen(path));
        printf(",\"ok\":%s", *problem ? "false" : "true");
        if (*problem) {
            printf(",\"problem\":");
            json_write_string(stdout, problem, strlen(problem));
        } else {
            printf(",\"kind\":\"%s\",\"records\":%u,\"canonical\":\"%s\"",
                   shoal_kind_word(shoal_index_kind(index)), shoal_index_size(index), canonical);
        }
        printf(",\"cid\":\"%s\"}\n", cid);
    } else if (*problem) {
        printf("FAIL %s: %s\n", path, problem);
    } else {
        printf("ok   %s: %s, %u records, checksums, structure and invariants good, re-save %s, cid "
               "%s\n",
               path, shoal_kind_word(shoal_index_kind(index)), shoal_index_size(index), canonical, cid);
    }
    if (*problem) cli_error("%s: verification failed: %s", path, problem);
    shoal_index_free(index);
    free(bytes);
    return *problem ? (code == SHOAL_ENOMEM ? CLI_INTERNAL : CLI_DATA) : CLI_OK;
}

int cli_cmd_verify(int argc, char **argv) {
    cli_opt opts[] = {{"json", 0, 0, NULL, 0}, {NULL, 0, 0, NULL, 0}};
    cli_args args;
    int rc = cli_parse(&args, opts, argc, argv);
    if (rc || args.help) {
        if (!rc) fputs(VERIFY_HELP, stdout);
        free(args.pos);
        return rc;
    }
    if (args.npos < 1) {
        cli_error("verify: expected one or more segments (run 'shoal verify --help')");
        free(args.pos);
        return CLI_USAGE;
    }
    int worst = CLI_OK;
    for (int i = 0; i < args.npos; i++) {
        int r = verify_one(args.pos[i], cli_flag(&args, "json"));
        if (r && !worst) worst = r;
    }
    free(args.pos);
    return worst;
}

/* ------------------------------------------------------------------- cid */

static const char CID_HELP[] =
    "usage: shoal cid FILE... [--json]\n"
    "\n"
    "Prints the CID of each file's bytes: CIDv1, raw codec, sha2-256, base32\n"
    "(\"bafkrei...\"), as IPFS would address it and as Index.cid reports in JS.\n"
    "Works on any file; for segments it is the identity to publish.\n"
    "\n"
    "      --json              one JSON object per file on stdout\n"
    "  -h, --help              this help\n";

int cli_cmd_cid(int argc, char **argv) {
    cli_opt opts[] = {{"json", 0, 0, NULL, 0}, {NULL, 0, 0, NULL, 0}};
    cli_args args;
    int rc = cli_parse(&args, opts, argc, argv);
    if (rc || args.help) {
        if (!rc) fputs(CID_HELP, stdout);
        free(args.pos);
        return rc;
    }
    if (args.npos < 1) {
        cli_error("cid: expected one or more files (run 'shoal cid --help')");
        free(args.pos);
        return CLI_USAGE;
    }
    int worst = CLI_OK;
    for (int i = 0; i < args.npos; i++) {
        uint8_t *bytes;
        size_t size;
        int r = cli_read_file(args.pos[i], &bytes, &size);
        if (r) {
            if (!worst) worst = r;
            continue;
        }
        char cid[SHOAL_CID_SIZE];
        shoal_cid(bytes, size, cid);
        free(bytes);
        if (cli_flag(&args, "json")) {
            printf("{\"file\":");
            json_write_string(stdout, args.pos[i], strlen(args.pos[i]));
            printf(",\"bytes\":%zu,\"cid\":\"%s\"}\n", size, cid);
        } else {
            printf("%s  %s\n", cid, args.pos[i]);
        }
    }
    free(args.pos);
    return worst;
}

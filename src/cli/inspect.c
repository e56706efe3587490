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
    "usage: shoal info SEGMENT... [--json]\n"
    "\n"
    "Prints a segment's header (format version, features), index (kind,\n"
    "metric, dimension, records), sections grouped by kind with stored and raw\n"
    "sizes, IPFS block count and CID.  Checks the header, table and config\n"
    "checksums; 'shoal verify' checks everything.\n"
    "\n"
    "      --json              one JSON object per segment on stdout\n"
    "  -h, --help              this help\n";

static int info_one(const char *path, int json) {
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
               "\"quantizer\":\"%s\",\"nlist\":%u,\"bytes\":%llu,\"head_bytes\":%llu,"
               "\"compressed_sections\":%u,\"blocks\":%d,\"cid\":\"%s\",\"sections\":[",
               s.format_major, s.format_minor, (unsigned long long)s.required_features,
               (unsigned long long)s.optional_features, shoal_kind_word(s.kind),
               shoal_metric_word(s.metric), s.dim, s.size, s.label_bound, quantizer_word(&s), s.nlist,
               (unsigned long long)s.segment_size, (unsigned long long)s.head_size, s.compressed,
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

/* ---------------------------------------------------------------- verify */

static const char VERIFY_HELP[] =
    "usage: shoal verify SEGMENT... [--json]\n"
    "\n"
    "Checks segments completely: header, table and every section's checksum,\n"
    "every count, link, list and label (by loading); the index invariants (HNSW:\n"
    "links valid and live, degrees in bounds, every node reachable); and, for\n"
    "uncompressed segments, that re-saving gives back the same bytes.\n"
    "Exit code 0 if all are good, 2 if any is not.\n"
    "\n"
    "      --json              one JSON object per segment on stdout\n"
    "  -h, --help              this help\n";

static int verify_one(const char *path, int json) {
    uint8_t *bytes;
    size_t size;
    int rc = cli_read_file(path, &bytes, &size);
    if (rc) return rc;
    shoal_segment_summary s;
    shoal_index *index = NULL;
    char problem[400] = "";
    const char *canonical = "skipped (compressed)";
    shoal_load_params lp;
    shoal_load_params_init(&lp);
    char msg[256] = "";
    lp.errmsg = msg;
    lp.errmsg_size = sizeof msg;
    int code = shoal_segment_info(bytes, size, &s);
    if (code == 0) code = shoal_index_load(bytes, size, &lp, &index);
    if (code < 0) {
        snprintf(problem, sizeof problem, "%s%s%s (%s)", shoal_strerror(code), *msg ? ": " : "",
                 msg, shoal_error_name(code));
    } else if ((code = shoal_index_check(index)) < 0) {
        snprintf(problem, sizeof problem, "invariant broken: %s (%s)", shoal_index_errmsg(index),
                 shoal_error_name(code));
    } else if (s.compressed == 0) {
        uint8_t *again;
        size_t again_size;
        code = shoal_index_save(index, NULL, &again, &again_size);
        if (code < 0) {
            snprintf(problem, sizeof problem, "re-saving failed: %s", shoal_strerror(code));
        } else {
            if (again_size != size || memcmp(again, bytes, size)) {
                size_t at = 0;
                while (at < size && at < again_size && again[at] == bytes[at]) at++;
                snprintf(problem, sizeof problem,
                         "not canonical: re-saving gives %zu bytes that differ from byte %zu", again_size,
                         at);
                code = SHOAL_ECORRUPT;
            }
            canonical = "ok";
            shoal_index_free_bytes(index, again);
        }
    }
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

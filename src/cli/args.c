/*
 * args.c -- the option parser every subcommand shares, and the index
 * options (kind, metric, per-kind parameters) that build, merge, search and
 * bench all accept.
 *
 * Why not getopt_long: it is a GNU/BSD extension that wasi-libc does not
 * promise, it permutes argv behind the caller's back, and its error
 * messages cannot name the command.  This parser is table-driven and
 * small: long options as "--name value" or "--name=value", short ones as
 * "-k 10" or "-k10", "--" ends the options, anything else is positional.
 * An unknown flag is a usage error (exit 1) that names it.  Numbers are
 * checked strictly: "10x", "-3", "" and values out of range are rejected
 * with a message rather than read as something else.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

cli_opt *cli_find(cli_opt *opts, const char *name) {
    for (cli_opt *o = opts; o->name; o++)
        if (!strcmp(o->name, name)) return o;
    return NULL;
}

static int usage_hint(const char *command) {
    fprintf(stderr, "Run 'shoal %s --help' for its options.\n", command);
    return CLI_USAGE;
}

int cli_parse(cli_args *args, cli_opt *opts, int argc, char **argv) {
    args->command = argv[0];
    args->opts = opts;
    args->npos = 0;
    args->help = 0;
    /* positional slots: at most argc */
    args->pos = malloc(sizeof *args->pos * (size_t)(argc > 0 ? argc : 1));
    if (!args->pos) {
        cli_error("out of memory");
        return CLI_INTERNAL;
    }
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            args->pos[args->npos++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_positional = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            args->help = 1;
            continue;
        }
        cli_opt *o = NULL;
        const char *value = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            for (cli_opt *p = opts; p->name; p++)
                if (strlen(p->name) == len && !strncmp(p->name, name, len)) o = p;
            if (!o) {
                cli_error("%s: unknown option '--%.*s'", args->command, (int)len, name);
                return usage_hint(args->command);
            }
            if (eq) {
                if (!o->has_value) {
                    cli_error("%s: option '--%s' takes no value", args->command, o->name);
                    return usage_hint(args->command);
                }
                value = eq + 1;
            }
        } else {
            /* Negative numbers are not options' values here, so "-x" is
             * always a short option. */
            for (cli_opt *p = opts; p->name; p++)
                if (p->short_name && p->short_name == a[1]) o = p;
            if (!o) {
                cli_error("%s: unknown option '%s'", args->command, a);
                return usage_hint(args->command);
            }
            if (a[2]) {
                if (!o->has_value) {
                    cli_error("%s: option '-%c' takes no value", args->command, a[1]);
                    return usage_hint(args->command);
                }
                value = a + 2;
            }
        }
        if (o->has_value && !value) {
            if (i + 1 >= argc) {
                cli_error("%s: option '--%s' needs a value", args->command, o->name);
                return usage_hint(args->command);
            }
            value = argv[++i];
        }
        o->value = value;
        o->seen++;
    }
    return CLI_OK;
}

const char *cli_str(cli_args *args, const char *name) {
    cli_opt *o = cli_find(args->opts, name);
    return o ? o->value : NULL;
}

int cli_flag(cli_args *args, const char *name) {
    cli_opt *o = cli_find(args->opts, name);
    return o && o->seen;
}

/* Strict decimal: digits only, no sign, no spaces, no trailing junk. */
static int parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s) return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int cli_u64(cli_args *args, const char *name, uint64_t *out) {
    const char *s = cli_str(args, name);
    if (!s) return CLI_OK;
    if (parse_u64(s, out) < 0) {
        cli_error("%s: --%s must be a non-negative integer, not '%s'", args->command, name, s);
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cli_u32(cli_args *args, const char *name, uint32_t min, uint32_t max, uint32_t *out) {
    const char *s = cli_str(args, name);
    if (!s) return CLI_OK;
    uint64_t v;
    if (parse_u64(s, &v) < 0 || v < min || v > max) {
        cli_error("%s: --%s must be an integer in %u..%u, not '%s'", args->command, name, min,
                  max, s);
        return CLI_USAGE;
    }
    *out = (uint32_t)v;
    return CLI_OK;
}

int cli_double(cli_args *args, const char *name, double min, double max, double *out) {
    const char *s = cli_str(args, name);
    if (!s) return CLI_OK;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < min || v > max) {
        cli_error("%s: --%s must be a number in %g..%g, not '%s'", args->command, name, min, max,
                  s);
        return CLI_USAGE;
    }
    *out = v;
    return CLI_OK;
}

int cli_u32_list(cli_args *args, const char *name, uint32_t min, uint32_t max, uint32_t *out,
                 uint32_t cap, uint32_t *count) {
    const char *s = cli_str(args, name);
    if (!s) return CLI_OK;
    uint32_t n = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char buf[24];
        uint64_t v;
        if (len == 0 || len >= sizeof buf || n == cap) goto bad;
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (parse_u64(buf, &v) < 0 || v < min || v > max) goto bad;
        out[n++] = (uint32_t)v;
        if (!comma) break;
        p = comma + 1;
    }
    *count = n;
    return CLI_OK;
bad:
    cli_error("%s: --%s must be a list of up to %u integers in %u..%u separated by commas, "
              "not '%s'",
              args->command, name, cap, min, max, s);
    return CLI_USAGE;
}

/* ------------------------------------------------------------ enum words */

const char *cli_kind_name(shoal_kind kind) {
    switch (kind) {
    case SHOAL_KIND_FLAT: return "flat";
    case SHOAL_KIND_HNSW: return "hnsw";
    case SHOAL_KIND_IVF: return "ivf";
    }
    return "unknown";
}

const char *cli_metric_name(shoal_metric metric) {
    switch (metric) {
    case SHOAL_METRIC_L2: return "l2";
    case SHOAL_METRIC_IP: return "ip";
    case SHOAL_METRIC_COSINE: return "cosine";
    }
    return "unknown";
}

/* Looks a word up in a NULL-terminated list; -1 if absent. */
static int word_index(const char *const *words, const char *s) {
    for (int i = 0; words[i]; i++)
        if (!strcmp(words[i], s)) return i;
    return -1;
}

static int enum_option(cli_args *args, const char *name, const char *const *words,
                       const char *choices, int *out) {
    const char *s = cli_str(args, name);
    if (!s) return CLI_OK;
    int i = word_index(words, s);
    if (i < 0) {
        cli_error("%s: --%s must be one of %s, not '%s'", args->command, name, choices, s);
        return CLI_USAGE;
    }
    *out = i;
    return CLI_OK;
}

int cli_simd_param(cli_args *args, shoal_simd *out) {
    static const char *const words[] = {"auto", "scalar", NULL};
    int v = 0;
    int rc = enum_option(args, "simd", words, "auto, scalar", &v);
    if (rc) return rc;
    *out = v == 1 ? SHOAL_SIMD_SCALAR : SHOAL_SIMD_AUTO;
    return CLI_OK;
}

int cli_index_params(cli_args *args, shoal_params *p, int for_search) {
    static const char *const kinds[] = {"flat", "hnsw", "ivf", NULL};
    static const char *const metrics[] = {"l2", "ip", "cosine", NULL};
    static const char *const storages[] = {"f32", "sq8", NULL};
    static const char *const quantizers[] = {"flat", "sq8", "pq", NULL};
    int kind = (int)p->kind, metric = (int)p->metric, storage = (int)p->hnsw.storage,
        quantizer = (int)p->ivf.quantizer;
    int rc;
    if ((rc = enum_option(args, "kind", kinds, "flat, hnsw, ivf", &kind)) ||
        (rc = enum_option(args, "metric", metrics, "l2, ip, cosine", &metric)) ||
        (rc = enum_option(args, "storage", storages, "f32, sq8", &storage)) ||
        (rc = enum_option(args, "quantizer", quantizers, "flat, sq8, pq", &quantizer)))
        return rc;
    p->kind = (shoal_kind)kind;
    p->metric = (shoal_metric)metric;
    p->hnsw.storage = (shoal_storage)storage;
    p->ivf.quantizer = (shoal_quantizer)quantizer;
    if ((rc = cli_u64(args, "seed", &p->seed)) || (rc = cli_simd_param(args, &p->simd)) ||
        (rc = cli_u32(args, "M", 2, 4096, &p->hnsw.M)) ||
        (rc = cli_u32(args, "ef-construction", 1, SHOAL_K_MAX, &p->hnsw.ef_construction)) ||
        (rc = cli_u32(args, "ef-search", 1, SHOAL_K_MAX, &p->hnsw.ef_search)) ||
        (rc = cli_u32(args, "nlist", 1, UINT32_MAX, &p->ivf.nlist)) ||
        (rc = cli_u32(args, "pq-m", 1, SHOAL_DIM_MAX, &p->ivf.pq_m)) ||
        (rc = cli_u32(args, "pq-bits", 4, 8, &p->ivf.pq_bits)) ||
        (rc = cli_u32(args, "train-sample", 1, UINT32_MAX, &p->ivf.train_sample)) ||
        (rc = cli_u32(args, "train-iters", 1, 1000, &p->ivf.train_iters)))
        return rc;
    if (p->ivf.pq_bits && p->ivf.pq_bits != 4 && p->ivf.pq_bits != 8) {
        cli_error("%s: --pq-bits must be 4 or 8, not %u", args->command, p->ivf.pq_bits);
        return CLI_USAGE;
    }
    /* build: --nprobe is the index's default.  search / bench: --nprobe
     * is per search (possibly a list), so it stays out of the index.
     * --rerank keeps float32 copies in the index either way. */
    if (!for_search && cli_find(args->opts, "nprobe") &&
        (rc = cli_u32(args, "nprobe", 1, UINT32_MAX, &p->ivf.nprobe)))
        return rc;
    if (cli_find(args->opts, "rerank") &&
        (rc = cli_u32(args, "rerank", 0, SHOAL_K_MAX, &p->ivf.rerank)))
        return rc;
    /* Per-kind flags given to another kind are a mistake worth naming. */
    static const char *const hnsw_only[] = {"M", "ef-construction", "ef-search", "storage", NULL};
    static const char *const ivf_only[] = {"nlist", "quantizer", "pq-m", "pq-bits",
                                           "train-sample", "train-iters", "rerank", NULL};
    for (int i = 0; hnsw_only[i]; i++)
        if (p->kind != SHOAL_KIND_HNSW && cli_flag(args, hnsw_only[i])) {
            cli_error("%s: --%s applies to --kind hnsw only", args->command, hnsw_only[i]);
            return CLI_USAGE;
        }
    for (int i = 0; ivf_only[i]; i++)
        if (p->kind != SHOAL_KIND_IVF && cli_flag(args, ivf_only[i])) {
            cli_error("%s: --%s applies to --kind ivf only", args->command, ivf_only[i]);
            return CLI_USAGE;
        }
    if (!for_search && p->kind != SHOAL_KIND_IVF && cli_flag(args, "nprobe")) {
        cli_error("%s: --nprobe applies to --kind ivf only", args->command);
        return CLI_USAGE;
    }
    return CLI_OK;
}

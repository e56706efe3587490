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
            /* The first row of a name wins (as in cli_find), so a command
             * may list an index option again to read it its own way. */
            for (cli_opt *p = opts; p->name && !o; p++)
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
            for (cli_opt *p = opts; p->name && !o; p++)
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

/* ---------------------------------------------------------- index options */

/* Which kinds take a parameter (the APPLIES column of SHOAL_PARAM_LIST). */
enum { APPLIES_ALL = 7, APPLIES_HNSW = 2, APPLIES_IVF = 4, APPLIES_QUANTIZED = 6 };
static int kind_bit(shoal_kind kind) { return 1 << (int)kind; }

/* An enum flag's word through the core's own word list. */
static int enum_flag(cli_args *args, const char *flag, int (*parse)(const char *, size_t),
                     const char *(*word)(int), int *out) {
    const char *s = cli_str(args, flag);
    if (!s) return CLI_OK;
    int v = parse(s, strlen(s));
    if (v < 0) {
        char choices[128] = "";
        for (int i = 0; word(i); i++)
            snprintf(choices + strlen(choices), sizeof choices - strlen(choices), "%s%s",
                     i ? ", " : "", word(i));
        cli_error("%s: --%s must be one of %s, not '%s'", args->command, flag, choices, s);
        return CLI_USAGE;
    }
    *out = v;
    return CLI_OK;
}

static const char *metric_word(int v) { return shoal_metric_word((shoal_metric)v); }
static const char *kind_word(int v) { return shoal_kind_word((shoal_kind)v); }
static const char *quantizer_word(int v) { return shoal_quantizer_word((shoal_quantizer)v); }
static const char *simd_word(int v) { return shoal_simd_word((shoal_simd)v); }
#define CLI__PARSE_METRIC shoal_metric_parse, metric_word
#define CLI__PARSE_KIND shoal_kind_parse, kind_word
#define CLI__PARSE_QUANTIZER shoal_quantizer_parse, quantizer_word
#define CLI__PARSE_SIMD shoal_simd_parse, simd_word

/* One SHOAL_PARAM_LIST row: reads its flag (unless absent) into the field.
 * The flag's name is the row's with the caller's prefix ("" for an index,
 * "large-" for a collection's large segments), built in `name`.  Ranges are
 * the core's business: shoal_index_new names the rule broken. */
#define CLI__READ_U32(field, flag, en)                                            \
    if ((rc = cli_u32(args, flag, 0, UINT32_MAX, &p->field))) return rc;
#define CLI__READ_U64(field, flag, en)                                            \
    if ((rc = cli_u64(args, flag, &p->field))) return rc;
#define CLI__READ_ENUM(field, flag, en)                                           \
    {                                                                             \
        int v = (int)p->field;                                                    \
        if ((rc = enum_flag(args, flag, CLI__PARSE_##en, &v))) return rc;         \
        p->field = v;                                                             \
    }
#define CLI__READ(field, type, js, flag, applies, en, doc)                        \
    snprintf(name, sizeof name, "%s%s", prefix, flag);                            \
    if (strcmp(flag, "dim") && !(for_search && !strcmp(flag, "nprobe")) &&        \
        cli_find(args->opts, name)) {                                             \
        CLI__READ_##type(field, name, en)                                         \
    }
#define CLI__CHECK_KIND(field, type, js, flag, applies, en, doc)                  \
    snprintf(name, sizeof name, "%s%s", prefix, flag);                            \
    if (!(APPLIES_##applies & kind_bit(p->kind)) && cli_flag(args, name) &&       \
        !(for_search && !strcmp(flag, "nprobe"))) {                               \
        cli_error("%s: --%s does not apply to --%skind %s", args->command, name,   \
                  prefix, shoal_kind_word(p->kind));                              \
        return CLI_USAGE;                                                         \
    }

int cli_simd_param(cli_args *args, shoal_simd *out) {
    int v = (int)*out;
    int rc = enum_flag(args, "simd", shoal_simd_parse, simd_word, &v);
    *out = (shoal_simd)v;
    return rc;
}

/* The index options with a prefix: "" for an index, "large-" for the large
 * segments of a collection. */
static int index_params_as(cli_args *args, shoal_params *p, int for_search, const char *prefix) {
    int rc;
    char name[64];
    SHOAL_PARAM_LIST(CLI__READ)
    if (shoal_kind_word(p->kind)) {
        SHOAL_PARAM_LIST(CLI__CHECK_KIND)
    }
    return CLI_OK;
}

int cli_index_params(cli_args *args, shoal_params *p, int for_search) {
    if (cli_flag(args, "dim")) {
        cli_error("%s: the dimension comes from the input data; --dim is not an option here",
                  args->command);
        return CLI_USAGE;
    }
    return index_params_as(args, p, for_search, "");
}

/* ------------------------------------------------------ collection options */

/* One SHOAL_COLLECTION_PARAM_LIST row.  Signed fields take non-negative
 * values only (recent_ms, zstd_level); the core checks the ranges. */
#define CLI__POLICY_U32(field, flag)                                              \
    if ((rc = cli_u32(args, flag, 0, UINT32_MAX, &cp->field))) return rc;
#define CLI__POLICY_U64(field, flag)                                              \
    if ((rc = cli_u64(args, flag, &cp->field))) return rc;
#define CLI__POLICY_I32(field, flag)                                              \
    {                                                                             \
        uint32_t v = (uint32_t)cp->field;                                         \
        if ((rc = cli_u32(args, flag, 0, INT32_MAX, &v))) return rc;               \
        cp->field = (int)v;                                                       \
    }
#define CLI__POLICY_I64(field, flag)                                              \
    {                                                                             \
        uint64_t v = (uint64_t)cp->field;                                         \
        if ((rc = cli_u64(args, flag, &v))) return rc;                            \
        if (v > INT64_MAX) {                                                      \
            cli_error("%s: --%s is too large", args->command, flag);              \
            return CLI_USAGE;                                                     \
        }                                                                         \
        cp->field = (int64_t)v;                                                   \
    }
#define CLI__POLICY(field, type, js, flag, doc) CLI__POLICY_##type(field, flag)

int cli_collection_params(cli_args *args, shoal_collection_params *cp) {
    int rc;
    /* The large segments take dim, metric and simd from the small ones
     * (the core copies them), so those three have no large- flag. */
    static const char *const shared[] = {"large-dim", "large-metric", "large-simd"};
    for (size_t i = 0; i < sizeof shared / sizeof *shared; i++)
        if (cli_flag(args, shared[i])) {
            cli_error("%s: --%s is not an option: large segments take the collection's %s",
                      args->command, shared[i], shared[i] + 6);
            return CLI_USAGE;
        }
    if ((rc = cli_index_params(args, &cp->small, 0))) return rc;
    if (cp->small.kind != SHOAL_KIND_HNSW && cp->small.kind != SHOAL_KIND_FLAT) {
        cli_error("%s: --kind %s: a collection's buffer and small segments are hnsw or flat "
                  "(--large-kind sets the kind of its large segments)",
                  args->command, shoal_kind_word(cp->small.kind));
        return CLI_USAGE;
    }
    /* --seed seeds the large segments too unless --large-seed is given. */
    cp->large.seed = cp->small.seed;
    if ((rc = index_params_as(args, &cp->large, 0, "large-"))) return rc;
    SHOAL_COLLECTION_PARAM_LIST(CLI__POLICY)
    return CLI_OK;
}

int cli_collection_flag_given(cli_args *args, const char **which) {
#define CLI__GIVEN_POLICY(field, type, js, flag, doc) \
    if (cli_flag(args, flag)) {                       \
        *which = flag;                                \
        return 1;                                     \
    }
#define CLI__GIVEN_LARGE(field, type, js, flag, applies, en, doc) \
    if (cli_flag(args, "large-" flag)) {                          \
        *which = "large-" flag;                                   \
        return 1;                                                 \
    }
    SHOAL_COLLECTION_PARAM_LIST(CLI__GIVEN_POLICY)
    SHOAL_PARAM_LIST(CLI__GIVEN_LARGE)
#undef CLI__GIVEN_POLICY
#undef CLI__GIVEN_LARGE
    return 0;
}

/* The help lines of the index options: generated, so they cannot drift. */
void cli_print_index_help(FILE *f, int for_search) {
    static const char *const scope[8] = {NULL, NULL, "hnsw: ", NULL, "ivf: ", NULL, "hnsw, ivf: ", ""};
#define CLI__HELP(field, type, js, flag, applies, en, doc)                               \
    if (strcmp(flag, "dim") && !(for_search && !strcmp(flag, "nprobe"))) {              \
        char name[40];                                                                  \
        snprintf(name, sizeof name, "--%s %s", flag,                                   \
                 !strcmp(#type, "ENUM") ? "WORD" : "N");                               \
        fprintf(f, "      %-19s %s%s\n", name, scope[APPLIES_##applies], doc);           \
    }
    SHOAL_PARAM_LIST(CLI__HELP)
#undef CLI__HELP
}

/* The collection options' help lines: the policy rows, then the large
 * segments' parameters (every index parameter but dim, metric and simd). */
void cli_print_collection_help(FILE *f) {
#define CLI__HELP_POLICY(field, type, js, flag, doc)                                      \
    {                                                                                   \
        char name[40];                                                                  \
        snprintf(name, sizeof name, "--%s N", flag);                                   \
        fprintf(f, "      %-19s %s\n", name, doc);                                   \
    }
    SHOAL_COLLECTION_PARAM_LIST(CLI__HELP_POLICY)
#undef CLI__HELP_POLICY
    static const char *const scope[8] = {NULL, NULL, "hnsw: ", NULL, "ivf: ", NULL, "hnsw, ivf: ", ""};
    fprintf(f, "    large segments (built from --large-from records, or aged by --recent-ms;\n"
               "    default ivf with pq; --seed applies unless --large-seed is given):\n");
    /* (kind and quantizer have other defaults here than the list says) */
#define CLI__HELP_LARGE(field, type, js, flag, applies, en, doc)                          \
    if (strcmp(flag, "dim") && strcmp(flag, "metric") && strcmp(flag, "simd")) {           \
        char name[40];                                                                  \
        snprintf(name, sizeof name, "--large-%s %s", flag,                             \
                 !strcmp(#type, "ENUM") ? "WORD" : "N");                               \
        fprintf(f, "      %-25s %s%s\n", name, scope[APPLIES_##applies],                  \
                !strcmp(flag, "kind")        ? "ivf (default here), hnsw, flat"          \
                : !strcmp(flag, "quantizer") ? "pq (default here), sq8, f32"             \
                                             : doc);                                    \
    }
    SHOAL_PARAM_LIST(CLI__HELP_LARGE)
#undef CLI__HELP_LARGE
}

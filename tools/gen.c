/*
 * gen.c -- writes everything other languages and the docs need from the
 * lists in shoal.h, so that no list is ever copied by hand:
 *   md         docs/ERRORS.md           the error table
 *   js, dts    js/dist/errors.mjs/.d.ts the JS error classes
 *   abi, abi-dts js/dist/abi.mjs/.d.ts  enum words, parameter lists (the
 *                                       order the binding's cells follow),
 *                                       limits, version; TypeScript types
 *   params     docs/PARAMS.md           every parameter, by JS name and flag
 *   version    the version string (for the Makefile and package checks)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal.h"

#define ROW(name, code, js, parent, msg) {"SHOAL_E" #name, code, #js, #parent, msg},
static const struct {
    const char *c_name;
    int code;
    const char *js_class, *js_parent, *message;
} errors[] = {SHOAL_ERROR_LIST(ROW)};
#define COUNT (sizeof errors / sizeof errors[0])

static void markdown(void) {
    printf("# Error codes\n\n"
           "Generated from `SHOAL_ERROR_LIST` in `src/shoal.h` by `make docs`; do not edit.\n"
           "C functions return these negative codes; the JS binding throws the class named\n"
           "here (every class extends `ShoalError`, which carries `code` and `name`).\n"
           "`shoal_index_errmsg()` / `error.message` add the detail of the failing call.\n\n"
           "| code | C name | JS class | meaning |\n"
           "| ---: | --- | --- | --- |\n");
    for (size_t i = 0; i < COUNT; i++)
        printf("| %d | `%s` | `%s`%s%s%s | %s |\n", errors[i].code, errors[i].c_name,
               errors[i].js_class, strcmp(errors[i].js_parent, "ShoalError") ? " (a `" : "",
               strcmp(errors[i].js_parent, "ShoalError") ? errors[i].js_parent : "",
               strcmp(errors[i].js_parent, "ShoalError") ? "`)" : "", errors[i].message);
}

static void javascript(void) {
    printf("// Generated from SHOAL_ERROR_LIST in src/shoal.h by tools/gen.c; do not edit.\n\n"
           "/** Base class of every error the Shoal core reports. */\n"
           "export class ShoalError extends Error {\n"
           "  constructor(message, code) {\n"
           "    super(message);\n"
           "    this.name = new.target.name;\n"
           "    /** Negative SHOAL_E* code from the C core. */\n"
           "    this.code = code;\n"
           "  }\n"
           "}\n\n");
    /* Parents come before children in the list, so declaration order works. */
    for (size_t i = 0; i < COUNT; i++)
        printf("/** %s (%s, %d) */\nexport class %s extends %s {}\n", errors[i].message,
               errors[i].c_name, errors[i].code, errors[i].js_class, errors[i].js_parent);
    printf("\n/** code -> [class, C name, default message] */\nexport const errorsByCode = new Map([\n");
    for (size_t i = 0; i < COUNT; i++)
        printf("  [%d, [%s, \"%s\", \"%s\"]],\n", errors[i].code, errors[i].js_class,
               errors[i].c_name, errors[i].message);
    printf("]);\n\n"
           "/** The error to throw for a negative code, with the core's detail message. */\n"
           "export function errorFromCode(code, detail) {\n"
           "  const entry = errorsByCode.get(code);\n"
           "  if (!entry) return new ShoalError(`unknown error ${code}${detail ? ': ' + detail : ''}`, code);\n"
           "  const [Class, , message] = entry;\n"
           "  return new Class(detail ? `${message}: ${detail}` : message, code);\n"
           "}\n");
}

static void typescript(void) {
    printf("// Generated from SHOAL_ERROR_LIST in src/shoal.h by tools/gen.c; do not edit.\n\n"
           "/** Base class of every error the Shoal core reports. */\n"
           "export declare class ShoalError extends Error {\n"
           "  constructor(message: string, code: number);\n"
           "  /** Negative SHOAL_E* code from the C core. */\n"
           "  readonly code: number;\n"
           "}\n");
    for (size_t i = 0; i < COUNT; i++)
        printf("/** %s (%s, %d) */\nexport declare class %s extends %s {}\n", errors[i].message,
               errors[i].c_name, errors[i].code, errors[i].js_class, errors[i].js_parent);
    printf("export declare const errorsByCode: Map<number, [typeof ShoalError, string, string]>;\n"
           "export declare function errorFromCode(code: number, detail?: string): ShoalError;\n");
}

/* ------------------------------------------------------------------ abi */

#define STR2(x) #x
#define STR(x) STR2(x)
#define VERSION_TEXT STR(SHOAL_VERSION_MAJOR) "." STR(SHOAL_VERSION_MINOR) "." STR(SHOAL_VERSION_PATCH)

typedef struct word_row {
    int value;
    const char *word;
} word_row;

#define WORD_ROW(name, value, word) {value, word},
static const word_row metrics[] = {SHOAL_METRIC_LIST(WORD_ROW)};
static const word_row kinds[] = {SHOAL_KIND_LIST(WORD_ROW)};
static const word_row quantizers[] = {SHOAL_QUANTIZER_LIST(WORD_ROW)};
static const word_row simds[] = {SHOAL_SIMD_LIST(WORD_ROW)};
#define ROWS(a) a, sizeof a / sizeof a[0]

typedef struct param_row {
    const char *c_field, *type, *js, *flag, *applies, *en, *doc;
} param_row;

#define PARAM_ROW(field, type, js, flag, applies, en, doc) \
    {#field, #type, js, flag, #applies, #en, doc},
static const param_row params[] = {SHOAL_PARAM_LIST(PARAM_ROW)};
#define SEARCH_ROW(field, js, flag, applies, doc) {#field, "U32", js, flag, #applies, "NONE", doc},
static const param_row search_params[] = {SHOAL_SEARCH_PARAM_LIST(SEARCH_ROW)};
#define STATS_ROW(field, js, doc) {#field, "NUMBER", js, "", "ALL", "NONE", doc},
static const param_row stats[] = {SHOAL_STATS_LIST(STATS_ROW)};
#define COLL_ROW(field, type, js, flag, doc) {#field, #type, js, flag, "ALL", "NONE", doc},
static const param_row collection_params[] = {SHOAL_COLLECTION_PARAM_LIST(COLL_ROW)};
static const param_row collection_stats[] = {SHOAL_COLLECTION_STATS_LIST(STATS_ROW)};

/* Which kinds (by word) an APPLIES column names. */
static int applies_to(const char *applies, const char *kind) {
    if (!strcmp(applies, "ALL")) return 1;
    if (!strcmp(applies, "QUANTIZED")) return !strcmp(kind, "hnsw") || !strcmp(kind, "ivf");
    if (!strcmp(applies, "HNSW")) return !strcmp(kind, "hnsw");
    if (!strcmp(applies, "IVF")) return !strcmp(kind, "ivf");
    return 0;
}

/* "hnsw, ivf": the kinds an APPLIES column names, in kind order. */
static const char *kinds_text(const char *applies, char *buf, size_t size) {
    buf[0] = '\0';
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (applies_to(applies, kinds[k].word))
            snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? ", " : "",
                     kinds[k].word);
    return buf;
}

static void js_string(const char *s) {
    putchar('\'');
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\') putchar('\\');
        putchar(*s);
    }
    putchar('\'');
}

static void words_js(const char *name, const word_row *rows, size_t n) {
    /* Values are 0..n-1 in order (checked), so a word's index is its value. */
    printf("/** value -> word (shoal_%s) */\nexport const %s = Object.freeze([", name, name);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].value != (int)i) {
            fprintf(stderr, "gen: %s values are not 0..n-1\n", name);
            exit(1);
        }
        printf("%s", i ? ", " : "");
        js_string(rows[i].word);
    }
    printf("]);\n");
}

static void rows_js(const char *name, const param_row *rows, size_t n) {
    printf("export const %s = Object.freeze([\n", name);
    for (size_t i = 0; i < n; i++) {
        printf("  Object.freeze({ name: ");
        js_string(rows[i].js);
        printf(", type: ");
        js_string(rows[i].type);
        printf(", enum: ");
        if (strcmp(rows[i].en, "NONE")) js_string(rows[i].en);
        else printf("null");
        printf(", kinds: Object.freeze([");
        int first = 1;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            if (applies_to(rows[i].applies, kinds[k].word)) {
                printf("%s", first ? "" : ", ");
                js_string(kinds[k].word);
                first = 0;
            }
        printf("]), doc: ");
        js_string(rows[i].doc);
        printf(" }),\n");
    }
    printf("]);\n");
}

static void abi_js(void) {
    printf("// Generated from the lists in src/shoal.h by tools/gen.c; do not edit.\n"
           "// The binding (wasm/binding.c) passes parameters as 64-bit cells in the order\n"
           "// of PARAMS and SEARCH_PARAMS, and returns STATS in order.\n\n");
    printf("export const VERSION = '%s';\n", VERSION_TEXT);
    printf("export const LIMITS = Object.freeze({ dim: %u, id: %u, k: %u, cid: %d, block: %u });\n",
           SHOAL_DIM_MAX, SHOAL_ID_MAX, SHOAL_K_MAX, SHOAL_CID_SIZE, SHOAL_BLOCK_MAX);
    words_js("METRIC", ROWS(metrics));
    words_js("KIND", ROWS(kinds));
    words_js("QUANTIZER", ROWS(quantizers));
    words_js("SIMD", ROWS(simds));
    printf("/** enum name -> its word list */\n"
           "export const ENUMS = Object.freeze({ METRIC, KIND, QUANTIZER, SIMD });\n");
    rows_js("PARAMS", ROWS(params));
    rows_js("SEARCH_PARAMS", ROWS(search_params));
    rows_js("STATS", ROWS(stats));
    rows_js("COLLECTION_PARAMS", ROWS(collection_params));
    rows_js("COLLECTION_STATS", ROWS(collection_stats));
}

static void words_dts(const char *type, const word_row *rows, size_t n) {
    printf("export type %s =", type);
    for (size_t i = 0; i < n; i++) {
        printf(" %s", i ? "| " : "");
        js_string(rows[i].word);
    }
    printf(";\n");
}

static const char *ts_type(const param_row *r) {
    if (!strcmp(r->type, "U64")) return "number | bigint";
    if (!strcmp(r->en, "METRIC")) return "Metric";
    if (!strcmp(r->en, "KIND")) return "Kind";
    if (!strcmp(r->en, "QUANTIZER")) return "Quantizer";
    if (!strcmp(r->en, "SIMD")) return "Simd";
    return "number";
}

static void abi_dts(void) {
    printf("// Generated from the lists in src/shoal.h by tools/gen.c; do not edit.\n\n");
    printf("export declare const VERSION: string;\n");
    words_dts("Metric", ROWS(metrics));
    words_dts("Kind", ROWS(kinds));
    words_dts("Quantizer", ROWS(quantizers));
    words_dts("Simd", ROWS(simds));
    /* Create options per kind: a discriminated union on `kind`.  `kind`
     * and `dim` are written by hand below; `simd` is the JS loader's
     * boolean (which wasm build), not the core's word. */
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const char *kw = kinds[k].word;
        printf("\n/** Options of Index.create for kind '%s'. */\nexport interface %c%sOptions {\n",
               kw, kw[0] - 'a' + 'A', kw + 1);
        printf("  /** vector length, 1..%u (required) */\n  dim: number;\n", SHOAL_DIM_MAX);
        printf("  kind%s: '%s';\n", k == 0 ? "?" : "", kw);
        for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
            const param_row *r = &params[i];
            if (!applies_to(r->applies, kw) || !strcmp(r->js, "dim") || !strcmp(r->js, "kind") ||
                !strcmp(r->js, "simd"))
                continue;
            printf("  /** %s */\n  %s?: %s;\n", r->doc, r->js,
                   !strcmp(r->js, "quantizer") && !strcmp(kw, "hnsw") ? "'f32' | 'sq8'"
                                                                      : ts_type(r));
        }
        printf("  /** true: the SIMD128 build (fails without it); false: the baseline build;\n"
               "   *  undefined (default): SIMD128 where the runtime has it */\n"
               "  simd?: boolean;\n}\n");
    }
    printf("\nexport type IndexOptions =");
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        printf(" %s%c%sOptions", k ? "| " : "", kinds[k].word[0] - 'a' + 'A', kinds[k].word + 1);
    printf(";\n\n/** Per-search options of the numeric kind (filters are typed in index.d.ts). */\n"
           "export interface SearchTuning {\n");
    for (size_t i = 0; i < sizeof search_params / sizeof search_params[0]; i++) {
        char buf[64];
        printf("  /** %s: %s */\n  %s?: number;\n",
               kinds_text(search_params[i].applies, buf, sizeof buf), search_params[i].doc,
               search_params[i].js);
    }
    printf("}\n\nexport interface IndexStats {\n");
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++)
        printf("  /** %s */\n  %s: number;\n", stats[i].doc, stats[i].js);
    printf("}\n\n/** The policy options of Collection.create. */\nexport interface CollectionPolicy {\n");
    for (size_t i = 0; i < sizeof collection_params / sizeof collection_params[0]; i++)
        printf("  /** %s */\n  %s?: number;\n", collection_params[i].doc, collection_params[i].js);
    printf("}\n\nexport interface CollectionStats {\n");
    for (size_t i = 0; i < sizeof collection_stats / sizeof collection_stats[0]; i++)
        printf("  /** %s */\n  %s: number;\n", collection_stats[i].doc, collection_stats[i].js);
    printf("}\n");
}

static void params_md(void) {
    printf("# Parameters\n\n"
           "Generated from `SHOAL_PARAM_LIST`, `SHOAL_SEARCH_PARAM_LIST` and `SHOAL_STATS_LIST` in\n"
           "`src/shoal.h` by `make docs`; do not edit. The C field, the JS option and the CLI flag\n"
           "are the same parameter. 0 or absent means the default.\n\n"
           "## Index parameters\n\n"
           "| C field | JS option | CLI flag | kinds | meaning |\n| --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        const param_row *r = &params[i];
        char buf[64];
        printf("| `%s` | `%s` | %s%s%s | %s | %s |\n", r->c_field, r->js,
               strcmp(r->js, "dim") ? "`--" : "", strcmp(r->js, "dim") ? r->flag : "(from the data)",
               strcmp(r->js, "dim") ? "`" : "", kinds_text(r->applies, buf, sizeof buf), r->doc);
    }
    printf("\n## Search parameters\n\n| C field | JS option | CLI flag | kinds | meaning |\n"
           "| --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < sizeof search_params / sizeof search_params[0]; i++) {
        char buf[64];
        printf("| `%s` | `%s` | `--%s` | %s | %s |\n", search_params[i].c_field,
               search_params[i].js, search_params[i].flag,
               kinds_text(search_params[i].applies, buf, sizeof buf), search_params[i].doc);
    }
    printf("\n## Statistics (`stats()`)\n\n| C field | JS field | meaning |\n| --- | --- | --- |\n");
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++)
        printf("| `%s` | `%s` | %s |\n", stats[i].c_field, stats[i].js, stats[i].doc);
    printf("\n## Collection policy\n\n| C field | JS option | CLI flag | meaning |\n"
           "| --- | --- | --- | --- |\n");
    for (size_t i = 0; i < sizeof collection_params / sizeof collection_params[0]; i++)
        printf("| `%s` | `%s` | `--%s` | %s |\n", collection_params[i].c_field,
               collection_params[i].js, collection_params[i].flag, collection_params[i].doc);
    printf("\n## Collection statistics (`Collection.stats()`)\n\n| C field | JS field | meaning |\n"
           "| --- | --- | --- |\n");
    for (size_t i = 0; i < sizeof collection_stats / sizeof collection_stats[0]; i++)
        printf("| `%s` | `%s` | %s |\n", collection_stats[i].c_field, collection_stats[i].js,
               collection_stats[i].doc);
    printf("\n## Words\n\n| enumeration | words (by value) |\n| --- | --- |\n");
    const struct {
        const char *name;
        const word_row *rows;
        size_t n;
    } lists[] = {{"metric", ROWS(metrics)}, {"kind", ROWS(kinds)}, {"quantizer", ROWS(quantizers)},
                 {"simd", ROWS(simds)}};
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        printf("| %s |", lists[l].name);
        for (size_t i = 0; i < lists[l].n; i++)
            printf("%s `%s` (%d)", i ? "," : "", lists[l].rows[i].word, lists[l].rows[i].value);
        printf(" |\n");
    }
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "abi") == 0) {
        abi_js();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "abi-dts") == 0) {
        abi_dts();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "params") == 0) {
        params_md();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "version") == 0) {
        printf("%s\n", VERSION_TEXT);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "dts") == 0) {
        typescript();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "md") == 0) {
        markdown();
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "js") == 0) {
        javascript();
        return 0;
    }
    fprintf(stderr, "usage: gen md|js|dts|abi|abi-dts|params|version\n");
    return 1;
}

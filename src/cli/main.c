/*
 * main.c -- the `shoal` command: dispatch to a subcommand, global help,
 * and the small message helpers every command uses.
 *
 * Data teams build indexes offline with this tool and ship the segments to
 * browsers; the WASI build (build/shoal.wasm) is the same program for
 * wasmtime users.  Each subcommand lives in its own file and parses its own
 * flags with the shared parser in args.c; this file only picks one.
 *
 * Exit codes (docs/CLI.md): 0 ok, 1 usage, 2 bad input data, 3 output could
 * not be written, 4 out of memory / internal, 5 bench recall below
 * --min-recall.  They are the contract scripts rely on, so they never
 * change meaning.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "usage: shoal <command> [options]\n"
    "\n"
    "Build, inspect and query Shoal vector indexes offline.\n"
    "\n"
    "commands:\n"
    "  build   build an index from .fvecs, .bvecs, .npy (float32) or JSONL, write a\n"
    "          segment (--out FILE) or a collection folder (--collection DIR)\n"
    "  search  search a segment, a collection folder, or an index built on the fly\n"
    "          from a data file\n"
    "  info    header, sections, sizes and CID of a segment; root, segments and\n"
    "          blocks of a collection folder\n"
    "  verify  check a segment (checksums, structure, graph invariants) or a\n"
    "          collection folder (every block, every segment)\n"
    "  merge   merge several segments into one\n"
    "  compact merge a collection folder's segments (and its log) into a new version\n"
    "  car     car export DIR --out FILE.car / car import FILE.car --collection DIR\n"
    "  cid     the CID (CIDv1, raw, sha2-256) of files\n"
    "  bench   recall and QPS against a ground-truth .ivecs or exact truth\n"
    "\n"
    "A collection folder holds DIR/root (the manifest's CID), DIR/blocks/<cid>\n"
    "and optionally DIR/log (docs/CLI.md, \"Collections\").\n"
    "\n"
    "Run 'shoal <command> --help' for a command's options.\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 bad input data, 3 output not written,\n"
    "            4 out of memory or internal error, 5 recall below --min-recall\n";

/* The last message, for commands that also report it as JSON (verify). */
static char last_error[2048];

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    fprintf(stderr, "shoal: %s\n", last_error);
}

const char *cli_last_error(void) { return last_error; }

void cli_note(int quiet, const char *fmt, ...) {
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("shoal: note: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_exit_of(int code) {
    switch (code) {
    case SHOAL_OK: return CLI_OK;
    case SHOAL_ENOMEM: return CLI_INTERNAL;
    default: return CLI_DATA;
    }
}

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} command;

static const command COMMANDS[] = {
    {"build", cli_cmd_build}, {"search", cli_cmd_search}, {"info", cli_cmd_info},
    {"verify", cli_cmd_verify}, {"merge", cli_cmd_merge}, {"cid", cli_cmd_cid},
    {"bench", cli_cmd_bench}, {"compact", cli_cmd_compact}, {"car", cli_cmd_car},
};

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(USAGE, stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        fputs(USAGE, stdout);
        return CLI_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("shoal %s (kernels %s)\n", shoal_version(), shoal_simd_name(SHOAL_SIMD_AUTO));
        return CLI_OK;
    }
    if (!strcmp(name, "help")) {
        if (argc < 3) {
            fputs(USAGE, stdout);
            return CLI_OK;
        }
        name = argv[2];
        for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++) {
            if (!strcmp(name, COMMANDS[i].name)) {
                char help[] = "--help";
                char *args[] = {argv[2], help, NULL};
                return COMMANDS[i].run(2, args);
            }
        }
        cli_error("unknown command '%s' (run 'shoal --help')", name);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        if (!strcmp(name, COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    cli_error("unknown command '%s' (run 'shoal --help')", name);
    return CLI_USAGE;
}

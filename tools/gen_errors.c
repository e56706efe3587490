/*
 * gen_errors.c -- turns the one error list in shoal.h into the docs table
 * (`md`) or the JS error classes (`js`), so the three never drift apart.
 */
#include <stdio.h>
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
    printf("// Generated from SHOAL_ERROR_LIST in src/shoal.h by tools/gen_errors.c; do not edit.\n\n"
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
    printf("// Generated from SHOAL_ERROR_LIST in src/shoal.h by tools/gen_errors.c; do not edit.\n\n"
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

int main(int argc, char **argv) {
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
    fprintf(stderr, "usage: gen_errors md|js|dts\n");
    return 1;
}

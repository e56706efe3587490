/* harness.c -- see harness.h. */
#include "harness.h"

#include <stdlib.h>

static int current_failed;
static int passed, failed;
static const char *filter;

int harness_check(int ok, const char *file, int line, const char *expr, const char *detail) {
    if (ok) return 1;
    current_failed = 1;
    fprintf(stderr, "    %s:%d: CHECK(%s) failed%s%s\n", file, line, expr, detail ? ": " : "",
            detail ? detail : "");
    return 0;
}

int harness_check_int(const char *file, int line, const char *a_expr, const char *b_expr,
                      long long a, long long b) {
    if (a == b) return 1;
    current_failed = 1;
    fprintf(stderr, "    %s:%d: %s == %s failed: %lld != %lld\n", file, line, a_expr, b_expr, a, b);
    return 0;
}

int harness_check_near(const char *file, int line, const char *a_expr, const char *b_expr,
                       double a, double b, double tol) {
    double scale = fmax(1.0, fmax(fabs(a), fabs(b)));
    if (fabs(a - b) <= tol * scale) return 1;
    current_failed = 1;
    fprintf(stderr, "    %s:%d: %s ~= %s failed: %.9g vs %.9g (tol %g)\n", file, line, a_expr,
            b_expr, a, b, tol);
    return 0;
}

int harness_check_str(const char *file, int line, const char *a_expr, const char *b_expr,
                      const char *a, const char *b) {
    if (a && b && strcmp(a, b) == 0) return 1;
    current_failed = 1;
    fprintf(stderr, "    %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", file, line, a_expr, b_expr,
            a ? a : "(null)", b ? b : "(null)");
    return 0;
}

void harness_run(const char *suite, const harness_test *tests, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (filter && !strstr(tests[i].name, filter) && !strstr(suite, filter)) continue;
        current_failed = 0;
        tests[i].fn();
        printf("%s %s.%s\n", current_failed ? "FAIL" : "ok  ", suite, tests[i].name);
        fflush(stdout);
        if (current_failed)
            failed++;
        else
            passed++;
    }
}

/* Every suite, in the order they run. */
#define SUITES(X) X(kernels) X(flat) X(alloc) X(records) X(filter) X(hnsw) X(ivf) X(rows) X(segment) X(lazy) X(collection) X(soak)
#define DECLARE(name) void suite_##name(void);
SUITES(DECLARE)

int main(int argc, char **argv) {
    filter = argc > 1 ? argv[1] : NULL;
#define RUN(name) suite_##name();
    SUITES(RUN)
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/*
 * progress.c -- a one-line progress bar on stderr, drawn only when stderr
 * is a terminal (and --quiet was not given).
 *
 * Pipelines and logs get nothing: a bar redrawn with '\r' is noise in a
 * file, and scripts want stderr to hold only real messages.  The bar is
 * redrawn only when a cell or the percentage changes, so the core's
 * progress callback (every 1024 records) costs next to nothing.  isatty()
 * works under WASI (fd_fdstat_get reports a character device), so the
 * WASI build behaves the same under wasi/shoal or wasmtime.
 */
#define _POSIX_C_SOURCE 200809L
#include <unistd.h>

#include "cli.h"

#define BAR_CELLS 30

void cli_progress_start(cli_progress *p, const char *label, int quiet) {
    p->enabled = !quiet && isatty(2);
    p->label = label;
    p->last_width = -1;
    p->last_done = 0;
    p->started = cli_now();
}

void cli_progress_update(cli_progress *p, uint64_t done, uint64_t total) {
    if (!p->enabled || total == 0) return;
    if (done > total) done = total;
    int permille = (int)(done * 1000 / total);
    if (permille == p->last_width) return;
    p->last_width = permille;
    p->last_done = done;
    int cells = permille * BAR_CELLS / 1000;
    char bar[BAR_CELLS + 1];
    for (int i = 0; i < BAR_CELLS; i++) bar[i] = i < cells ? '#' : '.';
    bar[BAR_CELLS] = '\0';
    double elapsed = cli_now() - p->started;
    fprintf(stderr, "\r%-10s [%s] %5.1f%%  %llu/%llu  %.1fs", p->label, bar, permille / 10.0,
            (unsigned long long)done, (unsigned long long)total, elapsed);
    fflush(stderr);
}

int cli_progress_cb(void *ctx, uint32_t done, uint32_t total) {
    cli_progress_update(ctx, done, total);
    return 0;
}

void cli_progress_finish(cli_progress *p) {
    if (!p->enabled || p->last_width < 0) return;
    fputc('\n', stderr);
    fflush(stderr);
    p->last_width = -1;
}

/*
 * gen_clustered.c -- synthetic clustered vectors for the 10M remote
 * benchmark (bench/remote/big.sh; figures in docs/BENCHMARKS.md, "Ten
 * million vectors from a gateway").
 *
 *   gen_clustered N Q DIM CLUSTERS SEED BASE.fvecs QUERIES.fvecs
 *
 * The same shape as the tab benchmark's data (bench/scale/tab-1m.html):
 * cluster centres N(0, 1) per coordinate; a point is its centre plus
 * Gaussian noise whose standard deviation decays over the dimensions,
 * 0.6 / sqrt(1 + j / 16), a rough stand-in for the decaying spectrum of
 * real embeddings.  Point i draws from its own stream (splitmix64 seeded by
 * SEED and i), so the queries -- points N .. N+Q-1, held out -- are made
 * without the base, and any range of the base can be regenerated.  Uses no
 * Shoal code: the benchmark's inputs do not depend on what it measures.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* (0, 1]: never 0, so log() is finite. */
static double unit(uint64_t *s) { return ((double)(mix(s) >> 11) + 1.0) / 9007199254740992.0; }
static double gaussian(uint64_t *s) {
    double u = unit(s), v = unit(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void point(uint64_t seed, uint64_t i, const float *centres, uint32_t clusters,
                  const float *scale, uint32_t dim, float *out) {
    uint64_t s = seed * 0x100000001b3ull ^ (i + 1) * 0xd6e8feb86659fd93ull;
    const float *c = centres + (size_t)(mix(&s) % clusters) * dim;
    for (uint32_t j = 0; j < dim; j++) out[j] = c[j] + scale[j] * (float)gaussian(&s);
}

static void write_rows(const char *path, uint64_t from, uint64_t count, uint64_t seed,
                       const float *centres, uint32_t clusters, const float *scale, uint32_t dim) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    static char buf[1 << 22];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    float *row = malloc((size_t)dim * sizeof *row);
    int32_t d = (int32_t)dim;
    for (uint64_t i = 0; i < count; i++) {
        point(seed, from + i, centres, clusters, scale, dim, row);
        if (fwrite(&d, 4, 1, f) != 1 || fwrite(row, sizeof *row, dim, f) != dim) {
            perror(path);
            exit(1);
        }
    }
    if (fclose(f)) {
        perror(path);
        exit(1);
    }
    free(row);
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: gen_clustered N Q DIM CLUSTERS SEED BASE.fvecs QUERIES.fvecs\n");
        return 1;
    }
    uint64_t n = strtoull(argv[1], NULL, 10), q = strtoull(argv[2], NULL, 10);
    uint32_t dim = (uint32_t)strtoul(argv[3], NULL, 10), clusters = (uint32_t)strtoul(argv[4], NULL, 10);
    uint64_t seed = strtoull(argv[5], NULL, 10);
    if (!n || !dim || dim > 65536 || !clusters) {
        fprintf(stderr, "gen_clustered: N, DIM and CLUSTERS must be positive (DIM <= 65536)\n");
        return 1;
    }
    float *centres = malloc((size_t)clusters * dim * sizeof *centres);
    float *scale = malloc((size_t)dim * sizeof *scale);
    if (!centres || !scale) {
        fprintf(stderr, "gen_clustered: out of memory\n");
        return 1;
    }
    uint64_t s = seed ^ 0xc3a5c85c97cb3127ull;
    for (size_t i = 0; i < (size_t)clusters * dim; i++) centres[i] = (float)gaussian(&s);
    for (uint32_t j = 0; j < dim; j++) scale[j] = (float)(0.6 / sqrt(1.0 + j / 16.0));
    write_rows(argv[6], 0, n, seed, centres, clusters, scale, dim);
    write_rows(argv[7], n, q, seed, centres, clusters, scale, dim);
    free(centres);
    free(scale);
    return 0;
}

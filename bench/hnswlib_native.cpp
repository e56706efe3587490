/*
 * hnswlib_native.cpp -- the anchor of the HNSW benchmark: hnswlib's own C++
 * (the headers of hnswlib 0.8.0, as bundled in the hnswlib-node npm package
 * that bench/setup.sh installs; identical to nmslib/hnswlib's hnswlib/)
 * compiled for this machine with hnswlib's default flags, -O3 -march=native
 * (what its setup.py passes).  Debian's python3-hnswlib is a generic x86-64
 * build (SSE only); this is what a reviewer compares against.
 *
 * Same protocol as bench/hnsw_native.c (bench/hnsw/common.mjs describes it):
 * build from the first --base rows with label i for row i, then for each ef
 * of --efs time --runs passes of single queries (searchKnn, one thread) over
 * the first --queries test images and keep the best pass; print JSON lines
 * and write each ef's neighbours as int32 into --neighbors.  No Python:
 * like Shoal's native adapter, the timed loop calls the library directly.
 *
 *   --threads T   build with T threads (addPoint from T std::threads, the way
 *                 hnswlib's Python binding does it); search stays on one
 *   --thp 1       madvise(MADV_HUGEPAGE) hnswlib's level-0 block before the
 *                 build: what Shoal's default allocator does on Linux (see
 *                 src/core/mem.c), so that the two can be compared with and
 *                 without transparent huge pages
 *   --interleave 1 wait for a line on stdin before each timed pass (run.mjs
 *                 --interleave; the protocol is bench_util.h's pass_begin)
 *
 * Memory: RSS growth over the build (hnswlib reports no footprint).
 */
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>

#include "hnswlib/hnswlib.h"

static void die(const char *what, const char *detail = nullptr) {
    fprintf(stderr, "hnswlib_native: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    printf("{\"type\":\"error\",\"library\":\"hnswlib-native\",\"error\":\"%s\"}\n", what);
    exit(1);
}

static uint32_t parse_u32(const char *name, const char *text) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || end == text || v > 0xffffffffUL) die("bad number for", name);
    return (uint32_t)v;
}

static std::vector<float> read_fvecs(const std::string &dir, const char *name, uint32_t limit,
                                     uint32_t *dim) {
    std::string path = dir + "/" + name;
    FILE *f = fopen(path.c_str(), "rb");
    if (!f) die("cannot open (run bench/hnsw/prepare_data.py)", path.c_str());
    int32_t d;
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > 65536) die("bad .fvecs header", path.c_str());
    *dim = (uint32_t)d;
    std::vector<float> out((size_t)limit * (uint32_t)d);
    rewind(f);
    for (uint32_t i = 0; i < limit; i++) {
        int32_t row_dim;
        if (fread(&row_dim, 4, 1, f) != 1 || row_dim != d ||
            fread(&out[(size_t)i * d], sizeof(float), (size_t)d, f) != (size_t)d)
            die("file has fewer rows than asked for", path.c_str());
    }
    fclose(f);
    return out;
}

static double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static double rss_mb() {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return (double)resident * 4096.0 / (1024.0 * 1024.0);
}

/* What the compiler was told to use: the kernels hnswlib's headers pick. */
static const char *simd_name() {
#if defined(__AVX512F__)
    return "AVX-512";
#elif defined(__AVX__)
    return "AVX";
#elif defined(__SSE__)
    return "SSE";
#else
    return "scalar";
#endif
}

int main(int argc, char **argv) {
    std::string data = "bench/data", neighbors = "bench/results/neighbors";
    uint32_t base = 60000, queries = 1000, k = 10, M = 16, efc = 200, runs = 2, threads = 1, thp = 0;
    bool interleave = false;
    std::vector<uint32_t> efs = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
    for (int i = 1; i < argc; i += 2) {
        const char *key = argv[i], *val = i + 1 < argc ? argv[i + 1] : nullptr;
        if (!val) die("missing value for", key);
        if (!strcmp(key, "--data")) data = val;
        else if (!strcmp(key, "--neighbors")) neighbors = val;
        else if (!strcmp(key, "--variant")) (void)val;
        else if (!strcmp(key, "--base")) base = parse_u32(key, val);
        else if (!strcmp(key, "--queries")) queries = parse_u32(key, val);
        else if (!strcmp(key, "--k")) k = parse_u32(key, val);
        else if (!strcmp(key, "--M")) M = parse_u32(key, val);
        else if (!strcmp(key, "--efc")) efc = parse_u32(key, val);
        else if (!strcmp(key, "--runs")) runs = parse_u32(key, val);
        else if (!strcmp(key, "--threads")) threads = parse_u32(key, val);
        else if (!strcmp(key, "--thp")) thp = parse_u32(key, val);
        else if (!strcmp(key, "--interleave")) interleave = parse_u32(key, val) != 0;
        else if (!strcmp(key, "--efs")) {
            efs.clear();
            std::string s = val;
            size_t at = 0;
            while (at <= s.size()) {
                size_t comma = s.find(',', at);
                if (comma == std::string::npos) comma = s.size();
                efs.push_back(parse_u32(key, s.substr(at, comma - at).c_str()));
                at = comma + 1;
            }
        } else die("unknown option", key);
    }
    if (!k || !runs || efs.empty() || !base || !queries || !threads) die("counts must be positive");

    uint32_t dim, qdim;
    std::vector<float> rows = read_fvecs(data, "fashion-mnist-base.fvecs", base, &dim);
    std::vector<float> qs = read_fvecs(data, "fashion-mnist-query.fvecs", queries, &qdim);
    if (qdim != dim) die("base and query dimensions differ");

    hnswlib::L2Space space(dim);
    double rss0 = rss_mb();
    double t0 = now_seconds();
    auto *index = new hnswlib::HierarchicalNSW<float>(&space, base, M, efc, 100);
    if (thp) {
        /* The block is malloc'd: advise the whole pages inside it. */
        uintptr_t lo = (uintptr_t)index->data_level0_memory_, page = 4096;
        uintptr_t hi = lo + index->max_elements_ * index->size_data_per_element_;
        lo = (lo + page - 1) & ~(page - 1);
        if (hi > lo && madvise((void *)lo, hi - lo, MADV_HUGEPAGE)) die("madvise failed");
    }
    if (threads == 1) {
        for (uint32_t i = 0; i < base; i++) index->addPoint(&rows[(size_t)i * dim], i);
    } else {
        /* hnswlib's binding adds the first row alone, then hands rows out to
         * threads one at a time. */
        index->addPoint(&rows[0], 0);
        std::atomic<uint32_t> next(1);
        std::vector<std::thread> pool;
        for (uint32_t t = 0; t < threads; t++)
            pool.emplace_back([&]() {
                for (uint32_t i; (i = next.fetch_add(1)) < base;)
                    index->addPoint(&rows[(size_t)i * dim], i);
            });
        for (auto &th : pool) th.join();
    }
    double build_s = now_seconds() - t0;
    double rss1 = rss_mb();
    char variant[32];
#ifndef VARIANT_SUFFIX
#define VARIANT_SUFFIX ""
#endif
    snprintf(variant, sizeof variant, "march-native%s%s", VARIANT_SUFFIX, thp ? "-thp" : "");
    if (threads > 1) snprintf(variant + strlen(variant), sizeof variant - strlen(variant), "-%ut", threads);
    printf("{\"type\":\"build\",\"library\":\"hnswlib-native\",\"variant\":\"%s\",\"base\":%u,"
           "\"queries\":%u,\"k\":%u,\"version\":\"0.8.0 (C++, -O3 -march=native)\","
           "\"params\":{\"M\":%u,\"ef_construction\":%u,\"threads\":%u,\"thp\":%u},\"build_s\":%.3f,"
           "\"rss_delta_mb\":%.1f,\"lib_mb\":null,\"notes\":\"hnswlib headers built here with "
           "g++ -O3 -march=native; %s kernels; no Python in the timed loop.\"}\n",
           variant, base, queries, k, M, efc, threads, thp, build_s, rss1 - rss0, simd_name());
    fflush(stdout);

    std::vector<int32_t> ids((size_t)queries * k);
    for (uint32_t i = 0; i < std::min<uint32_t>(queries, 200); i++) {
        index->setEf(efs[0] > k ? efs[0] : k);
        index->searchKnn(&qs[(size_t)i * dim], k);
    }
    for (uint32_t ef : efs) {
        index->setEf(ef);
        double best = 1e300;
        for (uint32_t run = 0; run < runs; run++) {
            if (interleave) { /* the protocol of bench_util.h's pass_begin */
                printf("{\"type\":\"ready\"}\n");
                fflush(stdout);
                for (int c; (c = getchar()) != '\n';)
                    if (c == EOF) return 0;
            }
            double start = now_seconds();
            for (uint32_t i = 0; i < queries; i++) {
                auto top = index->searchKnn(&qs[(size_t)i * dim], k);
                /* the priority queue pops farthest first */
                int32_t *out = &ids[(size_t)i * k];
                for (uint32_t j = 0; j < k; j++) out[j] = -1;
                for (size_t j = top.size(); j-- > 0; top.pop())
                    if (j < k) out[j] = (int32_t)top.top().second;
            }
            double seconds = now_seconds() - start;
            if (interleave) {
                printf("{\"type\":\"pass\",\"seconds\":%.6f}\n", seconds);
                fflush(stdout);
            }
            best = std::min(best, seconds);
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/hnswlib-native-%s-ef%u.i32", neighbors.c_str(), variant, ef);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(ids.data(), sizeof(int32_t), ids.size(), f) != ids.size() || fclose(f))
            die("cannot write (does --neighbors exist?)", path);
        printf("{\"type\":\"search\",\"library\":\"hnswlib-native\",\"variant\":\"%s\",\"base\":%u,"
               "\"queries\":%u,\"k\":%u,\"ef\":%u,\"qps\":%.1f,\"neighbors\":\"%s\"}\n",
               variant, base, queries, k, ef, (double)queries / best, path);
        fflush(stdout);
    }
    delete index;
    return 0;
}

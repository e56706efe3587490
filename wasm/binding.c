/*
 * binding.c -- the few entry points the JS binding needs beyond shoal.h.
 *
 * Structs are awkward to build from JS, so index parameters arrive as an
 * array of uint32 in the order of enum js_param (mirrored in
 * js/src/index.mjs), and search parameters as plain arguments.  Everything
 * else JS calls is the public API itself.  Uses nothing private.
 */
#include <emscripten.h>

#include "shoal.h"

enum js_param {
    JS_DIM,
    JS_METRIC,
    JS_KIND,
    JS_SIMD,
    JS_SEED_LO,
    JS_SEED_HI,
    JS_HNSW_M,
    JS_HNSW_EF_CONSTRUCTION,
    JS_HNSW_EF_SEARCH,
    JS_HNSW_STORAGE,
    JS_IVF_NLIST,
    JS_IVF_NPROBE,
    JS_IVF_QUANTIZER,
    JS_IVF_PQ_M,
    JS_IVF_PQ_BITS,
    JS_IVF_RERANK,
    JS_IVF_TRAIN_SAMPLE,
    JS_IVF_TRAIN_ITERS,
    JS_PARAM_COUNT
};

EMSCRIPTEN_KEEPALIVE
int shoal_js_index_new(const uint32_t *values, uint32_t count, shoal_index **out) {
    *out = NULL;
    if (count != JS_PARAM_COUNT) return SHOAL_EPARAM;
    shoal_params params;
    shoal_params_init(&params);
    params.dim = values[JS_DIM];
    params.metric = (shoal_metric)values[JS_METRIC];
    params.kind = (shoal_kind)values[JS_KIND];
    params.simd = (shoal_simd)values[JS_SIMD];
    params.seed = (uint64_t)values[JS_SEED_HI] << 32 | values[JS_SEED_LO];
    params.hnsw.M = values[JS_HNSW_M];
    params.hnsw.ef_construction = values[JS_HNSW_EF_CONSTRUCTION];
    params.hnsw.ef_search = values[JS_HNSW_EF_SEARCH];
    params.hnsw.storage = (shoal_storage)values[JS_HNSW_STORAGE];
    params.ivf.nlist = values[JS_IVF_NLIST];
    params.ivf.nprobe = values[JS_IVF_NPROBE];
    params.ivf.quantizer = (shoal_quantizer)values[JS_IVF_QUANTIZER];
    params.ivf.pq_m = values[JS_IVF_PQ_M];
    params.ivf.pq_bits = values[JS_IVF_PQ_BITS];
    params.ivf.rerank = values[JS_IVF_RERANK];
    params.ivf.train_sample = values[JS_IVF_TRAIN_SAMPLE];
    params.ivf.train_iters = values[JS_IVF_TRAIN_ITERS];
    return shoal_index_new(&params, out);
}

/* filter_bitmap may be NULL (no filter); ef, nprobe and rerank 0 are the
 * index's defaults. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_search(shoal_index *index, const float *query, uint32_t dim, uint32_t k, uint32_t ef,
                    uint32_t nprobe, uint32_t rerank, const uint8_t *filter_bitmap,
                    uint32_t filter_bitmap_bits, uint32_t *labels, float *distances) {
    shoal_search_params params;
    shoal_search_params_init(&params);
    params.ef = ef;
    params.nprobe = nprobe;
    params.rerank = rerank;
    params.filter_bitmap = filter_bitmap;
    params.filter_bitmap_bits = filter_bitmap_bits;
    return shoal_index_search(index, query, dim, k, &params, labels, distances);
}

/* shoal_index_load with its parameters as arguments; msg (msg_size bytes)
 * receives the detail message on failure. */
EMSCRIPTEN_KEEPALIVE
int shoal_js_index_load(const uint8_t *bytes, uint32_t size, uint32_t simd, char *msg,
                        uint32_t msg_size, shoal_index **out) {
    shoal_load_params params;
    shoal_load_params_init(&params);
    params.simd = (shoal_simd)simd;
    params.errmsg = msg;
    params.errmsg_size = msg_size;
    return shoal_index_load(bytes, size, &params, out);
}

#!/usr/bin/env python3
"""The recall ceiling of SQ8 codes, by exact search on them (no graph).

Issue 15 asked whether a scale per dimension (instead of SQ8's one scale
shared by all dimensions, src/index/sq8.c) would lift SQ8's recall ceiling.
This answers it for the benchmark's data without touching the format: it
quantizes the base like shoal__sq8_fit / shoal__sq8_encode (a centre per
dimension, codes -127..127, 1.125 headroom), once with the shared scale and
once with a scale per dimension, and measures recall@10 of an exact top-10
on the codes -- with the query quantized too (what HNSW SQ8 traverses) and
with the float query against the decoded rows. A graph search on the codes
cannot beat these figures; only rerank copies (float32) can.

    /usr/bin/python3 bench/hnsw/sq8_ceiling.py [--data bench/data] [--queries 2000]

Reads the files of bench/hnsw/prepare_data.py; numpy only; ~2 min.
"""
import sys

import numpy as np

from hnswlib_py import read_fvecs  # (hnswlib itself is imported only by its main)

CODE_MAX = 127
HEADROOM = 1.125


def topk_recall(queries, base, truth, k=10, chunk=250):
    """recall@k of the exact top-k under squared L2 (float64)."""
    hits = 0
    base_sq = (base * base).sum(1)
    for s in range(0, len(queries), chunk):
        q = queries[s:s + chunk]
        d = (q * q).sum(1)[:, None] - 2.0 * q @ base.T + base_sq[None, :]
        top = np.argsort(d, axis=1, kind='stable')[:, :k]
        for i, row in enumerate(top):
            hits += len(set(row.tolist()) & set(truth[s + i, :k].tolist()))
    return hits / (len(queries) * k)


def main(argv):
    opts = {'data': 'bench/data', 'queries': 2000}
    for key, value in zip(argv[::2], argv[1::2]):
        opts[key.lstrip('-')] = value
    data, nq = opts['data'], int(opts['queries'])
    base = read_fvecs(f'{data}/fashion-mnist-base.fvecs', None).astype(np.float64)
    queries = read_fvecs(f'{data}/fashion-mnist-query.fvecs', nq).astype(np.float64)
    # .ivecs rows have the .fvecs layout: read as float32 words, seen as int32.
    truth = read_fvecs(f'{data}/fashion-mnist-gt-{len(base)}.ivecs', nq).view('<i4')
    lo, hi = base.min(0), base.max(0)
    center = (0.5 * (lo + hi)).astype(np.float32).astype(np.float64)
    shared = np.full(base.shape[1], (hi - lo).max() * HEADROOM / (2 * CODE_MAX))
    per_dim = np.where(hi > lo, (hi - lo) * HEADROOM / (2 * CODE_MAX), 1.0)
    print(f'{len(base)} x {base.shape[1]}, {nq} queries; recall@10 of exact search on the codes')
    print(f'exact float32: {topk_recall(queries, base, truth):.4f}')
    for name, scale in (('one scale (Shoal today)', shared), ('a scale per dimension', per_dim)):
        scale = scale.astype(np.float32).astype(np.float64)
        codes = np.clip(np.rint((base - center) / scale), -CODE_MAX, CODE_MAX)
        qcodes = np.clip(np.rint((queries - center) / scale), -CODE_MAX, CODE_MAX)
        sym = topk_recall(qcodes * scale, codes * scale, truth)
        asym = topk_recall(queries, center + codes * scale, truth)
        print(f'{name}: int8 query {sym:.4f}, float query {asym:.4f}')


if __name__ == '__main__':
    main(sys.argv[1:])

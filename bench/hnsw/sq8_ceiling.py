#!/usr/bin/env python3
"""The recall ceiling of SQ8 codes, by exact search on them (no graph).

Issue 15 asked whether a scale per dimension (instead of SQ8's one scale
shared by all dimensions, src/index/sq8.c) would lift SQ8's recall ceiling.
This answers it for the benchmark's data without touching the format: it
quantizes the base like shoal__sq8_encode (a centre per dimension, codes
-127..127) with the fits shoal__sq8_fit chooses between -- one shared
scale from the widest range with 1.125 headroom, or the data's own grid
when its values are multiples of a power of two spanning at most 255 steps
(Fashion-MNIST's integer pixels) -- and with a scale per dimension, and
measures recall@10 of an exact top-10 on the codes -- with the query
quantized too (what HNSW SQ8 traverses) and with the float query against
the decoded rows. A graph search on the codes
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


def grid_step(base):
    """shoal__sq8_fit's grid: the coarsest power of two every value is a
    multiple of, if the widest range spans at most 255 of its steps; else
    None.  (The fit sees the first 1,024 records; here, all of them.)"""
    nonzero = np.abs(base[base != 0])
    if nonzero.size == 0:
        return None
    _, exponents = np.frexp(nonzero)  # value = m * 2^e, 0.5 <= m < 1
    step = 2.0 ** (exponents.min() - 60)
    while np.all(np.mod(base, step * 2) == 0) and step < 2.0 ** 127:
        step *= 2
    widest = (base.max(0) - base.min(0)).max()
    return step if widest <= 255 * step else None


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
    fits = [('one scale, widened min/max', center, shared),
            ('a scale per dimension', center, per_dim)]
    step = grid_step(base)
    if step:
        grid_center = step * np.floor(0.5 * (lo + hi) / step)
        fits.append((f'the data\'s own grid, step {step:g} (Shoal)', grid_center,
                     np.full(base.shape[1], step)))
    else:
        print('no grid of its own: Shoal uses the widened min/max fit')
    for name, c, scale in fits:
        scale = scale.astype(np.float32).astype(np.float64)
        codes = np.clip(np.rint((base - c) / scale), -CODE_MAX, CODE_MAX)
        qcodes = np.clip(np.rint((queries - c) / scale), -CODE_MAX, CODE_MAX)
        sym = topk_recall(qcodes * scale, codes * scale, truth)
        asym = topk_recall(queries, c + codes * scale, truth)
        print(f'{name}: int8 query {sym:.4f}, float query {asym:.4f}')


if __name__ == '__main__':
    main(sys.argv[1:])

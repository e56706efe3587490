#!/usr/bin/python3
"""faiss_ivf.py -- the IVF reference peer: Debian's python3-faiss (C++ faiss).

Same protocol and JSON lines as bench/ivf_native.c (see bench/ivf/run.mjs):
train on the first --base rows, add them with id i for row i, then for each
nprobe time --runs passes of single queries (index.search on a 1-row array,
one OpenMP thread) and keep the best; neighbours go to --neighbors as int32
files, and the runner computes recall.

  --config flat   IndexIVFFlat
  --config sq8    IndexIVFScalarQuantizer(QT_8bit): per-dimension min/max
                  (faiss's default), by residual
  --config pq     IndexIVFPQ(m = --pq-m, 8 bits), by residual, precomputed
                  tables (faiss's default when they fit)
  --config pqfs   IndexIVFPQFastScan(m = --pq-m, 4 bits), by residual
  --rerank 0 | R1,R2,...   R > 0 (pq, pqfs): IndexRefineFlat over the IVF
                  index with k_factor = R / k (faiss's rerank: it keeps a
                  float32 copy of every vector, as Shoal's rerank copies
                  do); one build serves every R, each R its own curve.

Training: the coarse k-means runs 10 iterations (cp.niter = 10, Shoal's
default; faiss's default is 25) on at most 256 points per centroid (faiss's
default, = Shoal's train_sample), i.e. all 60,000 rows at nlist 256.  PQ and
codebooks as Shoal trains them: 10 iterations on at most 16,384 residuals
(pq.cp.niter = 10, pq.cp.max_points_per_centroid = 16384 / ksub; faiss's
defaults are 25 and 256).  SQ8 ranges: faiss's default (all rows).  Times: train_s (index.train) and add_s (index.add).

Memory: codes_mb = faiss.serialize_index size of the IVF index (centroids,
codes, 8-byte ids, codebooks), plus for IVFPQ the precomputed table that
faiss keeps resident but does not serialize; rerank_mb = the refine
index's float32 copy; lib_mb their sum; and RSS growth over the build.

Debian's python3-faiss is a generic build (faiss.get_compile_options() says
"OPTIMIZE GENERIC"): no AVX2 kernels, so its distance loops and its fast-scan
shuffles run as SSE/scalar code.  Each search call also pays Python + SWIG
overhead, measured here as call_overhead_us (search on a one-vector
IndexFlatL2 of the same dimension) and reported with the build record.
Run with /usr/bin/python3 (the pyenv python on PATH has no faiss).
"""
import json
import os
import sys
import time

import numpy as np


def parse_args(argv):
    args = {'data': 'bench/data', 'base': 60000, 'queries': 2000, 'k': 10, 'runs': 2,
            'nlist': 256, 'nprobes': '1,2,4,8,16,32,64', 'config': 'flat', 'pq-m': 0,
            'rerank': '0', 'neighbors': None}
    it = iter(argv)
    for key in it:
        name = key.lstrip('-')
        value = next(it)
        if name not in args:
            sys.exit(f'unknown option {key}')
        args[name] = int(value) if isinstance(args[name], int) else value
    args['nprobes'] = [int(x) for x in args['nprobes'].split(',')]
    args['rerank'] = [int(x) for x in args['rerank'].split(',')]
    return args


def read_fvecs(path, limit):
    raw = np.fromfile(path, dtype='<i4')
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)[:limit]
    return np.ascontiguousarray(rows[:, 1:]).view('<f4')


def rss_bytes():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    return 0


def emit(record):
    sys.stdout.write(json.dumps(record) + '\n')
    sys.stdout.flush()


def call_overhead_us(faiss, dim, k):
    """Cost of one index.search call that does almost nothing."""
    tiny = faiss.IndexFlatL2(dim)
    tiny.add(np.zeros((1, dim), dtype='float32'))
    q = np.zeros((1, dim), dtype='float32')
    best = float('inf')
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(2000):
            tiny.search(q, k)
        best = min(best, time.perf_counter() - t)
    return best / 2000 * 1e6


def main():
    import faiss

    args = parse_args(sys.argv[1:])
    faiss.omp_set_num_threads(1)
    base = read_fvecs(os.path.join(args['data'], 'fashion-mnist-base.fvecs'), args['base'])
    queries = read_fvecs(os.path.join(args['data'], 'fashion-mnist-query.fvecs'), args['queries'])
    n, dim = base.shape
    nq, k = len(queries), args['k']
    rows = [queries[i:i + 1] for i in range(nq)]
    cfg, nlist, m = args['config'], args['nlist'], args['pq-m']
    reranks = args['rerank']
    copies = reranks[0] > 0
    if copies and cfg not in ('pq', 'pqfs'):
        sys.exit('--rerank applies to pq and pqfs')

    rss0 = rss_bytes()
    quantizer = faiss.IndexFlatL2(dim)
    if cfg == 'flat':
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_L2)
        family, params = 'ivf-flat', {'class': 'IndexIVFFlat'}
    elif cfg == 'sq8':
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                            faiss.METRIC_L2)
        family, params = 'ivf-sq8', {'class': 'IndexIVFScalarQuantizer', 'qtype': 'QT_8bit'}
    elif cfg == 'pq':
        m = m or dim // 4
        ivf = faiss.IndexIVFPQ(quantizer, dim, nlist, m, 8)
        family, params = f'ivf-pq8x{m}', {'class': 'IndexIVFPQ', 'M': m, 'nbits': 8}
    elif cfg == 'pqfs':
        m = m or dim // 2
        ivf = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, m, 4, faiss.METRIC_L2)
        family, params = f'ivf-pq4x{m}', {'class': 'IndexIVFPQFastScan', 'M': m, 'nbits': 4}
    else:
        sys.exit(f'unknown --config {cfg}')
    ivf.cp.niter = 10
    if cfg in ('pq', 'pqfs'):
        # Shoal's PQ training: 10 iterations on at most 16,384 residuals.
        ivf.pq.cp.niter = 10
        ivf.pq.cp.max_points_per_centroid = 16384 // (1 << ivf.pq.nbits)
    params.update({'nlist': nlist, 'by_residual': bool(getattr(ivf, 'by_residual', False)), 'coarse_niter': 10})
    if cfg == 'pqfs' and not ivf.by_residual:
        notes0 = ['IVFPQFastScan encodes vectors, not residuals (faiss 1.7.3 default, "much faster").']
    else:
        notes0 = []
    index = faiss.IndexRefineFlat(ivf) if copies else ivf
    if copies:
        params['refine'] = 'IndexRefineFlat'

    t0 = time.perf_counter()
    index.train(base)
    t1 = time.perf_counter()
    index.add(base)
    t2 = time.perf_counter()
    rss1 = rss_bytes()

    codes = faiss.serialize_index(ivf).size
    notes = list(notes0)
    if cfg == 'pq' and ivf.use_precomputed_table:
        table = ivf.precomputed_table.size() * 4
        codes += table
        notes.append(f'IVFPQ precomputed table {table / 2**20:.1f} MB (resident, counted in codes_mb).')
    rerank_bytes = n * dim * 4 if copies else 0
    overhead = call_overhead_us(faiss, dim, k)
    notes.append(f'faiss {faiss.__version__} generic build (no AVX2 kernels); '
                 f'Python/SWIG call overhead ~{overhead:.1f} us per search.')
    version = f'{faiss.__version__} ({faiss.get_compile_options()})'

    os.makedirs(args['neighbors'], exist_ok=True)
    for r_i, R in enumerate(reranks):
        variant = f'{family}-r{R}' if R else family
        common = {'library': 'faiss', 'variant': variant, 'base': n, 'queries': nq, 'k': k}
        emit({'type': 'build', **common, 'version': version, 'params': {**params, 'rerank': R},
              'family': family, 'shared_build': r_i > 0,
              'train_s': round(t1 - t0, 3), 'add_s': round(t2 - t1, 3), 'build_s': round(t2 - t0, 3),
              'rss_delta_mb': round((rss1 - rss0) / 2**20, 1),
              'lib_mb': round((codes + rerank_bytes) / 2**20, 2),
              'codes_mb': round(codes / 2**20, 2), 'rerank_mb': round(rerank_bytes / 2**20, 2),
              'nlist': nlist, 'call_overhead_us': round(overhead, 2), 'notes': ' '.join(notes)})
        if copies:
            index.k_factor = R / k
        ivf.nprobe = min(args['nprobes'][0], nlist)
        for i in range(min(nq, 200)):
            index.search(rows[i], k)
        for nprobe in args['nprobes']:
            if nprobe > nlist:
                continue
            ivf.nprobe = nprobe
            answers = [None] * nq
            best = float('inf')
            for _ in range(args['runs']):
                start = time.perf_counter()
                for i in range(nq):
                    answers[i] = index.search(rows[i], k)[1]
                best = min(best, time.perf_counter() - start)
            ids = np.concatenate(answers).astype('<i4').reshape(nq, k)
            path = os.path.join(args['neighbors'], f'faiss-{variant}-np{nprobe}.i32')
            ids.tofile(path)
            emit({'type': 'search', **common, 'nprobe': nprobe, 'rerank': R,
                  'qps': round(nq / best, 1), 'neighbors': path})


if __name__ == '__main__':
    main()

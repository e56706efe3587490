#!/usr/bin/python3
"""hnswlib_py.py -- the reference peer: Debian's python3-hnswlib (C++ hnswlib).

Same protocol and JSON lines as the Node adapters (see common.mjs and
run.mjs): build from the first --base rows with label i for row i, then for
each ef time --runs passes of single queries (knn_query on a 1-row array,
one thread) and keep the best; neighbours go to --neighbors as int32 files.

Parameter mapping: hnswlib's M is Shoal's M (M links per node on upper levels,
2*M on level 0), ef_construction = efConstruction, set_ef(ef) = search ef.
The build uses num_threads=1 (hnswlib defaults to every core), so build times
compare with the single-threaded builds of the other libraries.  Each query
pays Python's call overhead (a few microseconds), small next to a search.

Memory: RSS growth over the build (VmRSS from /proc/self/status); hnswlib's
Python binding does not report its own footprint.  Run with /usr/bin/python3
(the pyenv python on PATH has no hnswlib).
"""
import json
import os
import sys
import time

import numpy as np


def pass_begin(args):
    """--interleave 1: the protocol of bench/bench_util.h's pass_begin."""
    if not args['interleave']:
        return
    emit({'type': 'ready'})
    if not sys.stdin.readline():
        sys.exit(0)


def parse_args(argv):
    args = {'data': 'bench/data', 'base': 60000, 'queries': 1000, 'k': 10, 'M': 16,
            'efc': 200, 'efs': [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512],
            'runs': 2, 'neighbors': None, 'variant': None, 'interleave': 0}
    it = iter(argv)
    for key in it:
        name = key.lstrip('-')
        value = next(it)
        if name not in args:
            sys.exit(f'unknown option {key}')
        if name == 'efs':
            args[name] = [int(x) for x in value.split(',')]
        elif isinstance(args[name], int):
            args[name] = int(value)
        else:
            args[name] = value
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


def main():
    import hnswlib

    args = parse_args(sys.argv[1:])
    base = read_fvecs(os.path.join(args['data'], 'fashion-mnist-base.fvecs'), args['base'])
    queries = read_fvecs(os.path.join(args['data'], 'fashion-mnist-query.fvecs'), args['queries'])
    n, dim = base.shape
    nq, k = len(queries), args['k']
    rows = [queries[i:i + 1] for i in range(nq)]
    common = {'library': 'hnswlib', 'variant': 'python', 'base': n, 'queries': nq, 'k': k}

    rss0 = rss_bytes()
    t0 = time.perf_counter()
    index = hnswlib.Index(space='l2', dim=dim)
    index.init_index(max_elements=n, M=args['M'], ef_construction=args['efc'], random_seed=100)
    index.set_num_threads(1)
    index.add_items(base, np.arange(n), num_threads=1)
    build_s = time.perf_counter() - t0
    rss1 = rss_bytes()
    version = getattr(hnswlib, '__version__', None)
    if version is None:
        try:
            from importlib.metadata import version as pkg_version
            version = pkg_version('hnswlib')
        except Exception:
            version = 'debian python3-hnswlib'
    emit({'type': 'build', **common, 'version': version,
          'params': {'M': args['M'], 'ef_construction': args['efc'], 'threads': 1},
          'build_s': round(build_s, 3), 'rss_delta_mb': round((rss1 - rss0) / 2**20, 1),
          'lib_mb': None,
          'notes': 'C++ hnswlib through its Python binding; one knn_query call per query.'})

    os.makedirs(args['neighbors'], exist_ok=True)
    index.set_ef(max(args['efs'][0], k))
    for i in range(min(nq, 200)):
        index.knn_query(rows[i], k=k, num_threads=1)
    for ef in args['efs']:
        index.set_ef(ef)
        answers = [None] * nq
        best = float('inf')
        for _ in range(args['runs']):
            pass_begin(args)
            start = time.perf_counter()
            for i in range(nq):
                answers[i] = index.knn_query(rows[i], k=k, num_threads=1)[0]
            seconds = time.perf_counter() - start
            if args['interleave']:
                emit({'type': 'pass', 'seconds': seconds})
            best = min(best, seconds)
        ids = np.concatenate(answers).astype('<i4').reshape(nq, k)
        path = os.path.join(args['neighbors'], f'hnswlib-python-ef{ef}.i32')
        ids.tofile(path)
        emit({'type': 'search', **common, 'ef': ef, 'qps': round(nq / best, 1), 'neighbors': path})


if __name__ == '__main__':
    main()

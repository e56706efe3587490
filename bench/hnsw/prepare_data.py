#!/usr/bin/python3
"""prepare_data.py -- Fashion-MNIST as .fvecs plus exact ground truth, cached.

Reads the gzipped IDX files of Debian's dataset-fashion-mnist (60,000 train
images = the base, 10,000 test images = the queries; 28x28 uint8, the
ann-benchmarks set fashion-mnist-784-euclidean) and writes, under bench/data/:

    fashion-mnist-base.fvecs        60000 x 784 float32 (pixel values 0..255)
    fashion-mnist-query.fvecs       10000 x 784 float32
    fashion-mnist-base.labels       60000 bytes: the class label (0..9) of each
                                    base image, one uint8 per row, no header
                                    (the filter bench's `category` field)
    fashion-mnist-query.labels      10000 bytes: the same for the test images
    fashion-mnist-gt-<N>.ivecs      for each query, the ids of its 100 nearest
                                    neighbours among the first N base vectors
                                    by L2, closest first, ties by lower id
    fashion-mnist-gt-<N>-dist.ivecs the matching squared L2 distances, exact
                                    integers (at most 784 * 255^2 < 2^31)

.fvecs/.ivecs: per row, an int32 little-endian dimension, then that many
float32/int32 values (the TEXMEX format every ANN tool reads).

Ground truth is exact, not merely "very close": pixels are integers, so with
float64 arithmetic every dot product and squared norm is an integer below
2^53 and ||q||^2 - 2 q.x + ||x||^2 is computed without rounding.  BLAS (GEMM)
does the heavy part in blocks of queries; a few queries are then checked
against a naive per-vector computation.  Files are rebuilt only when missing.

Run with Debian's /usr/bin/python3 (python3-numpy); libopenblas0-pthread makes
it several times faster.  Usage: prepare_data.py [--base N ...] (default 60000;
`--base` with no sizes writes only the .fvecs and labels files).
"""
import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np

SRC = '/usr/share/datasets/fashion-mnist'
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), 'data')
GT_K = 100


def read_idx_images(path):
    """uint8 array (count, rows*cols) from a gzipped IDX3 file (big-endian header)."""
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    magic, count, rows, cols = struct.unpack('>IIII', raw[:16])
    if magic != 0x00000803:
        raise ValueError(f'{path}: magic {magic:#x} is not an IDX3 uint8 image file')
    body = np.frombuffer(raw, dtype=np.uint8, offset=16)
    if body.size != count * rows * cols:
        raise ValueError(f'{path}: {body.size} pixel bytes, header says {count}x{rows}x{cols}')
    return body.reshape(count, rows * cols)


def read_idx_labels(path):
    """uint8 array (count,) from a gzipped IDX1 label file (big-endian header)."""
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    magic, count = struct.unpack('>II', raw[:8])
    if magic != 0x00000801:
        raise ValueError(f'{path}: magic {magic:#x} is not an IDX1 uint8 label file')
    body = np.frombuffer(raw, dtype=np.uint8, offset=8)
    if body.size != count or body.max() > 9:
        raise ValueError(f'{path}: {body.size} labels (max {body.max()}), header says {count}')
    return body


def write_vecs(path, array, dtype):
    """Writes rows as .fvecs (float32) or .ivecs (int32), atomically."""
    array = np.ascontiguousarray(array, dtype=dtype)
    n, d = array.shape
    rows = np.empty((n, d + 1), dtype='<i4')
    rows[:, 0] = d
    rows[:, 1:] = array.view('<i4') if dtype == np.float32 else array
    tmp = path + '.tmp'
    rows.tofile(tmp)
    os.replace(tmp, path)


def exact_knn(base, queries, k, block=500):
    """(ids int32, squared distances float64) of the k nearest base rows per query."""
    b = base.astype(np.float64)
    b_norm = np.einsum('ij,ij->i', b, b)
    ids = np.empty((len(queries), k), dtype=np.int32)
    dist = np.empty((len(queries), k), dtype=np.float64)
    for start in range(0, len(queries), block):
        q = queries[start:start + block].astype(np.float64)
        q_norm = np.einsum('ij,ij->i', q, q)
        d = q_norm[:, None] - 2.0 * (q @ b.T) + b_norm[None, :]
        # Stable ordering: distance, then id.  argpartition narrows to a
        # superset of the k smallest (ties at the border included by taking a
        # margin), lexsort orders it exactly.
        margin = min(d.shape[1], k + 64)
        part = np.argpartition(d, margin - 1, axis=1)[:, :margin]
        for row in range(len(q)):
            cand = part[row]
            order = np.lexsort((cand, d[row, cand]))
            kth = d[row, cand[order[k - 1]]]
            # Any tie with the k-th distance outside the margin would change
            # which ids count; count them to be sure there is none.
            if np.count_nonzero(d[row] <= kth) > margin:
                order_full = np.lexsort((np.arange(d.shape[1]), d[row]))
                ids[start + row] = order_full[:k]
                dist[start + row] = d[row, order_full[:k]]
                continue
            top = cand[order[:k]]
            ids[start + row] = top
            dist[start + row] = d[row, top]
    return ids, dist


def check_naive(base, queries, ids, dist, picks):
    """Recomputes a few queries one vector at a time, in integers."""
    b = base.astype(np.int64)
    for qi in picks:
        q = queries[qi].astype(np.int64)
        d = ((b - q) ** 2).sum(axis=1)
        order = np.lexsort((np.arange(len(d)), d))[:ids.shape[1]]
        if not np.array_equal(order, ids[qi]) or not np.array_equal(d[order], dist[qi]):
            raise AssertionError(f'ground truth for query {qi} differs from the naive computation')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--base', type=int, nargs='*', default=[60000],
                    help='base sizes (first N train images) to compute ground truth for')
    args = ap.parse_args()
    os.makedirs(DATA, exist_ok=True)

    base = read_idx_images(os.path.join(SRC, 'train-images-idx3-ubyte.gz'))
    queries = read_idx_images(os.path.join(SRC, 't10k-images-idx3-ubyte.gz'))
    for name, arr in (('base', base), ('query', queries)):
        path = os.path.join(DATA, f'fashion-mnist-{name}.fvecs')
        if not os.path.exists(path):
            write_vecs(path, arr.astype(np.float32), np.float32)
            print(f'wrote {path} ({arr.shape[0]} x {arr.shape[1]})')
    for name, arr, src in (('base', base, 'train'), ('query', queries, 't10k')):
        path = os.path.join(DATA, f'fashion-mnist-{name}.labels')
        if os.path.exists(path):
            continue
        labels = read_idx_labels(os.path.join(SRC, f'{src}-labels-idx1-ubyte.gz'))
        if len(labels) != len(arr):
            sys.exit(f'{len(labels)} {src} labels for {len(arr)} images')
        labels.tofile(path + '.tmp')
        os.replace(path + '.tmp', path)
        print(f'wrote {path} ({len(labels)} labels, counts {np.bincount(labels, minlength=10).tolist()})')

    for n in args.base:
        if not 1 <= n <= len(base):
            sys.exit(f'--base {n}: must be 1..{len(base)}')
        ipath = os.path.join(DATA, f'fashion-mnist-gt-{n}.ivecs')
        fpath = os.path.join(DATA, f'fashion-mnist-gt-{n}-dist.ivecs')
        if os.path.exists(ipath) and os.path.exists(fpath):
            continue
        k = min(GT_K, n)
        t0 = time.time()
        ids, dist = exact_knn(base[:n], queries, k)
        check_naive(base[:n], queries, ids, dist, picks=[0, 1, 4999, len(queries) - 1])
        write_vecs(fpath, dist.astype(np.int32), np.int32)
        write_vecs(ipath, ids, np.int32)
        print(f'wrote {ipath} (top-{k} of {n} for {len(queries)} queries, '
              f'{time.time() - t0:.1f} s, 4 queries checked naively)')


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""plot.py IN.json OUT.png -- recall@k (x) against single-query QPS (y, log),
one line per IVF configuration (for rerank families the best R only), from
what bench/ivf/run.mjs hands over.  Debian's python3-matplotlib, headless."""
import json
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def style(curve):
    """Shoal solid and bold with circles, faiss dashed with triangles."""
    if curve['library'].startswith('shoal'):
        return {'linestyle': '-', 'linewidth': 2.2, 'marker': 'o', 'markersize': 4}
    return {'linestyle': '--', 'linewidth': 1.4, 'marker': '^', 'markersize': 4}


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        payload = json.load(f)
    run, curves, target = payload['run'], payload['curves'], payload['target']
    fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(13, 6), dpi=110)
    zoom_from = 0.9
    zoom_y = []
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    families = []
    for c in curves:
        fam = c['label'].split(' ', 1)[1].rsplit('-r', 1)[0]
        if fam not in families:
            families.append(fam)
    for c in curves:
        pts = sorted(c['points'], key=lambda p: p['nprobe'])
        xs = [p['recall'] for p in pts]
        ys = [p['qps'] for p in pts]
        zoom_y += [y for x, y in zip(xs, ys) if x >= zoom_from]
        fam = c['label'].split(' ', 1)[1].rsplit('-r', 1)[0]
        mem = f" [{c['total_mb']:.1f} MiB in memory]" if c.get('total_mb') is not None else ''
        for ax in (ax_all, ax_zoom):
            ax.plot(xs, ys, label=c['label'] + mem, color=colors[families.index(fam) % len(colors)],
                    **style(c))
    for ax in (ax_all, ax_zoom):
        ax.set_yscale('log')
        ax.set_xlabel(f"recall@{run['k']}")
        ax.grid(True, which='both', alpha=0.3)
        ax.axvline(target, color='gray', linewidth=0.8, alpha=0.6)
        ax.axvline(0.99, color='gray', linewidth=0.8, alpha=0.6, linestyle=':')
    ax_all.set_ylabel('queries per second (one thread, one query per call)')
    ax_all.legend(fontsize=7, loc='lower left')
    ax_zoom.set_xlim(zoom_from, 1.0005)
    if zoom_y:
        ax_zoom.set_ylim(min(zoom_y) / 1.3, max(zoom_y) * 1.3)
    ax_zoom.set_title(f'recall >= {zoom_from} (lines: recall {target} and 0.99)', fontsize=9)
    fig.suptitle(f"IVF, Fashion-MNIST {run['base']:,} x {run['dim']}, L2, nlist={run['nlist']}; "
                 f"{run['queries']:,} queries, nprobe swept. faiss {run.get('faiss') or ''}: "
                 "Debian generic build (no AVX2)", fontsize=10)
    fig.text(0.99, 0.005, f"{run.get('cpu', '')} ({run.get('flags') or '?'}), {run['date'][:10]}; "
             "-ext: rerank rows read per query from the segment file", ha='right', va='bottom',
             fontsize=6, color='gray')
    fig.tight_layout()
    fig.savefig(out)


if __name__ == '__main__':
    main()

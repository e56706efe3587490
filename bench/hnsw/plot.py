#!/usr/bin/python3
"""plot.py IN.json OUT.png -- recall@k (x) against QPS (y, log scale), one line
per library, from the curves bench/hnsw/run.mjs hands over.  Debian's
python3-matplotlib, headless (Agg)."""
import json
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def style(label):
    """Shoal solid and bold, native peers dashed, wasm peers dotted."""
    if label.startswith('shoal'):
        return {'linestyle': '-', 'linewidth': 2.2, 'marker': 'o', 'markersize': 4}
    if label.startswith(('hnswlib-wasm', 'edgevec')):
        return {'linestyle': ':', 'linewidth': 1.6, 'marker': 's', 'markersize': 3.5}
    return {'linestyle': '--', 'linewidth': 1.4, 'marker': '^', 'markersize': 3.5}


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        payload = json.load(f)
    run, curves = payload['run'], payload['curves']
    # Left: the whole sweep.  Right: the high-recall end, where the curves
    # crowd against 1.0 and where the matched-recall targets sit.
    fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(13, 6), dpi=110,
                                          gridspec_kw={'width_ratios': [1, 1]})
    lowest = 1.0
    zoom_from = 0.975
    zoom_y = []
    for c in curves:
        pts = sorted(c['points'], key=lambda p: p['ef'])
        if not pts:
            continue
        xs = [p['recall'] for p in pts]
        ys = [p['qps'] for p in pts]
        lowest = min(lowest, min(xs))
        zoom_y += [y for x, y in zip(xs, ys) if x >= zoom_from]
        for ax in (ax_all, ax_zoom):
            ax.plot(xs, ys, label=c['label'], **style(c['label']))
    for ax in (ax_all, ax_zoom):
        ax.set_yscale('log')
        ax.set_xlabel(f"recall@{run['k']}")
        ax.grid(True, which='both', alpha=0.3)
    ax_all.set_xlim(max(0.0, min(0.9, lowest) - 0.005), 1.0005)
    ax_all.set_ylabel('queries per second (one thread, one query at a time)')
    ax_all.legend(fontsize=8, loc='lower left')
    ax_zoom.set_xlim(zoom_from, 1.0005)
    if zoom_y:
        ax_zoom.set_ylim(min(zoom_y) / 1.3, max(zoom_y) * 1.3)
    for target in (0.98, 0.995):
        ax_zoom.axvline(target, color='gray', linewidth=0.8, linestyle='-', alpha=0.6)
    ax_zoom.set_title('high-recall end (lines: matched-recall targets 0.98, 0.995)', fontsize=9)
    fig.suptitle(f"Fashion-MNIST {run['base']:,} x 784, L2, M={run['M']}, efConstruction={run['efc']}; "
                 f"{run['queries']:,} queries, ef swept", fontsize=11)
    fig.text(0.99, 0.005, f"{run.get('cpu', '')}, Node {run.get('node', '')}, {run['date'][:10]}",
             ha='right', va='bottom', fontsize=6, color='gray')
    fig.tight_layout()
    fig.savefig(out)


if __name__ == '__main__':
    main()

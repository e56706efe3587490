/*
 * merge.h -- the merge behind shoal_index_merge, with the two knobs a
 * collection's compaction needs (merge.c).
 */
#ifndef SHOAL_MERGE_H
#define SHOAL_MERGE_H

#include "index/kind.h"

/*
 * As shoal_index_merge, but exclude[s] (NULL, or a bitmap over source s's
 * labels) drops tombstoned records, and keep_seqs keeps each record's
 * sequence number: then the survivor of an id is its highest-numbered
 * version, and records are inserted in sequence order.
 */
int shoal__merge(const shoal_index *const *sources, uint32_t n, const uint8_t *const *exclude,
                 int keep_seqs, const shoal_params *params, shoal_index **out);

#endif

/*
 * filter.h -- filter expressions over record metadata (filter.c): what a
 * search applies to every candidate while it walks the graph or scans a
 * list.  The public side is shoal_filter_* in shoal.h.
 */
#ifndef SHOAL_FILTER_H
#define SHOAL_FILTER_H

#include "shoal.h"

#include <stdint.h>

/* Whether metadata (canonical DAG-CBOR map, NULL = none) passes. */
int shoal__filter_match(const shoal_filter *filter, const uint8_t *metadata);

#endif

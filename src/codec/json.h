/*
 * json.h -- JSON text <-> canonical DAG-CBOR (json.c), for record metadata
 * and filter expressions, which hosts write as JSON (JS objects through
 * JSON.stringify, the CLI's JSONL and --filter).
 *
 * A number becomes what JavaScript's JSON.parse followed by @ipld/dag-cbor
 * would make of it: the nearest double, then an integer if it is whole and
 * within +-(2^53 - 1), else a 64-bit float (-0 becomes the integer 0).  So
 * C, the tests' JS reference and any IPLD tool agree on the bytes.
 */
#ifndef SHOAL_JSON_H
#define SHOAL_JSON_H

#include "codec/cbor.h"

/*
 * Parses one JSON value (whitespace around it allowed) into canonical
 * DAG-CBOR appended to out: object keys sorted, a repeated key rejected,
 * strings checked as UTF-8 (escapes decoded, lone surrogates rejected),
 * nesting at most max_depth.  On bad input returns SHOAL_EPARAM and a
 * message with the JSON path ("$.tags[2]") and the byte offset; out's
 * error (SHOAL_ENOMEM, SHOAL_ETOOBIG past out->max) is returned as is.
 */
int shoal__json_to_cbor(const char *text, size_t len, uint32_t max_depth, shoal__cbor_out *out,
                        char *msg, size_t msg_size);

/* Appends the JSON text of the validated item at p to out (as raw bytes):
 * no whitespace, numbers in their shortest round-trip form. */
void shoal__cbor_to_json(const uint8_t *p, shoal__cbor_out *out);

#endif

/*
 * enums.c -- the words of every enumeration, generated from the lists in
 * shoal.h, so the CLI, the docs and JS spell each value the same way.
 */
#include "internal.h"

#define SHOAL__WORD_CASE(name, value, word) \
    case value:                             \
        return word;
#define SHOAL__PARSE_IF(name, value, word) \
    if (len == sizeof word - 1 && memcmp(text, word, len) == 0) return value;

#define SHOAL__ENUM_WORDS(type, list)                                   \
    const char *shoal_##type##_word(shoal_##type value) {              \
        switch ((int)value) {                                           \
            list(SHOAL__WORD_CASE)                                      \
        default:                                                        \
            return NULL;                                                \
        }                                                               \
    }                                                                   \
    int shoal_##type##_parse(const char *text, size_t len) {            \
        if (!text) return SHOAL_EPARAM;                                 \
        list(SHOAL__PARSE_IF) return SHOAL_EPARAM;                      \
    }

SHOAL__ENUM_WORDS(metric, SHOAL_METRIC_LIST)
SHOAL__ENUM_WORDS(kind, SHOAL_KIND_LIST)
SHOAL__ENUM_WORDS(quantizer, SHOAL_QUANTIZER_LIST)
SHOAL__ENUM_WORDS(simd, SHOAL_SIMD_LIST)

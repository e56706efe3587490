/*
 * errors.c -- the version string, the error strings generated from SHOAL_ERROR_LIST,
 * and the per-handle detail message.
 */
#include <stdio.h>

#include "internal.h"

#define SHOAL__STR2(x) #x
#define SHOAL__STR(x) SHOAL__STR2(x)

const char *shoal_version(void) {
    return SHOAL__STR(SHOAL_VERSION_MAJOR) "." SHOAL__STR(SHOAL_VERSION_MINOR) "." SHOAL__STR(
        SHOAL_VERSION_PATCH);
}

int shoal_version_number(void) { return SHOAL_VERSION_NUMBER; }
const char *shoal_strerror(int code) {
    switch (code) {
    case SHOAL_OK:
        return "ok";
#define SHOAL__ERROR_TEXT(name, code, js, parent, msg) \
    case code:                                         \
        return msg;
        SHOAL_ERROR_LIST(SHOAL__ERROR_TEXT)
#undef SHOAL__ERROR_TEXT
    default:
        return "unknown error";
    }
}

const char *shoal_error_name(int code) {
    switch (code) {
    case SHOAL_OK:
        return "SHOAL_OK";
#define SHOAL__ERROR_NAME(name, code, js, parent, msg) \
    case code:                                         \
        return "SHOAL_E" #name;
        SHOAL_ERROR_LIST(SHOAL__ERROR_NAME)
#undef SHOAL__ERROR_NAME
    default:
        return NULL;
    }
}

int shoal__vmsg(char *buf, size_t size, int code, const char *fmt, va_list ap) {
    vsnprintf(buf, size, fmt, ap);
    return code;
}

int shoal__msg(char *buf, size_t size, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    shoal__vmsg(buf, size, code, fmt, ap);
    va_end(ap);
    return code;
}

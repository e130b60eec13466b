/* json.h — the one wrapper over yajl: bounded parsing into a positioned tree, and
 * generation.
 *
 * Every byte given to json_parse() may be hostile (a manifest written by a tenant, a
 * message from a guest). The parser therefore enforces a hard cap on input size and on
 * nesting depth, rejects invalid UTF-8 anywhere in the input, NUL characters inside
 * strings, duplicate object keys and trailing bytes, and reports every failure with a
 * 1-based line:column. Comments are accepted (manifests are "JSON with comments")
 * unless the caller turns them off. Nothing else in tenantd includes yajl. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/cleanup.h"
#include "lib/err.h"

enum json_type {
        JSON_NULL,
        JSON_BOOL,
        JSON_NUMBER,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT,
};

struct json_pos {
        uint32_t line; /* 1-based */
        uint32_t col;  /* 1-based, in characters */
};

struct json_value;

struct json_member {
        char *key; /* NUL-terminated; keys never contain NUL */
        struct json_pos pos;
        struct json_value *value;
};

struct json_value {
        enum json_type type;
        struct json_pos pos;
        union {
                bool boolean;
                struct {
                        char *text; /* NUMBER: the literal as written; STRING: decoded */
                        size_t len;
                } str;
                struct {
                        struct json_value **items;
                        size_t n;
                } array;
                struct {
                        struct json_member *items;
                        size_t n;
                } object;
        } u;
};

struct json_limits {
        size_t max_bytes;   /* input longer than this is refused before parsing */
        unsigned max_depth; /* arrays/objects nested deeper than this are refused */
        bool allow_comments;
};

/* Limits for manifests and policy files: 256 KiB, depth 16, comments allowed. */
extern const struct json_limits json_limits_config;
/* Limits for frames on the microVM agent channel: 1 MiB, depth 8, no comments. */
extern const struct json_limits json_limits_agent;

struct json_error {
        struct json_pos pos; /* 0:0 when the error is about the input as a whole */
        char msg[256];
};

/* Parses buf[0..len) into a tree. Returns 0 and sets *ret, or a negative errno
 * (-EINVAL bad input, -EFBIG too large, -ENOMEM) and fills *ret_err. */
int json_parse(const char *buf, size_t len, const struct json_limits *limits,
               struct json_value **ret, struct json_error *ret_err);

/* json_parse for a caller that reports with tn_err: bad input (too large included) is
 * -EINVAL with "WHAT at LINE:COL: why", and -ENOMEM is "out of memory". */
int json_parse_err(const char *buf, size_t len, const struct json_limits *limits, const char *what,
                   struct json_value **ret, struct tn_err **err);

void json_free(struct json_value *v);
DEFINE_POINTER_CLEANUP(struct json_value, json_free)
#define _cleanup_json_ _cleanup_(json_freep)

/* "an object", "a string", ... for messages. */
const char *json_type_name(enum json_type type);

/* Member lookup on an object (NULL when absent or v is not an object). */
const struct json_value *json_get(const struct json_value *v, const char *key);

/* Converts a NUMBER literal; false if it is not an integer or out of range. */
bool json_number_int64(const struct json_value *v, int64_t *ret);

/* Generation (wraps yajl_gen). Strings are escaped; output is valid UTF-8 as long as
 * the strings given are. Errors are sticky and reported by json_gen_finish(). */
struct json_gen;
struct json_gen *json_gen_new(bool pretty);
void json_gen_free(struct json_gen *g);
DEFINE_POINTER_CLEANUP(struct json_gen, json_gen_free)
#define _cleanup_json_gen_ _cleanup_(json_gen_freep)

void json_gen_object_open(struct json_gen *g);
void json_gen_object_close(struct json_gen *g);
void json_gen_array_open(struct json_gen *g);
void json_gen_array_close(struct json_gen *g);
void json_gen_key(struct json_gen *g, const char *key);
void json_gen_string(struct json_gen *g, const char *s);
void json_gen_string_len(struct json_gen *g, const char *s, size_t len);
void json_gen_int(struct json_gen *g, int64_t n);
void json_gen_bool(struct json_gen *g, bool b);
void json_gen_null(struct json_gen *g);
/* A number given as text, already valid JSON (e.g. "1.5"). */
void json_gen_number(struct json_gen *g, const char *literal);

/* A parsed tree, generated again as it was (nested at most 32 deep; deeper levels are
 * closed empty). */
void json_gen_value(struct json_gen *g, const struct json_value *v);

/* Returns 0 and the buffer (owned by g, valid until json_gen_free), or -EINVAL when a
 * call sequence was invalid. */
int json_gen_finish(struct json_gen *g, const char **ret_buf, size_t *ret_len);

/* Finishes g as one protocol line: a malloc'd copy ending in "\n" (and NUL), at most
 * max bytes with the newline. -EINVAL (invalid sequence or UTF-8), -EMSGSIZE, -ENOMEM. */
int json_gen_line(struct json_gen *g, size_t max, char **ret, size_t *ret_len);

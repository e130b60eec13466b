/* test_json.c — the yajl wrapper: tree shape, positions, limits, strictness, output. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "tap.h"

static const struct json_limits small = {.max_bytes = 4096, .max_depth = 4, .allow_comments = true};

static int parse(const char *text, struct json_value **v, struct json_error *e)
{
        return json_parse(text, strlen(text), &small, v, e);
}

static void rejects(const char *name, const char *text, size_t len, int want_r, unsigned line,
                    unsigned col, const char *want_msg)
{
        struct json_value *v = NULL;
        struct json_error e;
        int r = json_parse(text, len, &small, &v, &e);
        ok(r == want_r && v == NULL, "%s: rejected with %d (got %d)", name, want_r, r);
        ok(e.pos.line == line && e.pos.col == col, "%s: at %u:%u (got %u:%u)", name, line, col,
           e.pos.line, e.pos.col);
        ok(strstr(e.msg, want_msg) != NULL, "%s: message \"%s\" mentions \"%s\"", name, e.msg,
           want_msg);
}

static void test_tree(void)
{
        const char *text = "{\n  // comment\n  \"a\": [1, 2.5, \"x\"],\n  /* c */ \"b\": {\"c\": "
                           "true, \"d\": null}\n}";
        struct json_value *v = NULL;
        struct json_error e;
        is_int(parse(text, &v, &e), 0, "tree parses");
        if (!v)
                return;
        is_int(v->type, JSON_OBJECT, "root is an object");
        is_int(v->u.object.n, 2, "two members");
        const struct json_value *a = json_get(v, "a");
        ok(a && a->type == JSON_ARRAY && a->u.array.n == 3, "a is an array of 3");
        if (a && a->u.array.n == 3) {
                is_str(a->u.array.items[1]->u.str.text, "2.5", "number literal kept as written");
                is_int(a->u.array.items[0]->pos.line, 3, "a[0] line");
                is_int(a->u.array.items[0]->pos.col, 9, "a[0] column");
                is_int(a->u.array.items[2]->pos.col, 17, "a[2] column");
        }
        ok(v->u.object.items[0].pos.line == 3 && v->u.object.items[0].pos.col == 3,
           "key \"a\" at 3:3");
        ok(v->u.object.items[1].pos.line == 4 && v->u.object.items[1].pos.col == 11,
           "key \"b\" after a comment at 4:11 (got %u:%u)", v->u.object.items[1].pos.line,
           v->u.object.items[1].pos.col);
        const struct json_value *b = json_get(v, "b");
        ok(b && json_get(b, "c") && json_get(b, "c")->u.boolean, "b.c is true");
        ok(b && json_get(b, "d") && json_get(b, "d")->type == JSON_NULL, "b.d is null");
        ok(json_get(v, "zz") == NULL, "absent key is NULL");
        int64_t n;
        ok(a && json_number_int64(a->u.array.items[0], &n) && n == 1, "integer conversion");
        ok(a && !json_number_int64(a->u.array.items[1], &n), "2.5 is not an integer");
        json_free(v);
}

static void test_utf8_columns(void)
{
        /* "é" is two bytes but one column. */
        const char *text = "{\"k\": \"\xc3\xa9\xc3\xa9\", \"x\": 1}";
        struct json_value *v = NULL;
        struct json_error e;
        is_int(parse(text, &v, &e), 0, "UTF-8 text parses");
        if (v)
                is_int(v->u.object.items[1].pos.col, 13, "columns count characters, not bytes");
        json_free(v);
}

static void test_rejects(void)
{
        rejects("invalid UTF-8", "{\"a\": \"\xff\"}", 11, -EINVAL, 1, 8, "invalid UTF-8");
        rejects("overlong UTF-8", "{\"a\": \"\xc0\xaf\"}", 12, -EINVAL, 1, 8, "invalid UTF-8");
        rejects("surrogate in UTF-8", "{\"a\": \"\xed\xa0\x80\"}", 13, -EINVAL, 1, 8,
                "invalid UTF-8");
        rejects("truncated UTF-8", "{\"a\": \"\xe2\x82", 10, -EINVAL, 1, 8, "invalid UTF-8");
        rejects("NUL escape", "{\"a\": \"x\\u0000y\"}", 17, -EINVAL, 1, 7, "NUL");
        rejects("NUL in key", "{\"a\\u0000\": 1}", 14, -EINVAL, 1, 2, "NUL");
        rejects("duplicate key", "{\"a\": 1,\n \"a\": 2}", 17, -EINVAL, 2, 2,
                "duplicate key \"a\" (first at 1:2)");
        rejects("too deep", "[[[[[1]]]]]", 11, -EINVAL, 1, 5, "nesting deeper than 4");
        rejects("trailing comma", "{\"a\": 1,}", 9, -EINVAL, 1, 9, "invalid JSON");
        rejects("trailing garbage", "{} x", 4, -EINVAL, 1, 4, "invalid JSON");
        rejects("unterminated", "{\"a\": [1,\n", 10, -EINVAL, 2, 1, "end of input");
        rejects("empty", "", 0, -EINVAL, 0, 0, "empty input");
        rejects("only a comment", "  // nothing\n", 13, -EINVAL, 0, 0, "empty input");
        rejects("single quotes", "{'a': 1}", 8, -EINVAL, 1, 2, "invalid JSON");

        char *big = malloc(5000);
        memset(big, ' ', 5000);
        big[0] = '{';
        big[4999] = '}';
        rejects("too large", big, 5000, -EFBIG, 0, 0, "limit is 4096 bytes");
        free(big);

        static const struct json_limits strict = {.max_bytes = 100, .max_depth = 4};
        struct json_value *v = NULL;
        struct json_error e;
        ok(json_parse("{/* c */}", 9, &strict, &v, &e) == -EINVAL && !v,
           "comments refused when not allowed");
}

static void test_gen(void)
{
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        json_gen_object_open(g);
        json_gen_key(g, "s");
        json_gen_string(g, "a\"b\\c\n\x01");
        json_gen_key(g, "n");
        json_gen_int(g, -42);
        json_gen_key(g, "f");
        json_gen_number(g, "1.5");
        json_gen_key(g, "b");
        json_gen_bool(g, true);
        json_gen_key(g, "z");
        json_gen_null(g);
        json_gen_object_close(g);
        const char *buf;
        size_t len;
        is_int(json_gen_finish(g, &buf, &len), 0, "generation succeeds");
        _cleanup_free_ char *out = strndup(buf, len);
        is_str(out, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"n\":-42,\"f\":1.5,\"b\":true,\"z\":null}",
               "escaping and types");

        _cleanup_json_gen_ struct json_gen *bad = json_gen_new(false);
        json_gen_object_open(bad);
        json_gen_int(bad, 1); /* a value where a key must be */
        ok(json_gen_finish(bad, &buf, &len) < 0, "invalid call sequence is reported");

        _cleanup_json_gen_ struct json_gen *u = json_gen_new(false);
        json_gen_string(u, "\xff");
        ok(json_gen_finish(u, &buf, &len) < 0, "invalid UTF-8 output is refused");
}

int main(void)
{
        test_tree();
        test_utf8_columns();
        test_rejects();
        test_gen();
        return tap_done();
}

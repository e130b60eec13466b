/* manifest_edit.c — one value changed in a manifest's text (see manifest_edit.h). */
#include "spec/manifest_edit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"

/* The byte offset of a 1-based line:column (columns count characters, as json.c). */
static size_t offset_of(const char *text, size_t len, struct json_pos pos)
{
        uint32_t line = 1, col = 1;
        for (size_t i = 0; i < len; i++) {
                if (line == pos.line && col == pos.col)
                        return i;
                unsigned char c = (unsigned char)text[i];
                if (c == '\n') {
                        line++;
                        col = 1;
                } else if ((c & 0xC0) != 0x80) {
                        col++;
                }
        }
        return len;
}

/* The end of the scalar token starting at `off`. */
static size_t scalar_end(const char *text, size_t len, size_t off)
{
        if (off < len && text[off] == '"') {
                for (size_t i = off + 1; i < len; i++) {
                        if (text[i] == '\\')
                                i++;
                        else if (text[i] == '"')
                                return i + 1;
                }
                return len;
        }
        size_t i = off;
        while (i < len && !strchr(",}] \t\r\n/", text[i]))
                i++;
        return i;
}

static int splice(const char *text, size_t len, size_t from, size_t to, const char *insert,
                  char **ret, size_t *ret_len, struct tn_err **err)
{
        size_t ins = strlen(insert);
        char *out = malloc(len - (to - from) + ins + 1);
        if (!out)
                return tn_err_setx(err, ENOMEM, "out of memory");
        memcpy(out, text, from);
        memcpy(out + from, insert, ins);
        memcpy(out + from + ins, text + to, len - to);
        *ret_len = len - (to - from) + ins;
        out[*ret_len] = '\0';
        *ret = out;
        return 0;
}

int manifest_text_set(const char *text, size_t len, const char *path, const char *value_json,
                      char **ret, size_t *ret_len, struct tn_err **err)
{
        _cleanup_json_ struct json_value *root = NULL;
        struct json_error je;
        if (json_parse(text, len, &json_limits_config, &root, &je) < 0)
                return tn_err_setx(err, EINVAL, "%u:%u: %s", je.pos.line, je.pos.col, je.msg);
        if (root->type != JSON_OBJECT)
                return tn_err_setx(err, EINVAL, "the manifest is not a JSON object");

        char keys[8][64];
        size_t n = 0;
        for (const char *p = path; *p && n < 8;) {
                size_t l = strcspn(p, ".");
                if (l == 0 || l >= sizeof(keys[0]))
                        return tn_err_setx(err, EINVAL, "bad key path \"%s\"", path);
                memcpy(keys[n], p, l);
                keys[n++][l] = '\0';
                p += l + (p[l] == '.');
        }
        if (n == 0)
                return tn_err_setx(err, EINVAL, "empty key path");
        if (strlen(value_json) > 512)
                return tn_err_setx(err, EINVAL, "value too long");

        const struct json_value *obj = root;
        size_t depth = 0;
        while (depth < n) {
                /* KEY[NAME]: the member of the array KEY whose "name" is NAME. */
                char *sel = strchr(keys[depth], '[');
                if (sel) {
                        size_t sl = strlen(sel);
                        if (sl < 3 || sel[sl - 1] != ']' || depth + 1 == n)
                                return tn_err_setx(err, EINVAL, "bad key path \"%s\"", path);
                        *sel++ = '\0';
                        sel[sl - 2] = '\0';
                        const struct json_value *arr = json_get(obj, keys[depth]);
                        const struct json_value *found = NULL;
                        for (size_t i = 0; arr && arr->type == JSON_ARRAY && i < arr->u.array.n;
                             i++) {
                                const struct json_value *name =
                                    json_get(arr->u.array.items[i], "name");
                                if (name && name->type == JSON_STRING &&
                                    strcmp(name->u.str.text, sel) == 0)
                                        found = arr->u.array.items[i];
                        }
                        if (!found || found->type != JSON_OBJECT)
                                return tn_err_setx(err, ENOENT, "%s has no entry named \"%s\"",
                                                   keys[depth], sel);
                        obj = found;
                        depth++;
                        continue;
                }
                const struct json_value *v = json_get(obj, keys[depth]);
                if (!v)
                        break;
                if (depth + 1 == n) {
                        if (v->type == JSON_OBJECT || v->type == JSON_ARRAY)
                                return tn_err_setx(err, EINVAL, "%s is not a single value", path);
                        size_t from = offset_of(text, len, v->pos);
                        return splice(text, len, from, scalar_end(text, len, from), value_json, ret,
                                      ret_len, err);
                }
                if (v->type != JSON_OBJECT)
                        return tn_err_setx(err, EINVAL, "%s is not an object", keys[depth]);
                obj = v;
                depth++;
        }
        /* Insert "k": { "k2": ... VALUE ... }, right after the innermost '{' found. */
        char insert[2048]; /* 8 keys of < 64 bytes, a value of <= 512: always fits */
        size_t o = 0;
        for (size_t i = depth; i < n; i++)
                o += (size_t)snprintf(insert + o, sizeof(insert) - o, " \"%s\": %s", keys[i],
                                      i + 1 == n ? value_json : "{");
        for (size_t i = depth + 1; i < n; i++)
                o += (size_t)snprintf(insert + o, sizeof(insert) - o, " }");
        bool empty = obj->u.object.n == 0;
        snprintf(insert + o, sizeof(insert) - o, "%s", empty ? " " : ",");
        size_t at = offset_of(text, len, obj->pos) + 1;
        return splice(text, len, at, at, insert, ret, ret_len, err);
}

/* The keys `set` accepts, and where each lives in a manifest. */
static const struct {
        const char *key, *path;
} settable[] = {
    {"cpu.max", "cpu.max"},
    {"cpu.weight", "cpu.weight"},
    {"memory.max", "memory.max"},
    {"memory.high", "memory.high"},
    {"memory.swap", "memory.swap"},
    {"pids.max", "pids.max"},
    {"net.egress.rate", "network.egress.rate"},
    {"network.egress.rate", "network.egress.rate"},
    {"net.ingress.rate", "network.ingress.rate"},
    {"network.ingress.rate", "network.ingress.rate"},
};

const char *manifest_settable_path(const char *key)
{
        for (size_t k = 0; k < sizeof(settable) / sizeof(settable[0]); k++)
                if (strcmp(settable[k].key, key) == 0)
                        return settable[k].path;
        return NULL;
}

/* manifest_edit.h — changing one value in a manifest's text, keeping everything else
 * (comments, layout, key order) as the operator wrote it: what `tenantctl set --save`
 * writes back. Pure. */
#pragma once

#include <stddef.h>

#include "lib/err.h"

/* Returns in *ret (malloc'd, NUL-terminated) the text with the value at `path`
 * (dot-separated object keys, such as "network.egress.rate"; KEY[NAME] is the member
 * of the array KEY whose "name" is NAME, as in "volumes[data].size") replaced by `value_json`
 * (a JSON literal: "\"5mbit\"", "0.5", "100"). A missing key is inserted as the first
 * member of the innermost object that exists, with the objects in between. The value
 * replaced must be a scalar. The result is not validated here: the caller parses it. */
int manifest_text_set(const char *text, size_t len, const char *path, const char *value_json,
                      char **ret, size_t *ret_len, struct tn_err **err);

/* The keys `tenantctl set` takes (cpu.max, memory.max, net.egress.rate ...): the
 * manifest path a key changes ("net.egress.rate" is "network.egress.rate"), or NULL
 * when the key cannot be set. MANIFEST_SETTABLE_KEYS lists them for messages. */
const char *manifest_settable_path(const char *key);
#define MANIFEST_SETTABLE_KEYS                                                                     \
        "cpu.max, cpu.weight, memory.max, memory.high, memory.swap, pids.max, net.egress.rate, "   \
        "net.ingress.rate"

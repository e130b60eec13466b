/* fuzz_manifest.c — libFuzzer target for the manifest parser (and through it the JSON
 * wrapper and the unit parsers).
 *
 * Besides "no crash, no leak, no UB", it checks a property: whatever parses, explains
 * to a manifest that parses again and explains to the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct diag_list diags = {0};
        struct manifest *m = NULL;
        if (manifest_parse((const char *)data, size, &m, &diags) < 0) {
                if (diags.n == 0 && !diags.oom)
                        abort(); /* a rejection must say why */
                diag_list_clear(&diags);
                return 0;
        }
        if (diags.n != 0)
                abort();
        char *first = manifest_explain(m);
        if (!first)
                abort();
        struct manifest *again = NULL;
        if (manifest_parse(first, strlen(first), &again, &diags) < 0)
                abort(); /* explain produced something the parser refuses */
        char *second = manifest_explain(again);
        if (!second || strcmp(first, second) != 0)
                abort(); /* explain is not a fixed point */
        free(first);
        free(second);
        manifest_free(again);
        manifest_free(m);
        diag_list_clear(&diags);
        return 0;
}

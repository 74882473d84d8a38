/* libFuzzer target: arbitrary bytes -> ci_config_load_buffer -> free. Also
 * exercises the duration and signal parsers on the input as a string. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chroma_init/config.h"
#include "chroma_init/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ci_config_t *cfg = NULL;
    ci_error_t err;

    if (ci_config_load_buffer("fuzz.json", (const char *)data, size, &cfg, &err) == 0) {
        /* A loaded config is consistent: the order is a permutation of the services. */
        for (size_t i = 0; i < cfg->nservices; i++) {
            if (cfg->start_order[i] >= cfg->nservices) abort();
            if (cfg->wave[cfg->start_order[i]] >= cfg->nwaves) abort();
        }
        ci_config_free(cfg);
    } else if (cfg != NULL || err.msg[0] == '\0') {
        abort();
    }
    if (size < 64) {
        char s[64], buf[64];
        uint64_t ms;
        memcpy(s, data, size);
        s[size] = '\0';
        if (ci_duration_parse(s, &ms) == 0) ci_duration_format(ms, buf, sizeof(buf));
        (void)ci_signal_parse(s);
    }
    return 0;
}

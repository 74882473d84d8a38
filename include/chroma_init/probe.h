/* probe: native HTTP/HTTPS/TCP health probes in the event loop. (Interface;
 * the implementation lands with the probe module.) */
#ifndef CHROMA_INIT_PROBE_H
#define CHROMA_INIT_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "chroma_init/config.h"

typedef struct ci_probe ci_probe_t;
typedef struct ci_probe_result {
    bool ok;
    int http_status;
    size_t url_index;
    char output[512];
} ci_probe_result_t;
typedef void (*ci_probe_cb)(ci_probe_t *probe, const ci_probe_result_t *res, void *data);
int ci_probe_start(uv_loop_t *loop, const ci_healthcheck_t *hc, size_t first_url, ci_probe_cb cb,
                   void *data, ci_probe_t **out);
void ci_probe_cancel(ci_probe_t *probe);
void ci_probe_cleanup(void);

#endif

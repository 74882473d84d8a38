/* graph: depends_on names -> indices, cycle detection, start waves (Kahn layers). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chroma_init/graph.h"

static int seterr(ci_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int seterr(ci_error_t *err, const char *fmt, ...)
{
    va_list ap;
    if (err) {
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* Renders the cycle reachable from `start` among unplaced services into err. */
static void describe_cycle(const ci_config_t *cfg, const unsigned *wave, size_t start,
                           ci_error_t *err)
{
    size_t n = cfg->nservices, cur = start, steps = 0, first;
    size_t *pos = malloc(n * sizeof(*pos)); /* step at which a node was visited, or SIZE_MAX */
    size_t *path = malloc((n + 1) * sizeof(*path));
    char buf[CI_ERR_MAX];
    size_t len = 0;

    if (!pos || !path) {
        seterr(err, "dependency cycle");
        goto done;
    }
    for (size_t i = 0; i < n; i++) pos[i] = SIZE_MAX;
    /* Every unplaced node has an unplaced dependency: walk until a node repeats. */
    while (pos[cur] == SIZE_MAX) {
        const ci_service_conf_t *s = &cfg->services[cur];
        pos[cur] = steps;
        path[steps++] = cur;
        for (size_t d = 0; d < s->ndepends_on; d++) {
            if (wave[s->depends_on[d].index] == UINT32_MAX) {
                cur = s->depends_on[d].index;
                break;
            }
        }
    }
    first = pos[cur];
    buf[0] = '\0';
    for (size_t i = first; i < steps && len < sizeof(buf); i++)
        len +=
            (size_t)snprintf(buf + len, sizeof(buf) - len, "%s -> ", cfg->services[path[i]].name);
    if (len < sizeof(buf)) snprintf(buf + len, sizeof(buf) - len, "%s", cfg->services[cur].name);
    seterr(err, "services.%s.depends_on: dependency cycle: %s", cfg->services[cur].name, buf);
done:
    free(pos);
    free(path);
}

int ci_graph_resolve(ci_config_t *cfg, size_t *order, unsigned *wave, ci_error_t *err)
{
    size_t n = cfg->nservices, placed = 0, k = 0;
    unsigned *w = malloc((n ? n : 1) * sizeof(*w));
    unsigned cur_wave = 0, maxw = 0;
    int r = 0;

    if (!w) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        ci_service_conf_t *s = &cfg->services[i];
        w[i] = UINT32_MAX;
        for (size_t d = 0; d < s->ndepends_on; d++) {
            long idx = ci_config_find(cfg, s->depends_on[d].name);
            if (idx < 0) {
                char path[CI_ERR_MAX / 2];
                snprintf(path, sizeof(path), "services.%s.depends_on", s->name);
                r = seterr(err, "%s: unknown service \"%s\"", path, s->depends_on[d].name);
                goto fail;
            }
            s->depends_on[d].index = (size_t)idx;
        }
    }
    /* Kahn, layer by layer: a service joins wave k when all its deps are in earlier waves. */
    while (placed < n) {
        size_t added = 0;
        for (size_t i = 0; i < n; i++) {
            const ci_service_conf_t *s = &cfg->services[i];
            int ready = w[i] == UINT32_MAX;
            for (size_t d = 0; ready && d < s->ndepends_on; d++)
                if (w[s->depends_on[d].index] >= cur_wave) ready = 0;
            if (ready) {
                w[i] = cur_wave;
                added++;
            }
        }
        if (!added) {
            for (size_t i = 0; i < n; i++) {
                if (w[i] == UINT32_MAX) {
                    describe_cycle(cfg, w, i, err);
                    break;
                }
            }
            r = -EINVAL;
            goto fail;
        }
        placed += added;
        maxw = cur_wave++;
    }
    for (unsigned v = 0; v <= maxw && n; v++)
        for (size_t i = 0; i < n; i++)
            if (w[i] == v) {
                if (order) order[k] = i;
                k++;
            }
    if (wave)
        for (size_t i = 0; i < n; i++) wave[i] = w[i];
fail:
    free(w);
    return r;
}

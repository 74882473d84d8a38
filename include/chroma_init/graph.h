/* graph: dependency order of services (pure, no I/O). */
#ifndef CHROMA_INIT_GRAPH_H
#define CHROMA_INIT_GRAPH_H

#include "chroma_init/config.h"

/* Resolves every depends_on name to its index (ci_dep_t.index), rejects
 * unknown names and cycles ("services.nginx.depends_on: dependency cycle:
 * a -> b -> a"). order (nservices entries) receives the start order:
 * services grouped in waves, each wave only depending on earlier ones, in
 * config order within a wave; wave[i] (may be NULL) the wave of service i.
 * Returns 0 or -EINVAL with err (message without the file prefix). */
int ci_graph_resolve(ci_config_t *cfg, size_t *order, unsigned *wave, ci_error_t *err);

#endif

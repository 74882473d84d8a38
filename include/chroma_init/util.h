/* util: small shared helpers (durations, signal names, interpolation, strings). */
#ifndef CHROMA_INIT_UTIL_H
#define CHROMA_INIT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CI_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ci_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* duration: Compose durations ("1h2m3s", "500ms", "1.5s"; a bare number is
 * seconds) to milliseconds. Returns 0 or -EINVAL (garbage, negative) or
 * -ERANGE (overflow). */
int ci_duration_parse(const char *s, uint64_t *out_ms);
/* Renders ms as a Compose duration ("1m30s", "500ms", "0s") into buf. */
void ci_duration_format(uint64_t ms, char *buf, size_t len);

/* signals: "SIGQUIT", "QUIT", "3" (case-insensitive names). Returns the
 * signal number or -EINVAL. */
int ci_signal_parse(const char *s);
/* "SIGQUIT" for 3; "SIG<n>" style for unnamed ones (real-time). Static storage. */
const char *ci_signal_name(int sig);

/* interpolate: Compose-style ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?msg},
 * ${VAR?msg}, $$. `lookup` returns the value of a variable or NULL when unset.
 * On success *out is a new string (caller frees). On failure returns -EINVAL
 * and err (size errlen) says why, e.g. `required variable CHROMA_DOMAIN is
 * missing a value: msg`. */
typedef const char *(*ci_lookup_fn)(void *data, const char *name);
int ci_interpolate(const char *in, ci_lookup_fn lookup, void *data, char **out, char *err,
                   size_t errlen);

/* Monotonic milliseconds / microseconds. */
uint64_t ci_now_ms(void);
uint64_t ci_now_us(void);

#endif

/* duration: Compose (Go time.ParseDuration) durations <-> milliseconds. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "chroma_init/util.h"

/* Units, longest suffix first so "ms" is not read as "m" + "s". */
static const struct {
    const char *suffix;
    uint64_t us;
} units[] = {
    {"ms", 1000u}, {"us", 1u}, {"h", 3600000000u}, {"m", 60000000u}, {"s", 1000000u},
};

static int add_us(uint64_t *acc, uint64_t v)
{
    if (__builtin_add_overflow(*acc, v, acc)) return -ERANGE;
    return 0;
}

/* Parses one "<int>[.<frac>]" at *p; whole part and up to 9 fraction digits. */
static int parse_number(const char **p, uint64_t *whole, uint64_t *frac, uint64_t *frac_div,
                        int *overflow)
{
    const char *s = *p;
    size_t ndig = 0;
    *whole = 0;
    *frac = 0;
    *frac_div = 1;
    while (*s >= '0' && *s <= '9') {
        if (__builtin_mul_overflow(*whole, 10u, whole) ||
            __builtin_add_overflow(*whole, (uint64_t)(*s - '0'), whole))
            *overflow = 1;
        s++;
        ndig++;
    }
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            if (*frac_div < 1000000000u) { /* beyond 1e-9: ignored */
                *frac = *frac * 10u + (uint64_t)(*s - '0');
                *frac_div *= 10u;
            }
            s++;
            ndig++;
        }
    }
    if (ndig == 0) return -EINVAL;
    *p = s;
    return 0;
}

int ci_duration_parse(const char *s, uint64_t *out_ms)
{
    uint64_t total_us = 0, whole, frac, frac_div;
    int overflow = 0;
    const char *p = s;

    if (!s || !*s) return -EINVAL;
    if (*p == '+') p++;
    if (!*p) return -EINVAL;
    /* A bare number is seconds. */
    {
        const char *q = p;
        if (parse_number(&q, &whole, &frac, &frac_div, &overflow) == 0 && *q == '\0') {
            if (overflow) return -ERANGE;
            if (__builtin_mul_overflow(whole, 1000000u, &total_us)) return -ERANGE;
            if (add_us(&total_us, frac * 1000000u / frac_div)) return -ERANGE;
            goto done;
        }
        overflow = 0;
    }
    while (*p) {
        size_t i;
        uint64_t v;
        if (parse_number(&p, &whole, &frac, &frac_div, &overflow)) return -EINVAL;
        for (i = 0; i < CI_ARRAY_SIZE(units); i++) {
            size_t n = strlen(units[i].suffix);
            if (!strncmp(p, units[i].suffix, n)) break;
        }
        if (i == CI_ARRAY_SIZE(units)) return -EINVAL;
        p += strlen(units[i].suffix);
        if (overflow) return -ERANGE;
        if (__builtin_mul_overflow(whole, units[i].us, &v)) return -ERANGE;
        if (add_us(&total_us, v)) return -ERANGE;
        /* frac < frac_div <= 1e9 and unit <= 3.6e9: the product fits. */
        v = frac * units[i].us / frac_div;
        if (add_us(&total_us, v)) return -ERANGE;
    }
done:
    /* Round up so that a non-zero duration never becomes 0 ms. */
    *out_ms = total_us / 1000u + (total_us % 1000u ? 1u : 0u);
    return 0;
}

void ci_duration_format(uint64_t ms, char *buf, size_t len)
{
    char tmp[64];
    size_t n = 0;
    uint64_t h = ms / 3600000u, m = ms / 60000u % 60u, s = ms / 1000u % 60u, rest = ms % 1000u;

    if (!len) return;
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    if (ms < 1000u) {
        snprintf(buf, len, "%llums", (unsigned long long)ms);
        return;
    }
    if (h) n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%lluh", (unsigned long long)h);
    if (m || (h && (s || rest)))
        n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%llum", (unsigned long long)m);
    if (s || rest) {
        n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%llu", (unsigned long long)s);
        if (rest) {
            char frac[8];
            size_t fl;
            snprintf(frac, sizeof(frac), "%03llu", (unsigned long long)rest);
            fl = strlen(frac);
            while (fl > 0 && frac[fl - 1] == '0') frac[--fl] = '\0';
            n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, ".%s", frac);
        }
        snprintf(tmp + n, sizeof(tmp) - n, "s");
    }
    snprintf(buf, len, "%s", tmp);
}

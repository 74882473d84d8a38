/* interpolate: Compose-style variable substitution in strings. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chroma_init/util.h"

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

typedef struct ictx {
    ci_lookup_fn lookup;
    void *data;
    const char *input; /* the whole string, for messages (borrowed) */
    char *err;
    size_t errlen;
    int depth;
} ictx_t;

static int sb_add(sbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *np;
        while (cap < b->len + n + 1) cap *= 2;
        np = realloc(b->p, cap);
        if (!np) return -ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int fail(ictx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ictx_t *c, const char *fmt, ...)
{
    va_list ap;
    if (c->err && c->errlen) {
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int is_name_start(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static int is_name_char(char ch)
{
    return is_name_start(ch) || (ch >= '0' && ch <= '9');
}

static int expand(ictx_t *c, const char *s, size_t len, sbuf_t *out);

/* Expands the body of "${...}" (without the braces). */
static int expand_braced(ictx_t *c, const char *body, size_t blen, sbuf_t *out)
{
    char name[256];
    size_t n = 0;
    const char *op, *arg, *val;
    size_t oplen, arglen;
    int set, nonempty, r;

    while (n < blen && is_name_char(body[n])) n++;
    if (n == 0 || !is_name_start(body[0]) || n >= sizeof(name))
        return fail(c, "invalid interpolation format \"${%.*s}\"", (int)blen, body);
    memcpy(name, body, n);
    name[n] = '\0';
    op = body + n;
    oplen = 0;
    if (n < blen) {
        if (*op == ':' && n + 1 < blen && strchr("-?+", op[1]))
            oplen = 2;
        else if (strchr("-?+", *op))
            oplen = 1;
        else
            return fail(c, "invalid interpolation format \"${%.*s}\"", (int)blen, body);
    }
    arg = op + oplen;
    arglen = blen - n - oplen;
    val = c->lookup ? c->lookup(c->data, name) : NULL;
    set = val != NULL;
    nonempty = set && *val;
    if (oplen == 0) return val ? sb_add(out, val, strlen(val)) : 0;
    switch (op[oplen - 1]) {
    case '-':
        if (oplen == 2 ? nonempty : set) return sb_add(out, val, strlen(val));
        return expand(c, arg, arglen, out);
    case '+':
        if (oplen == 2 ? nonempty : set) return expand(c, arg, arglen, out);
        return 0;
    default: /* '?' */
        if (oplen == 2 ? nonempty : set) return sb_add(out, val, strlen(val));
        {
            sbuf_t msg = {0};
            r = expand(c, arg, arglen, &msg);
            if (r == 0) {
                if (msg.len)
                    r = fail(c, "required variable %s is missing a value: %s", name, msg.p);
                else
                    r = fail(c, "required variable %s is missing a value", name);
            }
            free(msg.p);
            return r;
        }
    }
}

static int expand(ictx_t *c, const char *s, size_t len, sbuf_t *out)
{
    size_t i = 0, start = 0;
    int r;

    if (++c->depth > 32) {
        c->depth--;
        return fail(c, "interpolation nested too deeply in \"%s\"", c->input);
    }
    while (i < len) {
        if (s[i] != '$') {
            i++;
            continue;
        }
        if ((r = sb_add(out, s + start, i - start))) goto done;
        if (i + 1 < len && s[i + 1] == '$') {
            if ((r = sb_add(out, "$", 1))) goto done;
            i += 2;
        } else if (i + 1 < len && s[i + 1] == '{') {
            size_t j = i + 2;
            int depth = 1;
            while (j < len) {
                if (s[j] == '$' && j + 1 < len && s[j + 1] == '$') {
                    j += 2;
                    continue;
                }
                if (s[j] == '$' && j + 1 < len && s[j + 1] == '{') {
                    depth++;
                    j += 2;
                    continue;
                }
                if (s[j] == '}' && --depth == 0) break;
                j++;
            }
            if (j >= len) {
                r = fail(c, "unterminated \"${\" in \"%s\"", c->input);
                goto done;
            }
            if ((r = expand_braced(c, s + i + 2, j - i - 2, out))) goto done;
            i = j + 1;
        } else if (i + 1 < len && is_name_start(s[i + 1])) {
            char name[256];
            size_t j = i + 1;
            while (j < len && is_name_char(s[j])) j++;
            if (j - i - 1 >= sizeof(name)) {
                r = fail(c, "variable name too long in \"%s\"", c->input);
                goto done;
            }
            memcpy(name, s + i + 1, j - i - 1);
            name[j - i - 1] = '\0';
            {
                const char *val = c->lookup ? c->lookup(c->data, name) : NULL;
                if (val && (r = sb_add(out, val, strlen(val)))) goto done;
            }
            i = j;
        } else {
            /* A lone "$" (e.g. "$1", "a $ b") is kept as is. */
            if ((r = sb_add(out, "$", 1))) goto done;
            i++;
        }
        start = i;
    }
    r = sb_add(out, s + start, i - start);
done:
    c->depth--;
    return r;
}

int ci_interpolate(const char *in, ci_lookup_fn lookup, void *data, char **out, char *err,
                   size_t errlen)
{
    ictx_t c = {lookup, data, in, err, errlen, 0};
    sbuf_t b = {0};
    int r;

    *out = NULL;
    if (err && errlen) err[0] = '\0';
    r = expand(&c, in, strlen(in), &b);
    if (r == 0 && !b.p) r = sb_add(&b, "", 0);
    if (r) {
        free(b.p);
        if (r == -ENOMEM) fail(&c, "out of memory");
        return r;
    }
    *out = b.p;
    return 0;
}

/* config: init.json -> ci_config_t. Parses with jansson, validates one object
 * at a time while tracking the JSON path for messages, interpolates every
 * string value, fills defaults, then resolves the dependency graph. No json_t
 * outlives ci_config_load_buffer(). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "chroma_init/config.h"
#include "chroma_init/graph.h"
#include "chroma_init/util.h"

#define DURATION_HINT "(expected e.g. \"500ms\", \"30s\", \"1m30s\")"

/* One step of a JSON path: an object key or an array index. */
typedef struct seg {
    const char *key; /* object key (borrowed: a literal or a key of the parsed json_t), or NULL */
    size_t idx;      /* array index, when key is NULL */
} seg_t;

#define MAX_SEGS 32

typedef struct ctx {
    const char *name; /* file name for messages (borrowed) */
    ci_error_t *err;
    const char *buf; /* the parsed text (borrowed), to find where a path is for messages */
    size_t len;
    char path[CI_ERR_MAX / 2]; /* current JSON path, e.g. services.nginx.restart */
    size_t plen;
    seg_t segs[MAX_SEGS]; /* the same path as segments (unambiguous: keys may hold dots) */
    size_t nsegs;         /* may exceed MAX_SEGS: deeper segments are not recorded */
    ci_config_t *cfg;
    int env_phase; /* interpolating the top-level environment: process env only */
} ctx_t;

/* ---- messages and JSON paths ---------------------------------------------------------- */

/* snprintf into err->msg, truncating silently. */
static void put(ci_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(ci_error_t *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* ---- positions: where a JSON path is in the text ----------------------------------------
 * Runs only on text jansson has accepted (so it is valid JSON), but stays in bounds and
 * terminates on anything. Lines and columns are 1-based; columns count characters (UTF-8
 * lead bytes), as jansson does for syntax errors. */

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static size_t skip_ws(const char *b, size_t len, size_t i)
{
    while (i < len && is_ws(b[i])) i++;
    return i;
}

/* b[i] is '"': returns the offset just past the closing quote. */
static size_t skip_str(const char *b, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (b[i] == '\\')
            i++;
        else if (b[i] == '"')
            return i + 1;
    }
    return len;
}

/* Skips the value at b[i]; returns the offset just past it. */
static size_t skip_value(const char *b, size_t len, size_t i)
{
    size_t depth = 0;
    while (i < len) {
        char ch = b[i];
        if (ch == '"') {
            i = skip_str(b, len, i);
        } else if (ch == '{' || ch == '[') {
            depth++;
            i++;
        } else if (ch == '}' || ch == ']') {
            if (!depth) return i;
            depth--;
            i++;
        } else if (depth) {
            i++; /* whitespace, ',', ':' or part of a number or literal */
        } else {
            while (i < len && !is_ws(b[i]) && !strchr(",:]}", b[i])) i++;
            return i;
        }
        if (!depth) return i;
    }
    return i;
}

static int hex4(const char *b, size_t len, size_t i, unsigned *out)
{
    unsigned v = 0;
    if (len < 4 || i > len - 4) return -1;
    for (size_t k = i; k < i + 4; k++) {
        char ch = b[k];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v |= (unsigned)(ch - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Does the JSON string at b[i] (a '"') decode to exactly `key`? */
static int key_eq(const char *b, size_t len, size_t i, const char *key)
{
    const unsigned char *k = (const unsigned char *)key;
    for (i++; i < len && b[i] != '"';) {
        unsigned char u[4];
        size_t n = 1;
        if (b[i] != '\\') {
            u[0] = (unsigned char)b[i++];
        } else {
            char e = i + 1 < len ? b[i + 1] : '\0';
            unsigned cp;
            i += 2;
            switch (e) {
            case 'b':
                u[0] = '\b';
                break;
            case 'f':
                u[0] = '\f';
                break;
            case 'n':
                u[0] = '\n';
                break;
            case 'r':
                u[0] = '\r';
                break;
            case 't':
                u[0] = '\t';
                break;
            case 'u':
                if (hex4(b, len, i, &cp)) return 0;
                i += 4;
                if (cp >= 0xd800 && cp < 0xdc00) {
                    unsigned lo;
                    if (i + 1 >= len || b[i] != '\\' || b[i + 1] != 'u' || hex4(b, len, i + 2, &lo))
                        return 0;
                    i += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                if (cp < 0x80) {
                    u[0] = (unsigned char)cp;
                } else if (cp < 0x800) {
                    u[0] = (unsigned char)(0xc0 | cp >> 6);
                    u[1] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 2;
                } else if (cp < 0x10000) {
                    u[0] = (unsigned char)(0xe0 | cp >> 12);
                    u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                    u[2] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 3;
                } else {
                    u[0] = (unsigned char)(0xf0 | cp >> 18);
                    u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
                    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                    u[3] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 4;
                }
                break;
            default:
                u[0] = (unsigned char)e;
                break; /* '"', '\\', '/' */
            }
        }
        for (size_t j = 0; j < n; j++)
            if (!*k || *k++ != u[j]) return 0;
    }
    return *k == '\0';
}

/* Offset of the value at path segs[0..n) (of its key if at_key and the last segment is a key).
 * A step that cannot be followed stops at the deepest value found (the top level at worst). */
static size_t locate(const char *b, size_t len, const seg_t *segs, size_t n, int at_key)
{
    size_t at = skip_ws(b, len, 0);
    for (size_t s = 0; s < n; s++) {
        size_t i = at, found = SIZE_MAX, key_at = 0;
        if (i >= len) break;
        if (segs[s].key) {
            if (b[i] != '{') break;
            i = skip_ws(b, len, i + 1);
            while (i < len && b[i] == '"') {
                int eq = key_eq(b, len, i, segs[s].key);
                key_at = i;
                i = skip_ws(b, len, skip_str(b, len, i));
                if (i < len && b[i] == ':') i = skip_ws(b, len, i + 1);
                if (eq) {
                    found = i;
                    break;
                }
                i = skip_ws(b, len, skip_value(b, len, i));
                if (i >= len || b[i] != ',') break;
                i = skip_ws(b, len, i + 1);
            }
        } else {
            if (b[i] != '[') break;
            i = skip_ws(b, len, i + 1);
            for (size_t idx = 0; i < len && b[i] != ']'; idx++) {
                if (idx == segs[s].idx) {
                    found = i;
                    break;
                }
                i = skip_ws(b, len, skip_value(b, len, i));
                if (i >= len || b[i] != ',') break;
                i = skip_ws(b, len, i + 1);
            }
        }
        if (found == SIZE_MAX) break;
        if (s + 1 == n && at_key && segs[s].key) return key_at;
        at = found;
    }
    return at;
}

/* 1-based line and column (in characters) of offset off. */
static void line_col(const char *b, size_t len, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (b[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)b[i] & 0xc0) != 0x80) {
            (*col)++;
        }
    }
}

/* "name:LINE:COL: path: msg" for the path segs[0..n) (see locate() for at_key). */
static void put_at(ci_error_t *err, const char *name, const char *buf, size_t len,
                   const seg_t *segs, size_t n, int at_key, const char *path, const char *msg)
{
    int line, col;
    line_col(buf, len, locate(buf, len, segs, n, at_key), &line, &col);
    if (path && *path)
        put(err, "%s:%d:%d: %s: %s", name, line, col, path, msg);
    else
        put(err, "%s:%d:%d: %s", name, line, col, msg);
}

/* The error at the current path: at its value, at its key if at_key, or, if extra_key is
 * set, at the key extra_key of the object there (unknown keys, bad names). */
static int vfail(ctx_t *c, const char *extra_key, int at_key, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static int vfail(ctx_t *c, const char *extra_key, int at_key, const char *fmt, va_list ap)
{
    char msg[CI_ERR_MAX];
    seg_t segs[MAX_SEGS + 1];
    size_t n = c->nsegs < MAX_SEGS ? c->nsegs : MAX_SEGS;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    memcpy(segs, c->segs, n * sizeof(seg_t));
    if (c->nsegs > MAX_SEGS) {
        at_key = 0; /* too deep to record: point at the deepest recorded value */
    } else if (extra_key) {
        segs[n].key = extra_key;
        segs[n++].idx = 0;
        at_key = 1;
    }
    put_at(c->err, c->name, c->buf, c->len, segs, n, at_key, c->path, msg);
    return -EINVAL;
}

static int fail(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = vfail(c, NULL, 0, fmt, ap);
    va_end(ap);
    return r;
}

/* An error about the key `key` of the object at the current path (points at the key). */
static int fail_key(ctx_t *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_key(ctx_t *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = vfail(c, key, 1, fmt, ap);
    va_end(ap);
    return r;
}

/* An error about the last key of the current path itself (points at the key). */
static int fail_this_key(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_this_key(ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = vfail(c, NULL, 1, fmt, ap);
    va_end(ap);
    return r;
}

/* Pushes a path segment; key is borrowed and must outlive the matching pop(). */
static void push_seg(ctx_t *c, const char *key, size_t idx)
{
    if (c->nsegs < MAX_SEGS) {
        c->segs[c->nsegs].key = key;
        c->segs[c->nsegs].idx = idx;
    }
    c->nsegs++;
}

static size_t push(ctx_t *c, const char *key)
{
    size_t old = c->plen;
    push_seg(c, key, 0);
    if (old < sizeof(c->path) - 1)
        snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? "." : "", key);
    c->plen = strlen(c->path);
    return old;
}

static size_t push_idx(ctx_t *c, size_t i)
{
    size_t old = c->plen;
    push_seg(c, NULL, i);
    if (old < sizeof(c->path) - 1) snprintf(c->path + old, sizeof(c->path) - old, "[%zu]", i);
    c->plen = strlen(c->path);
    return old;
}

/* Undoes the matching push()/push_idx() (which returned old). */
static void pop(ctx_t *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
    c->nsegs--;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static int expect(ctx_t *c, const json_t *v, json_type t, const char *what)
{
    if (json_typeof(v) == t) return 0;
    return fail(c, "expected %s, got %s", what, type_name(v));
}

/* Checks that v is an object whose keys are all in `allowed` (NULL-terminated). */
static int expect_keys(ctx_t *c, json_t *v, const char *const *allowed)
{
    const char *key;
    json_t *val;
    int r = expect(c, v, JSON_OBJECT, "an object");
    if (r) return r;
    json_object_foreach(v, key, val)
    {
        size_t i;
        for (i = 0; allowed[i]; i++)
            if (!strcmp(key, allowed[i])) break;
        if (!allowed[i]) return fail_key(c, key, "unknown key \"%s\"", key);
    }
    return 0;
}

/* Runs CALL (which sees `fv`, the value) with KEY pushed on the path, if KEY is present. */
#define FIELD(obj, key, call)                                                                      \
    do {                                                                                           \
        json_t *fv = json_object_get((obj), (key));                                                \
        if (fv) {                                                                                  \
            size_t mark_ = push(c, (key));                                                         \
            int r_ = (call);                                                                       \
            pop(c, mark_);                                                                         \
            if (r_) return r_;                                                                     \
        }                                                                                          \
    } while (0)

/* ---- interpolation -------------------------------------------------------------------- */

static const char *env_find(char **env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env && env[i]; i++)
        if (!strncmp(env[i], name, n) && env[i][n] == '=') return env[i] + n + 1;
    return NULL;
}

static const char *lookup(void *data, const char *name)
{
    ctx_t *c = data;
    const char *v = NULL;
    if (!c->env_phase) v = env_find(c->cfg->environment, name);
    return v ? v : getenv(name);
}

/* Interpolates a string value at the current path. *out: caller frees. */
static int interp(ctx_t *c, const char *in, char **out)
{
    char why[CI_ERR_MAX / 2];
    int r = ci_interpolate(in, lookup, c, out, why, sizeof(why));
    if (r == -ENOMEM) return r;
    if (r) return fail(c, "%s", why);
    return 0;
}

/* ---- scalar getters (value at the current path) --------------------------------------- */

static int get_str(ctx_t *c, json_t *v, char **out)
{
    int r = expect(c, v, JSON_STRING, "a string");
    if (r) return r;
    free(*out);
    *out = NULL;
    return interp(c, json_string_value(v), out);
}

static int get_nonempty_str(ctx_t *c, json_t *v, char **out)
{
    int r = get_str(c, v, out);
    if (r) return r;
    if (!**out) return fail(c, "must not be empty");
    return 0;
}

static int get_bool(ctx_t *c, json_t *v, bool *out)
{
    if (!json_is_boolean(v)) return fail(c, "expected a boolean, got %s", type_name(v));
    *out = json_is_true(v);
    return 0;
}

static int get_duration(ctx_t *c, json_t *v, uint64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0) return fail(c, "invalid duration %lld " DURATION_HINT, (long long)n);
        if ((unsigned long long)n > UINT64_MAX / 1000u)
            return fail(c, "duration %lld is out of range", (long long)n);
        *out = (uint64_t)n * 1000u;
        return 0;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v), ms;
        if (!(x >= 0)) return fail(c, "invalid duration %g " DURATION_HINT, x);
        if (x > 1e15) return fail(c, "duration %g is out of range", x);
        ms = x * 1000.0;
        *out = (uint64_t)ms;
        if ((double)*out < ms) (*out)++;
        return 0;
    }
    if (json_is_string(v)) {
        char *s = NULL;
        int r = interp(c, json_string_value(v), &s);
        if (r) return r;
        r = ci_duration_parse(s, out);
        if (r == -ERANGE)
            r = fail(c, "duration \"%s\" is out of range", s);
        else if (r)
            r = fail(c, "invalid duration \"%s\" " DURATION_HINT, s);
        free(s);
        return r;
    }
    return fail(c, "expected a duration (a string or a number of seconds), got %s", type_name(v));
}

static int get_signal(ctx_t *c, json_t *v, int *out)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 1 || n > SIGRTMAX) return fail(c, "invalid signal %lld", (long long)n);
        *out = (int)n;
        return 0;
    }
    if (json_is_string(v)) {
        char *s = NULL;
        int r = interp(c, json_string_value(v), &s);
        if (r) return r;
        r = ci_signal_parse(s);
        if (r < 0)
            r = fail(c, "invalid signal \"%s\"", s);
        else {
            *out = r;
            r = 0;
        }
        free(s);
        return r;
    }
    return fail(c, "expected a signal (a name or a number), got %s", type_name(v));
}

/* A JSON array of strings -> NULL-terminated argv (caller frees via the config). */
static int get_strv(ctx_t *c, json_t *v, char ***out, size_t *n, int nonempty_items)
{
    size_t i, len;
    int r = expect(c, v, JSON_ARRAY, "an array");
    if (r) return r;
    len = json_array_size(v);
    if (len == 0) return fail(c, "must not be empty");
    *out = calloc(len + 1, sizeof(char *));
    if (!*out) return -ENOMEM;
    for (i = 0; i < len; i++) {
        size_t mark = push_idx(c, i);
        r = nonempty_items ? get_nonempty_str(c, json_array_get(v, i), &(*out)[i])
                           : get_str(c, json_array_get(v, i), &(*out)[i]);
        pop(c, mark);
        if (r) return r;
    }
    *n = len;
    return 0;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

/* ---- syntax checks -------------------------------------------------------------------- */

static int all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 10) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return strtoull(s, NULL, 10) < 4294967295ull || n < 10;
}

static int is_alpha(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static int is_alnum(char ch)
{
    return is_alpha(ch) || (ch >= '0' && ch <= '9');
}

/* A POSIX-ish user or group name, or a numeric id. */
static int user_part_ok(const char *s, size_t n)
{
    if (all_digits(s, n)) return 1;
    if (n == 0 || n > 32 || !(is_alpha(s[0]) || s[0] == '_')) return 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i] == '$' && i == n - 1) break;
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-') return 0;
    }
    return 1;
}

static int user_ok(const char *s)
{
    const char *colon = strchr(s, ':');
    if (!colon) return user_part_ok(s, strlen(s));
    if (strchr(colon + 1, ':')) return 0;
    return user_part_ok(s, (size_t)(colon - s)) && user_part_ok(colon + 1, strlen(colon + 1));
}

static int service_name_ok(const char *s)
{
    if (!is_alnum(s[0])) return 0;
    for (s++; *s; s++)
        if (!is_alnum(*s) && *s != '_' && *s != '.' && *s != '-') return 0;
    return 1;
}

static int port_ok(const char *s, size_t n)
{
    unsigned long v = 0;
    if (n == 0 || n > 5) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

static int host_ok(const char *s, size_t n)
{
    if (n == 0) return 0;
    if (s[0] == '[') {
        if (n < 3 || s[n - 1] != ']') return 0;
        for (size_t i = 1; i < n - 1; i++)
            if (!is_alnum(s[i]) && s[i] != ':' && s[i] != '.' && s[i] != '%') return 0;
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_') return 0;
    return 1;
}

/* "host:port" or "[v6]:port" starting at s, n bytes. NULL or the reason it is wrong. */
static const char *hostport_check(const char *s, size_t n, int port_required)
{
    size_t hlen = n;
    if (n && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb) return "invalid host";
        hlen = (size_t)(rb - s) + 1;
        if (hlen < n && s[hlen] != ':') return "invalid host";
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon) hlen = (size_t)(colon - s);
    }
    if (hlen == 0) return "missing host";
    if (!host_ok(s, hlen)) return "invalid host";
    if (hlen == n) return port_required ? "missing port" : NULL;
    if (!port_ok(s + hlen + 1, n - hlen - 1)) return "invalid port";
    return NULL;
}

/* NULL when u is an acceptable http(s) URL, else the reason. */
static const char *url_check(const char *u)
{
    const char *p, *auth_end, *why;
    if (!strncmp(u, "http://", 7))
        p = u + 7;
    else if (!strncmp(u, "https://", 8))
        p = u + 8;
    else
        return "expected an http:// or https:// URL";
    auth_end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(auth_end - p))) return "user info is not supported";
    why = hostport_check(p, (size_t)(auth_end - p), 0);
    if (why) return why;
    for (p = auth_end; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) return "invalid character in path";
    return NULL;
}

/* "/K=V/K=V", slashes escaped with a backslash. */
static int subject_ok(const char *s)
{
    if (*s != '/') return 0;
    while (*s == '/') {
        const char *k = ++s;
        int seen_eq = 0, vlen = 0;
        while (*s && *s != '=' && (is_alnum(*s) || *s == '.')) s++;
        if (s == k || *s != '=') return 0;
        s++;
        seen_eq = 1;
        while (*s && *s != '/') {
            if (*s == '\\' && s[1]) s++;
            s++;
            vlen++;
        }
        if (!seen_eq || vlen == 0) return 0;
    }
    return *s == '\0';
}

/* ---- environment ---------------------------------------------------------------------- */

/* Sets KEY (klen bytes) to VAL in the "K=V" list, replacing an existing entry. */
static int env_set(char ***env, size_t *n, const char *key, size_t klen, const char *val)
{
    char *kv = malloc(klen + strlen(val) + 2), **nv;
    if (!kv) return -ENOMEM;
    memcpy(kv, key, klen);
    kv[klen] = '=';
    strcpy(kv + klen + 1, val);
    for (size_t i = 0; i < *n; i++) {
        if (!strncmp((*env)[i], key, klen) && (*env)[i][klen] == '=') {
            free((*env)[i]);
            (*env)[i] = kv;
            return 0;
        }
    }
    nv = realloc(*env, (*n + 2) * sizeof(char *));
    if (!nv) {
        free(kv);
        return -ENOMEM;
    }
    nv[(*n)++] = kv;
    nv[*n] = NULL;
    *env = nv;
    return 0;
}

static int env_key_ok(const char *k, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] == '=' || (unsigned char)k[i] <= ' ') return 0;
    return 1;
}

/* One value of the map form, stringified; NULL value: taken from the lookup. */
static int env_value(ctx_t *c, json_t *v, char **out)
{
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return interp(c, json_string_value(v), out);
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%.15g", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(buf, sizeof(buf), "true");
        break;
    case JSON_FALSE:
        snprintf(buf, sizeof(buf), "false");
        break;
    default:
        return fail(c, "expected a string, a number or a boolean, got %s", type_name(v));
    }
    *out = strdup(buf);
    return *out ? 0 : -ENOMEM;
}

/* Environment in map or list ("K=V") form, merged into *env. */
static int parse_env(ctx_t *c, json_t *v, char ***env, size_t *n)
{
    int r = 0;
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val)
        {
            size_t mark = push(c, key);
            char *s = NULL;
            if (!env_key_ok(key, strlen(key)))
                r = fail_this_key(c, "invalid variable name \"%s\"", key);
            else if (json_is_null(val)) {
                const char *inherited = lookup(c, key);
                if (inherited) r = env_set(env, n, key, strlen(key), inherited);
            } else if (!(r = env_value(c, val, &s)))
                r = env_set(env, n, key, strlen(key), s);
            free(s);
            pop(c, mark);
            if (r) return r;
        }
        return 0;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            size_t mark = push_idx(c, i);
            char *s = NULL;
            r = get_str(c, json_array_get(v, i), &s);
            if (!r) {
                char *eq = strchr(s, '=');
                size_t klen = eq ? (size_t)(eq - s) : strlen(s);
                if (!env_key_ok(s, klen))
                    r = fail(c, "invalid environment entry \"%s\" (expected \"KEY=VALUE\")", s);
                else if (eq)
                    r = env_set(env, n, s, klen, eq + 1);
                else {
                    const char *inherited = lookup(c, s);
                    if (inherited) r = env_set(env, n, s, klen, inherited);
                }
            }
            free(s);
            pop(c, mark);
            if (r) return r;
        }
        return 0;
    }
    return fail(c, "expected an object or an array, got %s", type_name(v));
}

/* ---- top-level log -------------------------------------------------------------------- */

static int get_log_format(ctx_t *c, json_t *v, ci_log_format_t *out)
{
    char *s = NULL;
    int r = get_str(c, v, &s);
    if (r) return r;
    if (!strcmp(s, "text"))
        *out = CI_LOG_TEXT;
    else if (!strcmp(s, "json"))
        *out = CI_LOG_JSON;
    else
        r = fail(c, "invalid log format \"%s\" (expected \"text\" or \"json\")", s);
    free(s);
    return r;
}

static int parse_log(ctx_t *c, json_t *obj)
{
    static const char *const keys[] = {"format", "prefix", "timestamps", NULL};
    ci_config_t *cfg = c->cfg;
    int r = expect_keys(c, obj, keys);
    if (r) return r;
    FIELD(obj, "format", get_log_format(c, fv, &cfg->log_format));
    FIELD(obj, "prefix", get_bool(c, fv, &cfg->log_prefix));
    FIELD(obj, "timestamps", get_bool(c, fv, &cfg->log_timestamps));
    return 0;
}

/* ---- certgen -------------------------------------------------------------------------- */

static int get_domains(ctx_t *c, json_t *v, ci_certgen_conf_t *cg)
{
    char *s = NULL, *orig = NULL, *p, *tok;
    int r = get_str(c, v, &s);
    if (r) return r;
    if (!(orig = strdup(s))) {
        free(s);
        return -ENOMEM;
    }
    free_strv(cg->domains);
    cg->domains = NULL;
    cg->ndomains = 0;
    p = s;
    for (;;) {
        char *end = strchr(p, ',');
        char **nd;
        size_t len;
        if (end) *end = '\0';
        while (*p == ' ' || *p == '\t') p++;
        len = strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) p[--len] = '\0';
        if (!len) {
            r = fail(c, "invalid domain list \"%s\": empty item", orig);
            break;
        }
        if (strpbrk(p, " \t/")) {
            r = fail(c, "invalid domain \"%s\"", p);
            break;
        }
        nd = realloc(cg->domains, (cg->ndomains + 2) * sizeof(char *));
        if (!nd) {
            r = -ENOMEM;
            break;
        }
        cg->domains = nd;
        tok = strdup(p);
        cg->domains[cg->ndomains] = tok;
        cg->domains[tok ? ++cg->ndomains : cg->ndomains] = NULL;
        if (!tok) {
            r = -ENOMEM;
            break;
        }
        if (!end) break;
        p = end + 1;
    }
    free(orig);
    free(s);
    return r;
}

static int get_subject(ctx_t *c, json_t *v, char **out)
{
    int r = get_str(c, v, out);
    if (r) return r;
    if (!subject_ok(*out))
        return fail(c, "invalid subject \"%s\" (expected \"/K=V/K=V...\", e.g. \"/O=Chroma/C=US\")",
                    *out);
    return 0;
}

static int get_key_type(ctx_t *c, json_t *v, char **out)
{
    static const char *const types[] = {"rsa:2048", "rsa:4096", "ec:P-256", "ec:P-384", "ed25519"};
    int r = get_str(c, v, out);
    if (r) return r;
    for (size_t i = 0; i < CI_ARRAY_SIZE(types); i++)
        if (!strcmp(*out, types[i])) return 0;
    return fail(c,
                "invalid key_type \"%s\" (expected \"rsa:2048\", \"rsa:4096\", \"ec:P-256\", "
                "\"ec:P-384\" or \"ed25519\")",
                *out);
}

static int get_days(ctx_t *c, json_t *v, int *out)
{
    json_int_t n;
    int r = expect(c, v, JSON_INTEGER, "an integer");
    if (r) return r;
    n = json_integer_value(v);
    if (n < 1 || n > 36500) return fail(c, "must be between 1 and 36500, got %lld", (long long)n);
    *out = (int)n;
    return 0;
}

static int get_user(ctx_t *c, json_t *v, char **out, const char *expected)
{
    int r;
    if (json_is_integer(v)) { /* a bare uid, as YAML users write it */
        char buf[32];
        json_int_t n = json_integer_value(v);
        if (n < 0 || n >= 4294967295LL) return fail(c, "invalid uid %lld", (long long)n);
        snprintf(buf, sizeof(buf), "%lld", (long long)n);
        free(*out);
        *out = strdup(buf);
        return *out ? 0 : -ENOMEM;
    }
    if (!json_is_string(v))
        return fail(c, "expected a string (or a numeric uid), got %s", type_name(v));
    r = get_str(c, v, out);
    if (r) return r;
    if (!user_ok(*out)) return fail(c, "invalid user \"%s\" (expected %s)", *out, expected);
    return 0;
}

#define USER_FORMS "\"name\", \"uid\", \"uid:gid\" or \"name:group\""
#define OWNER_FORMS "\"user\" or \"user:group\""

static int parse_certgen(ctx_t *c, json_t *obj, ci_certgen_conf_t *cg)
{
    static const char *const keys[] = {"cert", "key",          "domain", "subject", "key_type",
                                       "days", "renew_before", "owner",  NULL};
    int r = expect_keys(c, obj, keys);
    if (r) return r;
    if (!json_object_get(obj, "cert")) return fail(c, "missing required key \"cert\"");
    if (!json_object_get(obj, "key")) return fail(c, "missing required key \"key\"");
    FIELD(obj, "cert", get_nonempty_str(c, fv, &cg->cert));
    FIELD(obj, "key", get_nonempty_str(c, fv, &cg->key));
    FIELD(obj, "domain", get_domains(c, fv, cg));
    FIELD(obj, "subject", get_subject(c, fv, &cg->subject));
    FIELD(obj, "key_type", get_key_type(c, fv, &cg->key_type));
    FIELD(obj, "days", get_days(c, fv, &cg->days));
    FIELD(obj, "renew_before", get_duration(c, fv, &cg->renew_before_ms));
    FIELD(obj, "owner", get_user(c, fv, &cg->owner, OWNER_FORMS));
    return 0;
}

/* ---- command, healthcheck ------------------------------------------------------------- */

static int shell_argv(const char *s, char ***argv, size_t *argc)
{
    *argv = calloc(4, sizeof(char *));
    if (!*argv) return -ENOMEM;
    (*argv)[0] = strdup("/bin/sh");
    (*argv)[1] = strdup("-c");
    (*argv)[2] = strdup(s);
    *argc = 3;
    if (!(*argv)[0] || !(*argv)[1] || !(*argv)[2]) return -ENOMEM;
    return 0;
}

static int get_command(ctx_t *c, json_t *v, ci_service_conf_t *s)
{
    if (json_is_string(v)) {
        char *str = NULL;
        int r = get_nonempty_str(c, v, &str);
        if (!r) r = shell_argv(str, &s->command, &s->command_len);
        free(str);
        s->command_shell = true;
        return r;
    }
    if (json_is_array(v)) {
        int r = get_strv(c, v, &s->command, &s->command_len, 0);
        if (r) return r;
        if (!s->command[0][0]) {
            size_t mark = push_idx(c, 0);
            r = fail(c, "must not be empty");
            pop(c, mark);
        }
        return r;
    }
    return fail(c, "expected a string or an array, got %s", type_name(v));
}

static int get_test(ctx_t *c, json_t *v, ci_healthcheck_t *hc)
{
    char *kind = NULL;
    size_t n, mark;
    int r;

    if (json_is_string(v)) {
        char *str = NULL;
        r = get_nonempty_str(c, v, &str);
        if (!r) r = shell_argv(str, &hc->argv, &hc->argc);
        free(str);
        hc->kind = CI_HC_SHELL;
        return r;
    }
    if (!json_is_array(v)) return fail(c, "expected a string or an array, got %s", type_name(v));
    n = json_array_size(v);
    if (n == 0) return fail(c, "must not be empty");
    mark = push_idx(c, 0);
    r = get_str(c, json_array_get(v, 0), &kind);
    pop(c, mark);
    if (r) goto done;
    if (!strcmp(kind, "NONE")) {
        hc->kind = CI_HC_NONE;
        if (n != 1) r = fail(c, "[\"NONE\"] takes no arguments");
        goto done;
    }
    if (!strcmp(kind, "CMD"))
        hc->kind = CI_HC_CMD;
    else if (!strcmp(kind, "CMD-SHELL"))
        hc->kind = CI_HC_SHELL;
    else if (!strcmp(kind, "HTTP"))
        hc->kind = CI_HC_HTTP;
    else if (!strcmp(kind, "TCP"))
        hc->kind = CI_HC_TCP;
    else {
        r = fail(c,
                 "unknown test type \"%s\" (expected \"CMD\", \"CMD-SHELL\", \"HTTP\", \"TCP\" or "
                 "\"NONE\")",
                 kind);
        goto done;
    }
    if (n < 2) {
        r = fail(c, "[\"%s\"] needs %s", kind,
                 hc->kind == CI_HC_CMD     ? "a command"
                 : hc->kind == CI_HC_SHELL ? "a shell command"
                 : hc->kind == CI_HC_HTTP  ? "at least one URL"
                                           : "an address \"host:port\"");
        goto done;
    }
    if ((hc->kind == CI_HC_SHELL || hc->kind == CI_HC_TCP) && n != 2) {
        r = fail(c, "[\"%s\", ...] takes exactly one argument", kind);
        goto done;
    }
    hc->argv = calloc(n, sizeof(char *));
    if (!hc->argv) {
        r = -ENOMEM;
        goto done;
    }
    for (size_t i = 1; i < n && !r; i++) {
        mark = push_idx(c, i);
        r = get_nonempty_str(c, json_array_get(v, i), &hc->argv[i - 1]);
        if (!r && hc->kind == CI_HC_HTTP) {
            const char *why = url_check(hc->argv[i - 1]);
            if (why) r = fail(c, "invalid URL \"%s\": %s", hc->argv[i - 1], why);
        } else if (!r && hc->kind == CI_HC_TCP) {
            const char *why = hostport_check(hc->argv[0], strlen(hc->argv[0]), 1);
            if (why)
                r = fail(c, "invalid address \"%s\": %s (expected \"host:port\")", hc->argv[0],
                         why);
        }
        pop(c, mark);
    }
    hc->argc = n - 1;
    if (!r && hc->kind == CI_HC_SHELL) {
        char *cmd = hc->argv[0];
        free(hc->argv);
        hc->argv = NULL;
        r = shell_argv(cmd, &hc->argv, &hc->argc);
        free(cmd);
    }
done:
    free(kind);
    return r;
}

static int get_retries(ctx_t *c, json_t *v, int *out)
{
    json_int_t n;
    int r = expect(c, v, JSON_INTEGER, "an integer");
    if (r) return r;
    n = json_integer_value(v);
    if (n < 1 || n > 1000000) return fail(c, "must be at least 1, got %lld", (long long)n);
    *out = (int)n;
    return 0;
}

static int parse_healthcheck(ctx_t *c, json_t *obj, ci_healthcheck_t *hc)
{
    static const char *const keys[] = {
        "test",           "interval", "timeout", "retries",  "start_period",
        "start_interval", "disable",  "ca",      "insecure", NULL};
    bool disable = false;
    int r = expect_keys(c, obj, keys);
    if (r) return r;
    FIELD(obj, "disable", get_bool(c, fv, &disable));
    if (!disable && !json_object_get(obj, "test"))
        return fail(c, "missing required key \"test\" (or \"disable\": true)");
    FIELD(obj, "test", get_test(c, fv, hc));
    FIELD(obj, "interval", get_duration(c, fv, &hc->interval_ms));
    FIELD(obj, "timeout", get_duration(c, fv, &hc->timeout_ms));
    FIELD(obj, "retries", get_retries(c, fv, &hc->retries));
    FIELD(obj, "start_period", get_duration(c, fv, &hc->start_period_ms));
    FIELD(obj, "start_interval", get_duration(c, fv, &hc->start_interval_ms));
    FIELD(obj, "ca", get_nonempty_str(c, fv, &hc->ca));
    FIELD(obj, "insecure", get_bool(c, fv, &hc->insecure));
    /* As Docker: 0 means the default (never a busy loop of probes). */
    if (hc->interval_ms == 0) hc->interval_ms = 30000;
    if (hc->timeout_ms == 0) hc->timeout_ms = 30000;
    if (hc->start_interval_ms == 0) hc->start_interval_ms = 5000;
    if (disable) {
        free_strv(hc->argv);
        hc->argv = NULL;
        hc->argc = 0;
        hc->kind = CI_HC_NONE;
    }
    return 0;
}

/* ---- depends_on ----------------------------------------------------------------------- */

static int get_condition(ctx_t *c, json_t *v, ci_condition_t *out)
{
    char *s = NULL;
    int r = get_str(c, v, &s);
    if (r) return r;
    if (!strcmp(s, "service_started"))
        *out = CI_COND_STARTED;
    else if (!strcmp(s, "service_healthy"))
        *out = CI_COND_HEALTHY;
    else if (!strcmp(s, "service_completed_successfully"))
        *out = CI_COND_COMPLETED;
    else
        r = fail(c,
                 "invalid condition \"%s\" (expected \"service_started\", \"service_healthy\" or "
                 "\"service_completed_successfully\")",
                 s);
    free(s);
    return r;
}

static int parse_dep_obj(ctx_t *c, json_t *obj, ci_dep_t *d)
{
    static const char *const keys[] = {"condition", "required", "restart", NULL};
    int r = expect_keys(c, obj, keys);
    if (r) return r;
    FIELD(obj, "condition", get_condition(c, fv, &d->condition));
    FIELD(obj, "required", get_bool(c, fv, &d->required));
    FIELD(obj, "restart", get_bool(c, fv, &d->restart));
    return 0;
}

static int parse_depends_on(ctx_t *c, json_t *v, ci_service_conf_t *s)
{
    size_t n;
    int r = 0;
    if (!json_is_array(v) && !json_is_object(v))
        return fail(c, "expected an array or an object, got %s", type_name(v));
    n = json_is_array(v) ? json_array_size(v) : json_object_size(v);
    s->depends_on = calloc(n ? n : 1, sizeof(ci_dep_t));
    if (!s->depends_on) return -ENOMEM;
    if (json_is_array(v)) {
        for (size_t i = 0; i < n; i++) {
            size_t mark = push_idx(c, i);
            ci_dep_t *d = &s->depends_on[i];
            d->required = true;
            s->ndepends_on++;
            r = get_nonempty_str(c, json_array_get(v, i), &d->name);
            for (size_t j = 0; !r && j < i; j++)
                if (!strcmp(s->depends_on[j].name, d->name))
                    r = fail(c, "duplicate dependency \"%s\"", d->name);
            pop(c, mark);
            if (r) return r;
        }
    } else {
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val)
        {
            ci_dep_t *d = &s->depends_on[s->ndepends_on];
            size_t mark = push(c, key);
            d->required = true;
            d->name = strdup(key);
            if (!d->name)
                r = -ENOMEM;
            else
                s->ndepends_on++;
            if (!r) r = parse_dep_obj(c, val, d);
            pop(c, mark);
            if (r) return r;
        }
    }
    return 0;
}

/* ---- other service keys --------------------------------------------------------------- */

static int parse_wait_for(ctx_t *c, json_t *obj, ci_service_conf_t *s)
{
    static const char *const keys[] = {"files", "timeout", NULL};
    int r = expect_keys(c, obj, keys);
    if (r) return r;
    if (!json_object_get(obj, "files")) return fail(c, "missing required key \"files\"");
    FIELD(obj, "files", get_strv(c, fv, &s->wait_for_files, &s->nwait_for_files, 1));
    FIELD(obj, "timeout", get_duration(c, fv, &s->wait_for_timeout_ms));
    return 0;
}

static int parse_reload(ctx_t *c, json_t *obj, ci_service_conf_t *s)
{
    static const char *const keys[] = {"watch", "signal", NULL};
    int r = expect_keys(c, obj, keys);
    if (r) return r;
    if (!json_object_get(obj, "watch")) return fail(c, "missing required key \"watch\"");
    FIELD(obj, "watch", get_strv(c, fv, &s->reload_watch, &s->nreload_watch, 1));
    FIELD(obj, "signal", get_signal(c, fv, &s->reload_signal));
    return 0;
}

static int get_restart(ctx_t *c, json_t *v, ci_service_conf_t *s)
{
    char *str = NULL;
    int r = get_str(c, v, &str);
    if (r) return r;
    s->restart_max = -1;
    if (!strcmp(str, "no"))
        s->restart = CI_RESTART_NO;
    else if (!strcmp(str, "always"))
        s->restart = CI_RESTART_ALWAYS;
    else if (!strcmp(str, "unless-stopped"))
        s->restart = CI_RESTART_UNLESS_STOPPED;
    else if (!strcmp(str, "on-failure"))
        s->restart = CI_RESTART_ON_FAILURE;
    else if (!strncmp(str, "on-failure:", 11) && str[11] >= '1' && str[11] <= '9' &&
             strspn(str + 11, "0123456789") == strlen(str + 11) && strlen(str + 11) <= 9) {
        s->restart = CI_RESTART_ON_FAILURE;
        s->restart_max = atoi(str + 11);
    } else
        r = fail(c,
                 "invalid restart policy \"%s\" (expected \"no\", \"always\", \"on-failure\", "
                 "\"on-failure:N\" with N >= 1, or \"unless-stopped\")",
                 str);
    free(str);
    return r;
}

static int get_on_unhealthy(ctx_t *c, json_t *v, bool *out)
{
    char *s = NULL;
    int r = get_str(c, v, &s);
    if (r) return r;
    if (!strcmp(s, "none"))
        *out = false;
    else if (!strcmp(s, "restart"))
        *out = true;
    else
        r = fail(c, "invalid value \"%s\" (expected \"none\" or \"restart\")", s);
    free(s);
    return r;
}

static int parse_service(ctx_t *c, json_t *obj, ci_service_conf_t *s)
{
    static const char *const keys[] = {
        "command", "certgen",      "environment", "working_dir",
        "user",    "depends_on",   "healthcheck", "wait_for",
        "restart", "on_unhealthy", "stop_signal", "stop_grace_period",
        "reload",  "essential",    "log_prefix",  NULL};
    ci_config_t *cfg = c->cfg;
    json_t *cmd, *cg;
    int r = expect_keys(c, obj, keys);
    if (r) return r;
    cmd = json_object_get(obj, "command");
    cg = json_object_get(obj, "certgen");
    if (cmd && cg) return fail(c, "\"command\" and \"certgen\" are mutually exclusive");
    if (!cmd && !cg) return fail(c, "missing \"command\" (or \"certgen\")");
    for (size_t i = 0; i < cfg->environment_len; i++) {
        const char *kv = cfg->environment[i];
        if ((r = env_set(&s->environment, &s->environment_len, kv, strcspn(kv, "="),
                         strchr(kv, '=') + 1)))
            return r;
    }
    FIELD(obj, "command", get_command(c, fv, s));
    if (cg) {
        ci_certgen_conf_t *g = &s->certgen;
        s->is_certgen = true;
        g->domains = calloc(2, sizeof(char *));
        if (!g->domains || !(g->domains[0] = strdup("localhost"))) return -ENOMEM;
        g->ndomains = 1;
        if (!(g->subject = strdup("/O=Chroma/C=US"))) return -ENOMEM;
        if (!(g->key_type = strdup("rsa:2048"))) return -ENOMEM;
        g->days = 365;
    }
    FIELD(obj, "certgen", parse_certgen(c, fv, &s->certgen));
    FIELD(obj, "environment", parse_env(c, fv, &s->environment, &s->environment_len));
    FIELD(obj, "working_dir", get_nonempty_str(c, fv, &s->working_dir));
    FIELD(obj, "user", get_user(c, fv, &s->user, USER_FORMS));
    FIELD(obj, "depends_on", parse_depends_on(c, fv, s));
    FIELD(obj, "healthcheck", parse_healthcheck(c, fv, &s->healthcheck));
    FIELD(obj, "wait_for", parse_wait_for(c, fv, s));
    FIELD(obj, "restart", get_restart(c, fv, s));
    FIELD(obj, "on_unhealthy", get_on_unhealthy(c, fv, &s->on_unhealthy_restart));
    FIELD(obj, "stop_signal", get_signal(c, fv, &s->stop_signal));
    FIELD(obj, "stop_grace_period", get_duration(c, fv, &s->stop_grace_ms));
    FIELD(obj, "reload", parse_reload(c, fv, s));
    FIELD(obj, "essential", get_bool(c, fv, &s->essential));
    FIELD(obj, "log_prefix", get_str(c, fv, &s->log_prefix));
    return 0;
}

static void service_defaults(ci_service_conf_t *s)
{
    s->restart = CI_RESTART_NO;
    s->restart_max = -1;
    s->stop_signal = SIGTERM;
    s->stop_grace_ms = 10000;
    s->reload_signal = SIGHUP;
    s->healthcheck.kind = CI_HC_NONE;
    s->healthcheck.interval_ms = 30000;
    s->healthcheck.timeout_ms = 30000;
    s->healthcheck.start_period_ms = 0;
    s->healthcheck.start_interval_ms = 5000;
    s->healthcheck.retries = 3;
}

static int parse_services(ctx_t *c, json_t *obj)
{
    ci_config_t *cfg = c->cfg;
    const char *key;
    json_t *val;
    size_t i = 0;
    int r = expect(c, obj, JSON_OBJECT, "an object");
    if (r) return r;
    if (json_object_size(obj) == 0) return fail(c, "at least one service is required");
    cfg->services = calloc(json_object_size(obj), sizeof(ci_service_conf_t));
    if (!cfg->services) return -ENOMEM;
    cfg->nservices = json_object_size(obj);
    json_object_foreach(obj, key, val)
    {
        ci_service_conf_t *s = &cfg->services[i++];
        size_t mark;
        service_defaults(s);
        if (strlen(key) > CI_SERVICE_NAME_MAX)
            return fail_key(c, key, "service name too long (%zu characters, at most %d)",
                            strlen(key), CI_SERVICE_NAME_MAX);
        if (!service_name_ok(key))
            return fail_key(
                c, key,
                "invalid service name \"%s\" (expected letters, digits, \"_\", \".\" or "
                "\"-\", starting with a letter or a digit)",
                key);
        if (!(s->name = strdup(key))) return -ENOMEM;
        mark = push(c, key);
        r = parse_service(c, val, s);
        pop(c, mark);
        if (r) return r;
    }
    return 0;
}

static int parse_root(ctx_t *c, json_t *root)
{
    static const char *const keys[] = {"environment",      "state_dir", "log",
                                       "shutdown_timeout", "services",  NULL};
    ci_config_t *cfg = c->cfg;
    int r;
    if (!json_is_object(root))
        return fail(c, "expected an object at the top level, got %s", type_name(root));
    if ((r = expect_keys(c, root, keys))) return r;
    if (!json_object_get(root, "services")) return fail(c, "missing required key \"services\"");
    c->env_phase = 1;
    FIELD(root, "environment", parse_env(c, fv, &cfg->environment, &cfg->environment_len));
    c->env_phase = 0;
    FIELD(root, "state_dir", get_nonempty_str(c, fv, &cfg->state_dir));
    FIELD(root, "log", parse_log(c, fv));
    FIELD(root, "shutdown_timeout", get_duration(c, fv, &cfg->shutdown_timeout_ms));
    FIELD(root, "services", parse_services(c, fv));
    return 0;
}

/* ---- public API ----------------------------------------------------------------------- */

/* Messages are one line: control characters (from keys, values, names) become '?'. */
static void one_line(ci_error_t *err)
{
    for (char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
}

static int load_buffer(const char *name, const char *buf, size_t len, ci_config_t **out,
                       ci_error_t *err);

int ci_config_load_buffer(const char *name, const char *buf, size_t len, ci_config_t **out,
                          ci_error_t *err)
{
    ci_error_t local;
    int r;
    if (!err) err = &local;
    r = load_buffer(name, buf, len, out, err);
    if (r) one_line(err);
    return r;
}

/* A graph error ("services.NAME.depends_on: ...", see graph.h), placed at that depends_on.
 * Service names hold no ':' or ' ', so the text before the first ": " is exactly the path. */
static void graph_error(ctx_t *c, const char *gmsg)
{
    const char *colon = strstr(gmsg, ": ");
    size_t plen = colon ? (size_t)(colon - gmsg) : 0;
    for (size_t i = 0; i < c->cfg->nservices && colon; i++) {
        const char *sname = c->cfg->services[i].name;
        size_t nlen = strlen(sname);
        if (plen == strlen("services.") + nlen + strlen(".depends_on") &&
            !strncmp(gmsg, "services.", 9) && !strncmp(gmsg + 9, sname, nlen) &&
            !strncmp(gmsg + 9 + nlen, ".depends_on", 11)) {
            seg_t segs[] = {{"services", 0}, {sname, 0}, {"depends_on", 0}};
            char path[CI_ERR_MAX / 2];
            snprintf(path, sizeof(path), "%.*s", (int)plen, gmsg);
            put_at(c->err, c->name, c->buf, c->len, segs, CI_ARRAY_SIZE(segs), 0, path, colon + 2);
            return;
        }
    }
    put_at(c->err, c->name, c->buf, c->len, NULL, 0, 0, NULL, gmsg);
}

static int load_buffer(const char *name, const char *buf, size_t len, ci_config_t **out,
                       ci_error_t *err)
{
    ctx_t c;
    json_error_t jerr;
    json_t *root = NULL;
    ci_config_t *cfg = NULL;
    int r;

    err->msg[0] = '\0';
    *out = NULL;
    memset(&c, 0, sizeof(c));
    c.name = name;
    c.err = err;
    c.buf = buf;
    c.len = len;
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        put(err, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
        return -EINVAL;
    }
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        r = -ENOMEM;
        goto fail;
    }
    c.cfg = cfg;
    cfg->log_format = CI_LOG_TEXT;
    cfg->log_prefix = true;
    cfg->log_timestamps = false;
    cfg->shutdown_timeout_ms = 9000;
    if (!(cfg->path = strdup(name))) {
        r = -ENOMEM;
        goto fail;
    }
    if ((r = parse_root(&c, root))) goto fail;
    if (!cfg->state_dir && !(cfg->state_dir = strdup("/run/chroma-init"))) {
        r = -ENOMEM;
        goto fail;
    }
    if (!cfg->environment && !(cfg->environment = calloc(1, sizeof(char *)))) {
        r = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < cfg->nservices; i++) {
        ci_service_conf_t *s = &cfg->services[i];
        if (!s->environment && !(s->environment = calloc(1, sizeof(char *)))) {
            r = -ENOMEM;
            goto fail;
        }
    }
    cfg->start_order = calloc(cfg->nservices, sizeof(size_t));
    cfg->wave = calloc(cfg->nservices, sizeof(unsigned));
    if (!cfg->start_order || !cfg->wave) {
        r = -ENOMEM;
        goto fail;
    }
    {
        ci_error_t gerr;
        r = ci_graph_resolve(cfg, cfg->start_order, cfg->wave, &gerr);
        if (r == -EINVAL) graph_error(&c, gerr.msg);
        if (r) goto fail;
    }
    /* As Compose: service_healthy needs a healthcheck, else it would wait forever. */
    for (size_t i = 0; i < cfg->nservices; i++) {
        const ci_service_conf_t *svc = &cfg->services[i];
        for (size_t j = 0; j < svc->ndepends_on; j++) {
            const ci_dep_t *d = &svc->depends_on[j];
            if (d->condition == CI_COND_HEALTHY &&
                cfg->services[d->index].healthcheck.kind == CI_HC_NONE) {
                char path[CI_ERR_MAX / 2], msg[CI_ERR_MAX / 2];
                seg_t segs[] = {{"services", 0}, {svc->name, 0}, {"depends_on", 0}, {d->name, 0}};
                snprintf(path, sizeof(path), "services.%s.depends_on.%s", svc->name, d->name);
                snprintf(msg, sizeof(msg),
                         "condition service_healthy needs a healthcheck on \"%s\"", d->name);
                put_at(err, name, buf, len, segs, CI_ARRAY_SIZE(segs), 0, path, msg);
                r = -EINVAL;
                goto fail;
            }
        }
    }
    for (size_t i = 0; i < cfg->nservices; i++)
        if (cfg->wave[i] + 1 > cfg->nwaves) cfg->nwaves = cfg->wave[i] + 1;
    json_decref(root);
    *out = cfg;
    return 0;
fail:
    if (r == -ENOMEM) put(err, "%s: out of memory", name);
    json_decref(root);
    ci_config_free(cfg);
    return r;
}

int ci_config_load(const char *path, ci_config_t **out, ci_error_t *err)
{
    ci_error_t local;
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int r;

    if (!err) err = &local;
    *out = NULL;
    f = fopen(path, "re");
    if (!f) {
        r = -errno;
        put(err, "%s: cannot open: %s", path, strerror(-r));
        return r;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            char *nb;
            cap = cap ? cap * 2 : 8192;
            if (cap > (64u << 20)) {
                r = -EFBIG;
                put(err, "%s: file too large", path);
                goto fail;
            }
            nb = realloc(buf, cap);
            if (!nb) {
                r = -ENOMEM;
                put(err, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        r = -EIO;
        put(err, "%s: read error", path);
        goto fail;
    }
    r = ci_config_load_buffer(path, buf ? buf : "", len, out, err);
fail:
    if (r) one_line(err);
    fclose(f);
    free(buf);
    return r;
}

static void free_service(ci_service_conf_t *s)
{
    free(s->name);
    free_strv(s->command);
    free(s->certgen.cert);
    free(s->certgen.key);
    free_strv(s->certgen.domains);
    free(s->certgen.subject);
    free(s->certgen.key_type);
    free(s->certgen.owner);
    free_strv(s->environment);
    free(s->working_dir);
    free(s->user);
    for (size_t i = 0; i < s->ndepends_on; i++) free(s->depends_on[i].name);
    free(s->depends_on);
    free_strv(s->healthcheck.argv);
    free(s->healthcheck.ca);
    free_strv(s->wait_for_files);
    free_strv(s->reload_watch);
    free(s->log_prefix);
}

void ci_config_free(ci_config_t *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->nservices; i++) free_service(&cfg->services[i]);
    free(cfg->services);
    free(cfg->path);
    free_strv(cfg->environment);
    free(cfg->state_dir);
    free(cfg->start_order);
    free(cfg->wave);
    free(cfg);
}

long ci_config_find(const ci_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nservices; i++)
        if (cfg->services[i].name && !strcmp(cfg->services[i].name, name)) return (long)i;
    return -1;
}

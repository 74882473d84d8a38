/* certtime: PEM -> DER -> Certificate.tbsCertificate.validity.notAfter.
 * A strict little DER walker: definite lengths only, bounds checked. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chroma_init/certtime.h"

#define MAX_CERT (256 * 1024)

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes the base64 body between the first BEGIN CERTIFICATE / END lines. */
static int pem_to_der(const char *pem, size_t len, unsigned char **der, size_t *der_len)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    static const char end[] = "-----END CERTIFICATE-----";
    const char *b = memmem(pem, len, begin, sizeof begin - 1);
    if (!b) return -EINVAL;
    b += sizeof begin - 1;
    const char *e = memmem(b, len - (size_t)(b - pem), end, sizeof end - 1);
    if (!e) return -EINVAL;
    unsigned char *out = malloc((size_t)(e - b) / 4 * 3 + 3);
    if (!out) return -ENOMEM;
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    bool padded = false;
    for (const char *p = b; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\r' || c == '\n' || c == ' ' || c == '\t') continue;
        if (c == '=') {
            padded = true;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || padded) {
            free(out);
            return -EINVAL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    *der = out;
    *der_len = n;
    return 0;
}

/* Reads one TLV at *p (bounded by end): tag, and the value's bounds. */
static int tlv(const unsigned char **p, const unsigned char *end, unsigned char *tag,
               const unsigned char **val, size_t *vlen)
{
    const unsigned char *q = *p;
    if (end - q < 2) return -EINVAL;
    *tag = *q++;
    if ((*tag & 0x1f) == 0x1f) return -EINVAL; /* multi-byte tags: not in certificates */
    size_t len = *q++;
    if (len & 0x80) {
        size_t nb = len & 0x7f;
        if (nb == 0 || nb > 4 || (size_t)(end - q) < nb) return -EINVAL;
        len = 0;
        for (size_t i = 0; i < nb; i++) len = (len << 8) | *q++;
    }
    if ((size_t)(end - q) < len) return -EINVAL;
    *val = q;
    *vlen = len;
    *p = q + len;
    return 0;
}

static int digits(const unsigned char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280). */
static int parse_time(unsigned char tag, const unsigned char *s, size_t n, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h, mi, se;
    size_t yl = tag == 0x17 ? 2 : tag == 0x18 ? 4 : 0;
    if (!yl || n != yl + 11 || s[n - 1] != 'Z') return -EINVAL;
    if (digits(s, yl, &y) || digits(s + yl, 2, &mo) || digits(s + yl + 2, 2, &d) ||
        digits(s + yl + 4, 2, &h) || digits(s + yl + 6, 2, &mi) || digits(s + yl + 8, 2, &se))
        return -EINVAL;
    if (yl == 2) y += y >= 50 ? 1900 : 2000;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    *out = (int64_t)timegm(&tm);
    return 0;
}

int ci_cert_not_after_pem(const char *pem, size_t len, int64_t *out)
{
    unsigned char *der;
    size_t der_len;
    int r = pem_to_der(pem, len, &der, &der_len);
    if (r < 0) return r;
    const unsigned char *p = der, *end = der + der_len, *v;
    size_t vl;
    unsigned char tag;
    r = -EINVAL;
    /* Certificate SEQUENCE { tbsCertificate SEQUENCE { ... } ... } */
    if (tlv(&p, end, &tag, &v, &vl) || tag != 0x30) goto done;
    p = v;
    end = v + vl;
    if (tlv(&p, end, &tag, &v, &vl) || tag != 0x30) goto done;
    p = v;
    end = v + vl;
    /* [0] version (optional), serialNumber, signature, issuer, validity */
    if (tlv(&p, end, &tag, &v, &vl)) goto done;
    if (tag == 0xa0 && tlv(&p, end, &tag, &v, &vl)) goto done;
    if (tag != 0x02) goto done;
    if (tlv(&p, end, &tag, &v, &vl) || tag != 0x30) goto done; /* signature */
    if (tlv(&p, end, &tag, &v, &vl) || tag != 0x30) goto done; /* issuer */
    if (tlv(&p, end, &tag, &v, &vl) || tag != 0x30) goto done; /* validity */
    p = v;
    end = v + vl;
    if (tlv(&p, end, &tag, &v, &vl)) goto done; /* notBefore */
    if (tlv(&p, end, &tag, &v, &vl)) goto done; /* notAfter */
    r = parse_time(tag, v, vl, out);
done:
    free(der);
    return r;
}

int ci_cert_not_after_file(const char *path, int64_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char *buf = malloc(MAX_CERT);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, MAX_CERT - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == MAX_CERT) break;
    }
    close(fd);
    int r = ci_cert_not_after_pem(buf, n, out);
    free(buf);
    return r;
}

/* libFuzzer target: arbitrary bytes -> ci_cert_not_after_pem. The input is
 * also wrapped in PEM armour as base64 so the DER walker gets fuzzed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chroma_init/certtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t t;
    ci_cert_not_after_pem((const char *)data, size, &t);
    if (size > 65536) return 0;
    static const char head[] = "-----BEGIN CERTIFICATE-----\n";
    static const char tail[] = "\n-----END CERTIFICATE-----\n";
    size_t cap = sizeof head + size / 3 * 4 + 8 + sizeof tail;
    char *pem = malloc(cap);
    if (!pem) return 0;
    size_t n = 0;
    memcpy(pem, head, sizeof head - 1);
    n = sizeof head - 1;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < size) v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < size) v |= data[i + 2];
        pem[n++] = b64[(v >> 18) & 63];
        pem[n++] = b64[(v >> 12) & 63];
        pem[n++] = i + 1 < size ? b64[(v >> 6) & 63] : '=';
        pem[n++] = i + 2 < size ? b64[v & 63] : '=';
    }
    memcpy(pem + n, tail, sizeof tail - 1);
    n += sizeof tail - 1;
    ci_cert_not_after_pem(pem, n, &t);
    free(pem);
    return 0;
}

/* certgen: self-signed server certificates with the OpenSSL 3 library
 * (EVP_PKEY / X509 APIs, no openssl binary), kept when still valid, written
 * atomically (see README, "Certificates"). */
#ifndef CHROMA_INIT_CERTGEN_H
#define CHROMA_INIT_CERTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chroma_init/config.h"

#define CI_CERTGEN_DEFAULT_KEY_TYPE "rsa:2048"
#define CI_CERTGEN_DEFAULT_SUBJECT "/O=Chroma/C=US"
#define CI_CERTGEN_DEFAULT_DOMAIN "localhost"
#define CI_CERTGEN_DEFAULT_DAYS 365
#define CI_CERTGEN_MAX_DAYS 36500

/* Validates conf without touching any file: cert/key paths present and
 * distinct, key type, days in 1..36500, every domain a DNS name (a leading
 * "*." allowed) or an IP address, subject syntax ("/O=Chroma/C=US"), owner
 * ("user[:group]", names or numbers, resolved in the user database).
 * NULL key_type / subject and ndomains 0 mean the defaults.
 * Returns 0 or -EINVAL with err->msg set ("certgen: unknown key type ..."). */
int ci_certgen_check(const ci_certgen_conf_t *conf, ci_error_t *err);

/* Ensures the pair described by conf: kept when valid, else generated. force: always regenerate.
 * decision (size len) receives one line, e.g. "kept: valid until 2027-11-27, covers localhost" or
 * "generated: rsa:2048, serial 5A3F..., valid until 2027-11-27, covers localhost, 127.0.0.1".
 * Returns 0, or a negative errno with err->msg set ("certgen: unable to write /certs/x.pem:
 * permission denied"); -EINVAL when ci_certgen_check rejects conf.
 * On failure existing files are untouched. Blocking (run it in a child process from the init). */
int ci_certgen_ensure(const ci_certgen_conf_t *conf, bool force, char *decision, size_t len,
                      ci_error_t *err);

/* True for rsa:2048, rsa:4096, ec:P-256, ec:P-384, ed25519 (case-insensitive). */
bool ci_certgen_key_type_valid(const char *key_type);

/* notAfter of the PEM certificate at path, as a Unix time. Returns 0, a
 * negative errno from opening the file, or -EINVAL when it does not parse. */
int ci_certgen_not_after(const char *cert_path, int64_t *out);

#endif

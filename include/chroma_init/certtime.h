/* certtime: the notAfter of a PEM certificate, read without OpenSSL (the
 * init itself does not load it; see tls.h). */
#ifndef CHROMA_INIT_CERTTIME_H
#define CHROMA_INIT_CERTTIME_H

#include <stddef.h>
#include <stdint.h>

/* notAfter of the first certificate in the PEM buffer, as a Unix time.
 * Returns 0, or -EINVAL for anything that is not a well-formed certificate. */
int ci_cert_not_after_pem(const char *pem, size_t len, int64_t *out);

/* Same, from a file (symlinks followed). Returns 0 or a negative errno. */
int ci_cert_not_after_file(const char *path, int64_t *out);

#endif

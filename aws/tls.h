/* tls.h - TLS for the listener (issue 17, aws/listener.h): the certificate and key
 * loaded once into a server context, and per connection an engine between two
 * memory BIOs. The listener pushes what the socket read, reads the decrypted
 * bytes, hands its answers to be encrypted and pulls the records to write: no
 * socket of its own, no blocking, no thread (the listener's libuv callbacks
 * drive it).
 *
 * The context: TLS 1.2 at least; TLS 1.2 only with ECDHE key exchange and
 * AEAD ciphers (forward secrecy); no renegotiation, no compression; no session
 * tickets and no session cache (no long-lived ticket key in memory); ALPN
 * answers http/1.1 when the client offers it. Received plaintext is cleansed
 * inside OpenSSL once it is handed over (SSL_OP_CLEANSE_PLAINTEXT) and idle
 * record buffers are released; the caller wipes its own copies.
 *
 * The files are read by us (1 MiB at most each), parsed from memory and the
 * bytes wiped; a key readable by others is refused, like the master key, and
 * an encrypted key is refused (no passphrase prompt on a daemon). */
#ifndef AW_TLS_H
#define AW_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "common/buf.h"

typedef struct aw_tls aw_tls;
typedef struct aw_tls_conn aw_tls_conn;

#define AW_TLS_FILE_MAX (1u << 20)
#define AW_TLS_DESC_MAX 512
/* What aw_tls_conn_read answers besides byte counts. */
#define AW_TLS_CLOSED (-2) /* the peer sent close_notify */
#define AW_TLS_FAILED (-3) /* handshake or record failure: aw_tls_conn_error */

/* Loads cert_file (PEM: the certificate, then any chain certificates) and
 * key_file (PEM, unencrypted) and checks that they belong together. 0, or
 * -EINVAL / -ENOMEM / -errno with the reason in err (it names the file). */
int aw_tls_load(const char *cert_file, const char *key_file, aw_tls **out, char *err,
                size_t errlen);
/* "subject CN=..., names DNS:a, IP:127.0.0.1, valid until 2027-01-01
 * 00:00:00 UTC": what --check-config and the log show. */
void aw_tls_describe(const aw_tls *t, char *out, size_t n);
/* Whether the certificate is outside its validity period at now. */
bool aw_tls_expired(const aw_tls *t, time_t now);
void aw_tls_free(aw_tls *t); /* NULL-safe; connections keep the context alive */

/* One connection's engine (server side). NULL when out of memory. */
aw_tls_conn *aw_tls_conn_new(aw_tls *t);
void aw_tls_conn_free(aw_tls_conn *c); /* NULL-safe */
/* Ciphertext the socket read. 0 or -ENOMEM. */
int aw_tls_conn_push(aw_tls_conn *c, const void *data, size_t len);
/* Advances the handshake and decrypts: > 0 bytes written into buf, 0 when
 * it needs more input, AW_TLS_CLOSED or AW_TLS_FAILED. Call until it answers
 * 0 (or fails), then pull what it has to send (handshake flights, alerts). */
ssize_t aw_tls_conn_read(aw_tls_conn *c, void *buf, size_t n);
/* Encrypts len bytes into records waiting for aw_tls_conn_pull. 0 or
 * AW_TLS_FAILED. */
int aw_tls_conn_write(aw_tls_conn *c, const void *data, size_t len);
/* Queues close_notify. */
void aw_tls_conn_shutdown(aw_tls_conn *c);
/* Bytes waiting to be sent. */
size_t aw_tls_conn_pending(const aw_tls_conn *c);
/* Appends every waiting byte to out. 0, or es_buf's error (nothing lost:
 * what did not fit stays waiting). */
int aw_tls_conn_pull(aw_tls_conn *c, es_buf *out);
/* The handshake is over. */
bool aw_tls_conn_established(const aw_tls_conn *c);
/* Why the last AW_TLS_FAILED happened (OpenSSL's reason), or "". */
const char *aw_tls_conn_error(const aw_tls_conn *c);
/* The protocol version once established ("TLSv1.3"), else "". */
const char *aw_tls_conn_version(const aw_tls_conn *c);

#endif

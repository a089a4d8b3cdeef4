/* tls.h - TLS for the listener (issue 17, server.h): the certificate and key
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
#ifndef AL_TLS_H
#define AL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "common/buf.h"

typedef struct al_tls al_tls;
typedef struct al_tls_conn al_tls_conn;

#define AL_TLS_FILE_MAX (1u << 20)
#define AL_TLS_DESC_MAX 512
/* What al_tls_conn_read answers besides byte counts. */
#define AL_TLS_CLOSED (-2) /* the peer sent close_notify */
#define AL_TLS_FAILED (-3) /* handshake or record failure: al_tls_conn_error */

/* Loads cert_file (PEM: the certificate, then any chain certificates) and
 * key_file (PEM, unencrypted) and checks that they belong together. 0, or
 * -EINVAL / -ENOMEM / -errno with the reason in err (it names the file). */
int al_tls_load(const char *cert_file, const char *key_file, al_tls **out, char *err,
                size_t errlen);
/* "subject CN=..., names DNS:a, IP:127.0.0.1, valid until 2027-01-01
 * 00:00:00 UTC": what --check-config and the log show. */
void al_tls_describe(const al_tls *t, char *out, size_t n);
/* Whether the certificate is outside its validity period at now. */
bool al_tls_expired(const al_tls *t, time_t now);
void al_tls_free(al_tls *t); /* NULL-safe; connections keep the context alive */

/* One connection's engine (server side). NULL when out of memory. */
al_tls_conn *al_tls_conn_new(al_tls *t);
void al_tls_conn_free(al_tls_conn *c); /* NULL-safe */
/* Ciphertext the socket read. 0 or -ENOMEM. */
int al_tls_conn_push(al_tls_conn *c, const void *data, size_t len);
/* Advances the handshake and decrypts: > 0 bytes written into buf, 0 when
 * it needs more input, AL_TLS_CLOSED or AL_TLS_FAILED. Call until it answers
 * 0 (or fails), then pull what it has to send (handshake flights, alerts). */
ssize_t al_tls_conn_read(al_tls_conn *c, void *buf, size_t n);
/* Encrypts len bytes into records waiting for al_tls_conn_pull. 0 or
 * AL_TLS_FAILED. */
int al_tls_conn_write(al_tls_conn *c, const void *data, size_t len);
/* Queues close_notify. */
void al_tls_conn_shutdown(al_tls_conn *c);
/* Bytes waiting to be sent. */
size_t al_tls_conn_pending(const al_tls_conn *c);
/* Appends every waiting byte to out. 0, or es_buf's error (nothing lost:
 * what did not fit stays waiting). */
int al_tls_conn_pull(al_tls_conn *c, es_buf *out);
/* The handshake is over. */
bool al_tls_conn_established(const al_tls_conn *c);
/* Why the last AL_TLS_FAILED happened (OpenSSL's reason), or "". */
const char *al_tls_conn_error(const al_tls_conn *c);
/* The protocol version once established ("TLSv1.3"), else "". */
const char *al_tls_conn_version(const al_tls_conn *c);

#endif

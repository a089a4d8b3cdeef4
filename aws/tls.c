/* tls.c - the listener's TLS: context and memory-BIO engine (tls.h). */
#include "aws/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/alloc.h"
#include "common/secure.h"

struct aw_tls {
    SSL_CTX *ctx;
    X509 *cert; /* the leaf, for describe and expired (the context holds its own ref) */
};

struct aw_tls_conn {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    char error[160];
};

/* OpenSSL's reason for the newest error in its queue, then the queue cleared. */
static void ssl_reason(char *out, size_t n)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    const char *r = last ? ERR_reason_error_string(last) : NULL;
    snprintf(out, n, "%s", r ? r : last ? "unknown OpenSSL error" : "no reason given");
}

/* The whole file into b (wiped by the caller). 0 or -errno with err set. */
static int read_file(const char *what, const char *path, es_buf *b, bool is_key, char *err,
                     size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s %s: cannot open: %s", what, path, strerror(e));
        return -e;
    }
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(-r));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        snprintf(err, errlen, "%s %s: not a regular file", what, path);
        goto out;
    }
    if (is_key && (st.st_mode & 0004)) {
        r = -EINVAL;
        snprintf(err, errlen,
                 "%s %s is readable by others (mode %03o); expected 0600 or 0640 (chmod o-r)", what,
                 path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    for (;;) {
        int e = 0;
        char *p = es_buf_reserve(b, 4096, &e);
        if (!p) {
            r = -EINVAL;
            snprintf(err, errlen, "%s %s: larger than %u bytes", what, path,
                     (unsigned)AW_TLS_FILE_MAX);
            goto out;
        }
        ssize_t got = read(fd, p, 4096);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = -errno;
            snprintf(err, errlen, "%s %s: cannot read: %s", what, path, strerror(-r));
            goto out;
        }
        if (got == 0)
            break;
        es_buf_commit(b, (size_t)got);
    }
out:
    close(fd);
    return r;
}

/* An encrypted key would ask for a passphrase on the terminal: refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(bool *)u = true;
    return -1;
}

/* ALPN: HTTP/1.1 when offered (never h2: the listener speaks HTTP/1.1). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen;) {
        unsigned len = in[i];
        if (i + 1 + len > inlen)
            break;
        if (len == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)len;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static int load_pem(aw_tls *t, const char *cert_file, const char *key_file, char *err,
                    size_t errlen)
{
    es_buf cb, kb;
    es_buf_init(&cb, AW_TLS_FILE_MAX);
    es_buf_init(&kb, AW_TLS_FILE_MAX);
    char why[160];
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    int r = read_file("certificate", cert_file, &cb, false, err, errlen);
    if (r == 0)
        r = read_file("key", key_file, &kb, true, err, errlen);
    if (r < 0)
        goto out;
    r = -EINVAL;
    ERR_clear_error();
    /* the certificate, then the chain */
    if (!(bio = BIO_new_mem_buf(cb.data ? cb.data : "", (int)cb.len)))
        goto nomem;
    if (!(t->cert = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL))) {
        ssl_reason(why, sizeof why);
        snprintf(err, errlen, "certificate %s: no PEM certificate in it (%s)", cert_file, why);
        goto out;
    }
    if (SSL_CTX_use_certificate(t->ctx, t->cert) != 1) {
        ssl_reason(why, sizeof why);
        snprintf(err, errlen, "certificate %s: refused (%s)", cert_file, why);
        goto out;
    }
    X509 *extra;
    while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(t->ctx, extra) != 1) {
            X509_free(extra);
            ssl_reason(why, sizeof why);
            snprintf(err, errlen, "certificate %s: a chain certificate is refused (%s)", cert_file,
                     why);
            goto out;
        }
    }
    ERR_clear_error(); /* the end of the file ends the loop with "no start line" */
    BIO_free(bio);
    /* the key */
    if (!(bio = BIO_new_mem_buf(kb.data ? kb.data : "", (int)kb.len)))
        goto nomem;
    bool asked = false;
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &asked);
    if (!key) {
        ssl_reason(why, sizeof why);
        if (asked)
            snprintf(err, errlen, "key %s is encrypted: the agent takes an unencrypted key",
                     key_file);
        else
            snprintf(err, errlen, "key %s: no PEM private key in it (%s)", key_file, why);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(t->ctx, key) != 1 || SSL_CTX_check_private_key(t->ctx) != 1) {
        ssl_reason(why, sizeof why);
        snprintf(err, errlen, "key %s does not belong to the certificate %s (%s)", key_file,
                 cert_file, why);
        goto out;
    }
    r = 0;
    goto out;
nomem:
    r = -ENOMEM;
    snprintf(err, errlen, "out of memory");
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    ERR_clear_error();
    es_buf_free(&cb);
    es_buf_free_secret(&kb);
    return r;
}

int aw_tls_load(const char *cert_file, const char *key_file, aw_tls **out, char *err, size_t errlen)
{
    aw_tls *t = es_calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int r = -ENOMEM;
    if (!(t->ctx = SSL_CTX_new(TLS_server_method()))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET |
                    SSL_OP_CIPHER_SERVER_PREFERENCE;
#ifdef SSL_OP_CLEANSE_PLAINTEXT
    opts |= SSL_OP_CLEANSE_PLAINTEXT;
#endif
    SSL_CTX_set_options(t->ctx, opts);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(t->ctx, 0);
    SSL_CTX_set_alpn_select_cb(t->ctx, select_alpn, NULL);
    if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(t->ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL") != 1) {
        char why[160];
        ssl_reason(why, sizeof why);
        snprintf(err, errlen, "TLS settings refused by OpenSSL (%s)", why);
        r = -EINVAL;
        goto fail;
    }
    if ((r = load_pem(t, cert_file, key_file, err, errlen)) < 0)
        goto fail;
    *out = t;
    return 0;
fail:
    aw_tls_free(t);
    return r;
}

void aw_tls_free(aw_tls *t)
{
    if (!t)
        return;
    X509_free(t->cert);
    SSL_CTX_free(t->ctx);
    es_free(t);
}

bool aw_tls_expired(const aw_tls *t, time_t now)
{
    return X509_cmp_time(X509_get0_notAfter(t->cert), &now) <= 0 ||
           X509_cmp_time(X509_get0_notBefore(t->cert), &now) >= 0;
}

/* "a, b, c" of the subject alternative names (DNS and IP) */
static void names(const X509 *cert, char *out, size_t n)
{
    out[0] = '\0';
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t used = 0;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && used < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char one[64] = "";
        if (g->type == GEN_DNS) {
            const unsigned char *s = ASN1_STRING_get0_data(g->d.dNSName);
            snprintf(one, sizeof one, "DNS:%.*s", ASN1_STRING_length(g->d.dNSName), s);
        } else if (g->type == GEN_IPADD) {
            const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
            int len = ASN1_STRING_length(g->d.iPAddress);
            if (len == 4) {
                snprintf(one, sizeof one, "IP:%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
            } else if (len == 16) {
                int k = snprintf(one, sizeof one, "IP:");
                for (int j = 0; j < 16; j += 2)
                    k += snprintf(one + k, sizeof one - (size_t)k, "%s%x", j ? ":" : "",
                                  (unsigned)(a[j] << 8 | a[j + 1]));
            }
        }
        if (one[0])
            used += (size_t)snprintf(out + used, n - used, "%s%s", used ? ", " : "", one);
    }
    GENERAL_NAMES_free(gens);
}

void aw_tls_describe(const aw_tls *t, char *out, size_t n)
{
    char subject[200] = "", sans[200] = "", until[64] = "?";
    X509_NAME_oneline(X509_get_subject_name(t->cert), subject, sizeof subject);
    names(t->cert, sans, sizeof sans);
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(t->cert), &tm) == 1)
        strftime(until, sizeof until, "%Y-%m-%d %H:%M:%S UTC", &tm);
    snprintf(out, n, "subject %s, names %s, valid until %s", subject, sans[0] ? sans : "(none)",
             until);
}

/* ---- one connection ---- */

aw_tls_conn *aw_tls_conn_new(aw_tls *t)
{
    aw_tls_conn *c = es_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ssl = SSL_new(t->ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        SSL_free(c->ssl);
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        es_free(c);
        ERR_clear_error();
        return NULL;
    }
    /* an empty read BIO means "more to come", not end of file */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
    return c;
}

void aw_tls_conn_free(aw_tls_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl); /* frees the BIOs; OpenSSL cleanses its plaintext (tls.h) */
    es_free(c);
}

int aw_tls_conn_push(aw_tls_conn *c, const void *data, size_t len)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
        int w = BIO_write(c->rbio, data, chunk);
        if (w <= 0) {
            ERR_clear_error();
            return -ENOMEM;
        }
        data = (const char *)data + w;
        len -= (size_t)w;
    }
    return 0;
}

ssize_t aw_tls_conn_read(aw_tls_conn *c, void *buf, size_t n)
{
    if (n > INT_MAX)
        n = INT_MAX;
    ERR_clear_error();
    int r = SSL_read(c->ssl, buf, (int)n);
    if (r > 0)
        return r;
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* memory BIOs never refuse a write */
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        return AW_TLS_CLOSED;
    default:
        ssl_reason(c->error, sizeof c->error);
        return AW_TLS_FAILED;
    }
}

int aw_tls_conn_write(aw_tls_conn *c, const void *data, size_t len)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
        ERR_clear_error();
        int w = SSL_write(c->ssl, data, chunk);
        if (w <= 0) {
            ssl_reason(c->error, sizeof c->error);
            return AW_TLS_FAILED;
        }
        data = (const char *)data + w;
        len -= (size_t)w;
    }
    return 0;
}

void aw_tls_conn_shutdown(aw_tls_conn *c)
{
    ERR_clear_error();
    if (SSL_is_init_finished(c->ssl))
        (void)SSL_shutdown(c->ssl);
    ERR_clear_error();
}

size_t aw_tls_conn_pending(const aw_tls_conn *c)
{
    return BIO_ctrl_pending(c->wbio);
}

int aw_tls_conn_pull(aw_tls_conn *c, es_buf *out)
{
    size_t left;
    while ((left = BIO_ctrl_pending(c->wbio)) > 0) {
        size_t chunk = left > 65536 ? 65536 : left;
        int err = 0;
        char *p = es_buf_reserve(out, chunk, &err);
        if (!p)
            return err ? err : -EMSGSIZE;
        int got = BIO_read(c->wbio, p, (int)chunk);
        if (got <= 0)
            break;
        es_buf_commit(out, (size_t)got);
    }
    return 0;
}

bool aw_tls_conn_established(const aw_tls_conn *c)
{
    return SSL_is_init_finished(c->ssl);
}

const char *aw_tls_conn_error(const aw_tls_conn *c)
{
    return c->error;
}

const char *aw_tls_conn_version(const aw_tls_conn *c)
{
    return SSL_is_init_finished(c->ssl) ? SSL_get_version(c->ssl) : "";
}

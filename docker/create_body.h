/* create_body.h - reading and rewriting a ContainerCreate body as a client
 * sent it (the agent's Docker socket, issue 19 part 2).
 *
 * dk_create_spec (docker.h) writes a body from nothing; a client's body
 * carries fields the spec does not model (HostConfig's mounts, ports,
 * NetworkingConfig, ...), which must reach dockerd as they came. So the body
 * is parsed into a tree (bounded), and written back member by member with
 * only Env, Labels, HostConfig.LogConfig and HostConfig.Mounts changed; everything
 * else is written as it was read (numbers keep their text).
 *
 * Field names are matched as dockerd's decoder (Go's encoding/json) matches
 * them: case-insensitively, the last occurrence winning. The rewritten body
 * holds one Env (where the last one was), one Labels and one
 * HostConfig.LogConfig.
 *
 * Values are secrets: the output must be released with es_buf_free_secret,
 * and errors name a variable or option, never a value. The library never
 * logs. */
#ifndef ES_DOCKER_CREATE_BODY_H
#define ES_DOCKER_CREATE_BODY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/json.h"
#include "docker/docker.h"

#define DK_CREATE_BODY_MAX (4u * 1024u * 1024u) /* = DK_PROXY_MAX_CREATE */
#define DK_CREATE_BODY_DEPTH 64                 /* nesting of a create body */
#define DK_CREATE_BODY_VALUES 200000u           /* JSON values in one body */
/* the rewritten body: the client's plus the values added (each at most
 * AG_TD_ENV_VALUE_MAX-sized in practice, bounded here as a whole) */
#define DK_CREATE_BODY_OUT_MAX (8u * 1024u * 1024u)
#define DK_CREATE_BODY_ERR_MAX 256

/* One variable or log option to set: key=value, value len bytes (a secret).
 * key_len: 0 when key is NUL-terminated; else its length (an Env variable
 * named inside a longer "NAME=VALUE" string; map members must leave it 0). */
typedef struct dk_body_kv {
    const char *key;
    const char *value;
    size_t len;
    size_t key_len;
} dk_body_kv;

typedef struct dk_create_edit {
    const dk_body_kv *env; /* replace "KEY=..." (or "KEY") in place; new keys append */
    size_t nenv;
    const char *log_type;         /* HostConfig.LogConfig.Type to set; NULL keeps the client's */
    const dk_body_kv *log_config; /* HostConfig.LogConfig.Config members: replace or add */
    size_t nlog;
    const dk_body_kv *labels; /* Labels members (not secrets): replace or add */
    size_t nlabels;
    const dk_mount *mounts; /* HostConfig.Mounts: bind mounts appended to the client's */
    size_t nmounts;
} dk_create_edit;

/* Parses a create body (at most DK_CREATE_BODY_MAX bytes) into *out (free
 * with es_json_free_secret: the client's own Env is in it). 0, -EINVAL (not
 * a JSON object, or past a limit; err says which, quoting nothing of the
 * body), -ENOMEM. */
int dk_create_body_parse(const char *body, size_t len, es_json **out, char *err, size_t errlen);

/* The member of obj named key as Go's decoder finds it (case-insensitive,
 * the last one); NULL when absent or obj is not an object. */
const es_json *dk_create_body_member(const es_json *obj, const char *key);
/* Config.Labels ("Labels" at the top), an object, or NULL. */
const es_json *dk_create_body_labels(const es_json *doc);
/* HostConfig.LogConfig.Type, or NULL when not given (the daemon's default). */
const char *dk_create_body_log_type(const es_json *doc);
/* Image, or NULL. */
const char *dk_create_body_image(const es_json *doc);

/* Writes doc with ed applied into out (initialised by the caller; release it
 * with es_buf_free_secret). 0, -EINVAL (a value holding a NUL byte, or text
 * that is not UTF-8: err names the key), -EMSGSIZE (past out's maximum),
 * -ENOMEM. */
int dk_create_body_rewrite(const es_json *doc, const dk_create_edit *ed, es_buf *out, char *err,
                           size_t errlen);

#endif

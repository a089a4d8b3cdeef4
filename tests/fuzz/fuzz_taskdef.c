/* Fuzzes RegisterTaskDefinition parsing and validation; whatever is accepted
 * must write back (request and describe shapes) and parse again to the same
 * request text, and a RunTask override may be parsed against it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/secrets/envfile.h"
#include "agent/tasks/taskdef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    ag_taskdef *td = NULL;
    ag_td_error e;
    if (ag_taskdef_parse((const char *)data, size, &ctx, &td, &e) != 0) {
        if (!e.code || !e.message[0])
            __builtin_trap();
        return 0;
    }
    /* secret files (td_files.h): what was accepted keeps the parser's word */
    for (size_t i = 0; i < td->n_containers; i++) {
        const ag_container_def *c = &td->containers[i];
        for (size_t k = 0; k < c->n_files; k++) {
            const ag_secret_file *f = &c->files[k];
            size_t pl = strlen(f->path);
            if (f->secret >= c->n_secrets || f->path[0] != '/' || pl < 2 || pl > AG_FILE_PATH_MAX ||
                f->path[pl - 1] == '/' || strstr(f->path, "//") || strstr(f->path, "/../") ||
                f->mode > AG_FILE_MODE_MAX || ag_td_file_for(c, c->secrets[f->secret].name) != f)
                __builtin_trap();
            if (f->policy == AG_FILE_REFRESH) {
                const char *slash = strrchr(f->path, '/');
                size_t dl = slash == f->path ? 1 : (size_t)(slash - f->path);
                if (ag_td_files_refresh_dir_refused(f->path, dl))
                    __builtin_trap();
            }
        }
    }
    /* volumes (td_volumes.h): every reference resolved, every port in range */
    for (size_t i = 0; i < td->n_containers; i++) {
        const ag_container_volumes *cv = &td->containers[i].cv;
        for (size_t k = 0; k < cv->n_mount_points; k++)
            if (cv->mount_points[k].volume >= td->n_volumes ||
                cv->mount_points[k].container_path[0] != '/')
                __builtin_trap();
        for (size_t k = 0; k < cv->n_volumes_from; k++)
            if (cv->volumes_from[k].container >= td->n_containers ||
                cv->volumes_from[k].container == i)
                __builtin_trap();
        for (size_t k = 0; k < cv->n_ports; k++) {
            const ag_port_mapping *p = &cv->ports[k];
            if (p->range ? (p->range_lo < 1 || p->range_hi > 65535 || p->range_lo >= p->range_hi)
                         : (p->container_port < 1 || p->container_port > 65535))
                __builtin_trap();
        }
    }
    /* expansions (td_expand.h): a valid prefix, a typed reference */
    for (size_t i = 0; i < td->n_containers; i++) {
        const ag_container_def *c = &td->containers[i];
        if (c->n_expands > AG_EXPAND_LABELS_MAX || (c->n_expands && !td->execution_role_arn))
            __builtin_trap();
        for (size_t k = 0; k < c->n_expands; k++) {
            const ag_secret_expand *x = &c->expands[k];
            if (!ag_td_expand_prefix_ok(x->prefix) || !x->ref ||
                x->ref->vf.kind != (x->ssm_path ? AG_VF_SSM : AG_VF_SECRETSMANAGER) ||
                (x->ssm_path && x->ref->vf.ssm_name[0] != '/') ||
                (!x->ssm_path && x->ref->vf.json_key))
                __builtin_trap();
        }
    }
    /* environment files (td_envfiles.h): at most ECS's ten, each an S3
     * object ARN read into its parts */
    for (size_t i = 0; i < td->n_containers; i++) {
        const ag_container_def *c = &td->containers[i];
        if (c->n_env_files > AG_ENVFILES_MAX)
            __builtin_trap();
        for (size_t k = 0; k < c->n_env_files; k++) {
            const ag_env_file *f = &c->env_files[k];
            char bucket[AW_S3_BUCKET_MAX + 1], key[AW_S3_KEY_MAX + 1];
            if (aw_s3_parse_arn(f->value, bucket, key) != 0 || strcmp(bucket, f->bucket) != 0 ||
                strcmp(key, f->key) != 0 || !f->partition[0])
                __builtin_trap();
        }
    }
    /* restart policies (td_restart.h): ECS's ranges */
    for (size_t i = 0; i < td->n_containers; i++) {
        const ag_restart_policy *p = &td->containers[i].restart;
        if (p->n_ignored > AG_RESTART_IGNORED_MAX || p->period < AG_RESTART_PERIOD_MIN ||
            p->period > AG_RESTART_PERIOD_MAX || (p->enabled && !p->present))
            __builtin_trap();
    }
    es_buf a, b;
    es_buf_init(&a, 1 << 20);
    es_buf_init(&b, 1 << 20);
    es_jw w;
    es_jw_init(&w, &a);
    ag_taskdef_write_request(td, &w);
    int r = es_jw_finish(&w);
    if (r != 0)
        __builtin_trap(); /* whatever is accepted can be stored */
    {
        ag_taskdef *td2 = NULL;
        if (ag_taskdef_parse(a.data, a.len, &ctx, &td2, &e) != 0)
            __builtin_trap();
        es_jw_init(&w, &b);
        ag_taskdef_write_request(td2, &w);
        if (es_jw_finish(&w) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
            __builtin_trap();
        ag_taskdef_free(td2);
    }
    es_buf_reset(&b);
    es_jw_init(&w, &b);
    ag_taskdef_write_describe(td, "us-east-1", "123456789012", &w);
    (void)es_jw_finish(&w);
    /* the input may also hold an "overrides" member: parse it against td */
    es_json *j = NULL;
    if (es_json_parse((const char *)data, size, NULL, &j, NULL, 0) == 0) {
        ag_overrides *o = NULL;
        if (ag_overrides_parse(es_json_get(j, "overrides"), td, &o, &e) == 0)
            ag_overrides_free(o);
        es_json_free(j);
    }
    es_buf_free(&a);
    es_buf_free(&b);
    ag_taskdef_free(td);
    return 0;
}

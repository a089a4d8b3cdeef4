/* The cluster query language (placement.h): a bounded tokenizer, a
 * recursive-descent parser into a small tree, and its evaluation on a
 * container instance. Outside input: every limit named in placement.h. */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster/placement.h"
#include "common/alloc.h"
#include "common/buf.h"

typedef enum {
    T_END,
    T_WORD,
    T_QUOTED,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
    T_COMMA,
    T_OP
} tok_kind;

typedef struct tok {
    tok_kind kind;
    char text[CL_PL_VALUE_MAX + 1];
    size_t at; /* byte offset, for why */
} tok;

typedef enum { N_AND, N_OR, N_NOT, N_CMP } node_kind;
typedef enum {
    S_ATTRIBUTE,
    S_EC2_INSTANCE_ID,
    S_AGENT_CONNECTED,
    S_RUNNING_TASKS,
} subject;
typedef enum {
    OP_EQ,
    OP_NE,
    OP_EXISTS,
    OP_NOT_EXISTS,
    OP_IN,
    OP_NOT_IN,
    OP_MATCH,
    OP_NOT_MATCH,
    OP_GT,
    OP_GE,
    OP_LT,
    OP_LE
} cmp_op;

typedef struct node {
    node_kind kind;
    int a, b; /* children (AND, OR: both; NOT: a) */
    subject subj;
    char attr[CL_ATTR_NAME_MAX + 1];
    cmp_op op;
    char **args;
    size_t n_args;
    regex_t re;
    bool has_re;
} node;

struct cl_pl_expr {
    node nodes[CL_PL_NODES_MAX];
    size_t n;
    int root;
};

typedef struct parser {
    const char *s;
    size_t len, pos;
    tok cur;
    cl_pl_expr *e;
    int depth;
    char *why;
    size_t whylen;
} parser;

static int fail(parser *p, const char *what)
{
    return es_errf(p->why, p->whylen, -EINVAL, "expression at byte %zu: %s", p->cur.at, what);
}

/* ---- tokens ----------------------------------------------------------- */

static bool word_char(char c)
{
    /* what attribute values and unquoted patterns hold; '|' and '&' are operators */
    return isalnum((unsigned char)c) || strchr("_-.:/*@$^?+{}\\", c) != NULL;
}

static int take_quoted(parser *p, tok *t)
{
    char q = p->s[p->pos++];
    size_t n = 0;
    while (p->pos < p->len && p->s[p->pos] != q) {
        if (n == CL_PL_VALUE_MAX)
            return fail(p, "a quoted value is too long");
        t->text[n++] = p->s[p->pos++];
    }
    if (p->pos >= p->len)
        return fail(p, "a quoted value does not end");
    p->pos++;
    t->text[n] = '\0';
    t->kind = T_QUOTED;
    return 0;
}

static int next(parser *p)
{
    tok *t = &p->cur;
    while (p->pos < p->len && isspace((unsigned char)p->s[p->pos]))
        p->pos++;
    t->at = p->pos;
    t->text[0] = '\0';
    if (p->pos >= p->len) {
        t->kind = T_END;
        return 0;
    }
    char c = p->s[p->pos];
    static const char singles[] = "()[],";
    static const tok_kind kinds[] = {T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_COMMA};
    const char *sp = strchr(singles, c);
    if (sp && c) {
        t->kind = kinds[sp - singles];
        p->pos++;
        return 0;
    }
    if (c == '\'' || c == '"')
        return take_quoted(p, t);
    if (strchr("=!<>&|~", c)) {
        size_t n = 0;
        while (p->pos < p->len && n < 2 && strchr("=!<>&|~", p->s[p->pos]))
            t->text[n++] = p->s[p->pos++];
        t->text[n] = '\0';
        t->kind = T_OP;
        return 0;
    }
    size_t n = 0;
    while (p->pos < p->len && word_char(p->s[p->pos])) {
        if (n == CL_PL_VALUE_MAX)
            return fail(p, "a word is too long");
        t->text[n++] = p->s[p->pos++];
    }
    if (n == 0)
        return fail(p, "a character the language does not have");
    t->text[n] = '\0';
    t->kind = T_WORD;
    return 0;
}

static bool is_word(const tok *t, const char *w)
{
    return t->kind == T_WORD && strcasecmp(t->text, w) == 0;
}

static bool is_op(const tok *t, const char *o)
{
    return t->kind == T_OP && strcmp(t->text, o) == 0;
}

/* ---- the tree --------------------------------------------------------- */

static int new_node(parser *p, node_kind kind)
{
    if (p->e->n == CL_PL_NODES_MAX)
        return fail(p, "too many comparisons and operators");
    node *nd = &p->e->nodes[p->e->n];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    nd->a = nd->b = -1;
    return (int)p->e->n++;
}

static int parse_or(parser *p);

static int parse_subject(parser *p, node *nd)
{
    const char *w = p->cur.text;
    if (p->cur.kind != T_WORD)
        return fail(p, "a subject (attribute:NAME, ec2InstanceId, ...) was expected");
    if (strncmp(w, "attribute:", 10) == 0) {
        if (!cl_attr_name_ok(w + 10))
            return fail(p, "not an attribute's name");
        nd->subj = S_ATTRIBUTE;
        snprintf(nd->attr, sizeof nd->attr, "%s", w + 10);
    } else if (strcmp(w, "ec2InstanceId") == 0) {
        nd->subj = S_EC2_INSTANCE_ID;
    } else if (strcmp(w, "agentConnected") == 0) {
        nd->subj = S_AGENT_CONNECTED;
    } else if (strcmp(w, "runningTasksCount") == 0) {
        nd->subj = S_RUNNING_TASKS;
    } else {
        return fail(p, "a subject this agent does not support (attribute:NAME, ec2InstanceId, "
                       "agentConnected, runningTasksCount)");
    }
    return next(p);
}

/* The operator; '!' before exists / in is taken with the word. */
static int parse_op(parser *p, node *nd)
{
    static const struct {
        const char *sym, *word;
        cmp_op op;
    } ops[] = {{"==", "equals", OP_EQ},     {"!=", "not_equals", OP_NE},
               {NULL, "exists", OP_EXISTS}, {NULL, "not_exists", OP_NOT_EXISTS},
               {NULL, "in", OP_IN},         {NULL, "not_in", OP_NOT_IN},
               {"=~", "matches", OP_MATCH}, {"!~", "not_matches", OP_NOT_MATCH},
               {">", NULL, OP_GT},          {">=", NULL, OP_GE},
               {"<", NULL, OP_LT},          {"<=", NULL, OP_LE}};
    if (is_op(&p->cur, "!")) {
        int r = next(p);
        if (r < 0)
            return r;
        if (is_word(&p->cur, "exists") || is_word(&p->cur, "in")) {
            nd->op = is_word(&p->cur, "in") ? OP_NOT_IN : OP_NOT_EXISTS;
            return next(p);
        }
        return fail(p, "'!' before an operator takes exists or in");
    }
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if ((ops[i].sym && is_op(&p->cur, ops[i].sym)) ||
            (ops[i].word && is_word(&p->cur, ops[i].word))) {
            nd->op = ops[i].op;
            return next(p);
        }
    return fail(p, "an operator (==, !=, exists, in, =~, >, ...) was expected");
}

static int add_arg(parser *p, node *nd)
{
    if (p->cur.kind != T_WORD && p->cur.kind != T_QUOTED)
        return fail(p, "a value was expected");
    if (nd->n_args == CL_PL_LIST_MAX)
        return fail(p, "too many values in a list");
    if (!nd->args && !(nd->args = es_calloc(CL_PL_LIST_MAX, sizeof *nd->args)))
        return -ENOMEM;
    if (!(nd->args[nd->n_args] = es_strdup(p->cur.text)))
        return -ENOMEM;
    nd->n_args++;
    return next(p);
}

static int parse_args(parser *p, node *nd)
{
    int r;
    if (nd->op == OP_EXISTS || nd->op == OP_NOT_EXISTS)
        return 0;
    if (nd->op != OP_IN && nd->op != OP_NOT_IN)
        return add_arg(p, nd);
    if (p->cur.kind != T_LBRACK)
        return fail(p, "in takes a list: [a, b, ...]");
    if ((r = next(p)) < 0)
        return r;
    for (;;) {
        if ((r = add_arg(p, nd)) < 0)
            return r;
        if (p->cur.kind == T_RBRACK)
            return next(p);
        if (p->cur.kind != T_COMMA)
            return fail(p, "a list's values are separated by commas and end with ]");
        if ((r = next(p)) < 0)
            return r;
    }
}

static int compile_re(parser *p, node *nd)
{
    if (nd->op != OP_MATCH && nd->op != OP_NOT_MATCH)
        return 0;
    char anchored[CL_PL_VALUE_MAX + 8];
    snprintf(anchored, sizeof anchored, "^(%s)$", nd->args[0]);
    if (regcomp(&nd->re, anchored, REG_EXTENDED | REG_NOSUB) != 0)
        return fail(p, "not a regular expression");
    nd->has_re = true;
    return 0;
}

static int parse_cmp(parser *p)
{
    int i = new_node(p, N_CMP), r;
    if (i < 0)
        return i;
    node *nd = &p->e->nodes[i];
    if ((r = parse_subject(p, nd)) < 0 || (r = parse_op(p, nd)) < 0 ||
        (r = parse_args(p, nd)) < 0 || (r = compile_re(p, nd)) < 0)
        return r;
    return i;
}

static int parse_unary(parser *p)
{
    int r;
    if (++p->depth > CL_PL_DEPTH_MAX)
        return fail(p, "nested too deep");
    if (is_word(&p->cur, "not") || is_op(&p->cur, "!")) {
        int i = new_node(p, N_NOT);
        if (i < 0 || (r = next(p)) < 0 || (r = parse_unary(p)) < 0)
            return i < 0 ? i : r;
        p->e->nodes[i].a = r;
        p->depth--;
        return i;
    }
    if (p->cur.kind == T_LPAREN) {
        if ((r = next(p)) < 0 || (r = parse_or(p)) < 0)
            return r;
        if (p->cur.kind != T_RPAREN)
            return fail(p, "a ( is not closed");
        int inner = r;
        if ((r = next(p)) < 0)
            return r;
        p->depth--;
        return inner;
    }
    r = parse_cmp(p);
    p->depth--;
    return r;
}

static int parse_binary(parser *p, node_kind kind, const char *word, const char *sym)
{
    int left = kind == N_OR ? parse_binary(p, N_AND, "and", "&&") : parse_unary(p);
    while (left >= 0 && (is_word(&p->cur, word) || is_op(&p->cur, sym))) {
        int i = new_node(p, kind), r;
        if (i < 0 || (r = next(p)) < 0)
            return i < 0 ? i : r;
        int right = kind == N_OR ? parse_binary(p, N_AND, "and", "&&") : parse_unary(p);
        if (right < 0)
            return right;
        p->e->nodes[i].a = left;
        p->e->nodes[i].b = right;
        left = i;
    }
    return left;
}

static int parse_or(parser *p)
{
    return parse_binary(p, N_OR, "or", "||");
}

void cl_pl_expr_free(cl_pl_expr *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++) {
        node *nd = &e->nodes[i];
        for (size_t j = 0; j < nd->n_args; j++)
            es_free(nd->args[j]);
        es_free(nd->args);
        if (nd->has_re)
            regfree(&nd->re);
    }
    es_free(e);
}

int cl_pl_expr_compile(const char *text, cl_pl_expr **out, char *why, size_t whylen)
{
    size_t len = strlen(text);
    if (len == 0 || len > CL_PL_EXPR_MAX)
        return es_errf(why, whylen, -EINVAL, "an expression is 1 to %d bytes", CL_PL_EXPR_MAX);
    cl_pl_expr *e = es_calloc(1, sizeof *e);
    if (!e)
        return es_errf(why, whylen, -ENOMEM, "out of memory");
    parser p = {.s = text, .len = len, .e = e, .why = why, .whylen = whylen};
    int r = next(&p);
    if (r == 0)
        r = parse_or(&p);
    if (r >= 0 && p.cur.kind != T_END)
        r = fail(&p, "more after the expression");
    if (r < 0) {
        if (r == -ENOMEM)
            es_errf(why, whylen, -ENOMEM, "out of memory");
        cl_pl_expr_free(e);
        return r;
    }
    e->root = r;
    *out = e;
    return 0;
}

/* ---- evaluation ------------------------------------------------------- */

/* The subject's value on in; NULL when it has none (an absent attribute). */
static const char *subject_value(const node *nd, const cl_instance *in, char *buf, size_t len)
{
    switch (nd->subj) {
    case S_ATTRIBUTE:
        return cl_instance_attr(in, nd->attr);
    case S_EC2_INSTANCE_ID:
        return in->host_id[0] ? in->host_id : NULL;
    case S_AGENT_CONNECTED:
        return in->agent_connected ? "true" : "false";
    case S_RUNNING_TASKS:
        snprintf(buf, len, "%lld", (long long)in->running_tasks);
        return buf;
    }
    return NULL;
}

static bool number(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return *s && !*end;
}

static int order(const char *a, const char *b)
{
    double x, y;
    if (number(a, &x) && number(b, &y))
        return x < y ? -1 : x > y;
    return strcmp(a, b);
}

static bool in_list(const node *nd, const char *v)
{
    for (size_t i = 0; i < nd->n_args; i++)
        if (strcmp(nd->args[i], v) == 0)
            return true;
    return false;
}

static bool eval_cmp(const node *nd, const cl_instance *in)
{
    char buf[32];
    const char *v = subject_value(nd, in, buf, sizeof buf);
    if (nd->op == OP_EXISTS || nd->op == OP_NOT_EXISTS)
        return (v != NULL) == (nd->op == OP_EXISTS);
    if (!v) /* only the negations hold for a value that is not there */
        return nd->op == OP_NE || nd->op == OP_NOT_IN || nd->op == OP_NOT_MATCH;
    switch (nd->op) {
    case OP_EQ:
        return strcmp(v, nd->args[0]) == 0;
    case OP_NE:
        return strcmp(v, nd->args[0]) != 0;
    case OP_IN:
        return in_list(nd, v);
    case OP_NOT_IN:
        return !in_list(nd, v);
    case OP_MATCH:
        return regexec(&nd->re, v, 0, NULL, 0) == 0;
    case OP_NOT_MATCH:
        return regexec(&nd->re, v, 0, NULL, 0) != 0;
    case OP_GT:
        return order(v, nd->args[0]) > 0;
    case OP_GE:
        return order(v, nd->args[0]) >= 0;
    case OP_LT:
        return order(v, nd->args[0]) < 0;
    case OP_LE:
        return order(v, nd->args[0]) <= 0;
    default:
        return false;
    }
}

/* Recursive: at most CL_PL_NODES_MAX deep (the tree has no more nodes). */
static bool eval(const cl_pl_expr *e, int i, const cl_instance *in)
{
    const node *nd = &e->nodes[i];
    switch (nd->kind) {
    case N_AND:
        return eval(e, nd->a, in) && eval(e, nd->b, in);
    case N_OR:
        return eval(e, nd->a, in) || eval(e, nd->b, in);
    case N_NOT:
        return !eval(e, nd->a, in);
    case N_CMP:
        return eval_cmp(nd, in);
    }
    return false;
}

bool cl_pl_expr_eval(const cl_pl_expr *e, const cl_instance *in)
{
    return eval(e, e->root, in);
}

bool cl_pl_expr_has_attributes(const cl_pl_expr *e, const cl_instance *in)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->nodes[i].kind == N_CMP && e->nodes[i].subj == S_ATTRIBUTE &&
            e->nodes[i].op != OP_NOT_EXISTS && e->nodes[i].op != OP_EXISTS &&
            !cl_instance_attr(in, e->nodes[i].attr))
            return false;
    return true;
}

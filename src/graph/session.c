/* Sessions: choose the nodes the outputs need, infer concrete shapes from the
 * fed tensors, plan one arena by liveness (first fit), then run the kernels
 * in order. Planning happens again only when a fed shape changes, and reuses
 * the arena when it is large enough, so a steady run allocates nothing. */
#include "core/tensor_impl.h"
#include "graph/graph_impl.h"
#include <stdlib.h>
#include <string.h>

enum { ST_EXT = 0, ST_ALIAS = 1, ST_ARENA = 2 };

typedef struct slot {
    lm_node *node;
    int kind;
    int root; /* slot owning the memory (itself unless an alias) */
    int last_use;
    int ndim;
    int64_t shape[LM_MAX_DIMS];
    size_t bytes, aux_bytes, ws_bytes;
    size_t off, ws_off;
    void *data, *aux;
    lm_tensor *feed; /* placeholders */
    void *bound;     /* caller memory the output is written to (lm_session_bind_output) */
} slot;

struct lm_session {
    lm_graph *g;
    lm_ctx *ctx;
    int n_out;
    int *out_slot;
    lm_tensor **out_view;
    int n;
    slot *slots;
    int *slot_of; /* node id -> slot, -1 if not needed */
    int n_ids;
    lm_kcall *calls;
    lm_kenv env;
    char *arena;
    size_t arena_cap, arena_used;
    bool planned, training;
    uint64_t steps;
    /* first-fit allocator scratch, sized once */
    size_t *live_off, *live_end;
    int *live_slot, n_live;
};

static size_t align_up(size_t n) {
    return (n + LM_ALIGN - 1) / LM_ALIGN * LM_ALIGN;
}

void lm_session_free(lm_session *s) {
    if (!s) return;
    for (int i = 0; i < s->n_out; i++) lm_tensor_free(s->out_view[i]);
    free(s->out_view);
    free(s->out_slot);
    free(s->slots);
    free(s->slot_of);
    free(s->calls);
    free(s->live_off);
    free(s->live_end);
    free(s->live_slot);
    lm_afree(s->arena);
    free(s);
}

lm_session *lm_session_new(lm_graph *g, int n_out, lm_node *const *outputs) {
    if (!g) return NULL;
    if (g->err) {
        lm_fail(g->ctx, g->err, "%s", g->errmsg);
        return NULL;
    }
    if (n_out <= 0 || !outputs) {
        lm_fail(g->ctx, LM_ERR_ARG, "session: no outputs given");
        return NULL;
    }
    for (int i = 0; i < n_out; i++)
        if (!outputs[i] || outputs[i]->g != g) {
            lm_fail(g->ctx, LM_ERR_ARG, "session: output %d is NULL or from another graph", i);
            return NULL;
        }
    lm_session *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->g = g;
    s->ctx = g->ctx;
    s->n_ids = g->n_nodes;
    s->slot_of = malloc((size_t)s->n_ids * sizeof *s->slot_of);
    char *need = calloc((size_t)s->n_ids, 1);
    if (!s->slot_of || !need) {
        free(need);
        goto oom;
    }
    for (int i = 0; i < n_out; i++) need[outputs[i]->id] = 1;
    for (int i = s->n_ids - 1; i >= 0; i--)
        if (need[i])
            for (int j = 0; j < g->nodes[i]->n_in; j++) need[g->nodes[i]->in[j]->id] = 1;
    for (int i = 0; i < s->n_ids; i++) {
        s->slot_of[i] = need[i] ? s->n : -1;
        s->n += need[i];
    }
    free(need);
    s->slots = calloc((size_t)s->n, sizeof *s->slots);
    s->calls = calloc((size_t)s->n, sizeof *s->calls);
    s->live_off = malloc((size_t)(2 * s->n + 1) * sizeof *s->live_off);
    s->live_end = malloc((size_t)(2 * s->n + 1) * sizeof *s->live_end);
    s->live_slot = malloc((size_t)(2 * s->n + 1) * sizeof *s->live_slot);
    s->n_out = n_out;
    s->out_slot = malloc((size_t)n_out * sizeof *s->out_slot);
    s->out_view = calloc((size_t)n_out, sizeof *s->out_view);
    if (!s->slots || !s->calls || !s->live_off || !s->live_end || !s->live_slot || !s->out_slot ||
        !s->out_view)
        goto oom;
    for (int i = 0; i < s->n_ids; i++) {
        int k = s->slot_of[i];
        if (k < 0) continue;
        slot *sl = &s->slots[k];
        sl->node = g->nodes[i];
        const lm_op_def *def = lm_op_get(sl->node->op);
        sl->kind = (def->flags & LM_OPF_SOURCE)  ? ST_EXT
                   : (def->flags & LM_OPF_ALIAS) ? ST_ALIAS
                                                 : ST_ARENA;
        sl->root = sl->kind == ST_ALIAS ? s->slots[s->slot_of[sl->node->in[0]->id]].root : k;
    }
    for (int i = 0; i < n_out; i++) {
        s->out_slot[i] = s->slot_of[outputs[i]->id];
        int64_t zero = 0;
        float dummy;
        s->out_view[i] = lm_tensor_wrap(g->ctx, LM_F32, (lm_shape){1, {1}}, &dummy);
        if (!s->out_view[i]) goto oom;
        lm_tensor_rebind(s->out_view[i], NULL, LM_F32, 1, &zero);
    }
    return s;
oom:
    lm_session_free(s);
    lm_fail(g->ctx, LM_ERR_OOM, "session: out of memory");
    return NULL;
}

lm_status lm_session_feed(lm_session *s, lm_node *ph, lm_tensor *value) {
    if (!s) return LM_ERR_ARG;
    if (!ph || !value) return lm_fail(s->ctx, LM_ERR_ARG, "feed: placeholder or value is NULL");
    if (ph->g != s->g || ph->op != LM_OP_PLACEHOLDER)
        return lm_fail(s->ctx, LM_ERR_ARG, "feed: %s is not a placeholder of this graph", ph->name);
    char a[96], b[96];
    lm_shape vs = lm_tensor_shape(value);
    bool ok = vs.ndim == ph->shape.ndim;
    for (int i = 0; ok && i < vs.ndim; i++)
        if (ph->shape.dims[i] >= 0 && ph->shape.dims[i] != vs.dims[i]) ok = false;
    if (!ok)
        return lm_fail(s->ctx, LM_ERR_SHAPE, "feed: %s expects shape %s, got %s", ph->name,
                       lm_shp(ph->shape, a), lm_shp(vs, b));
    if (value->dt != ph->dt)
        return lm_fail(s->ctx, LM_ERR_DTYPE, "feed: %s expects %s, got %s", ph->name,
                       lm_dtype_name(ph->dt), lm_dtype_name(value->dt));
    if (!lm_tensor_is_contiguous(value))
        return lm_fail(s->ctx, LM_ERR_ARG, "feed: the tensor for %s is not contiguous", ph->name);
    int k = ph->id < s->n_ids ? s->slot_of[ph->id] : -1;
    if (k < 0) return LM_OK; /* not needed by this session's outputs */
    slot *sl = &s->slots[k];
    /* Compare with the planned shape (the previous tensor may be gone). */
    bool same = s->planned && sl->ndim == value->ndim;
    for (int i = 0; same && i < value->ndim; i++)
        if (sl->shape[i] != value->shape[i]) same = false;
    if (!same) s->planned = false;
    sl->feed = value;
    return LM_OK;
}

lm_status lm_session_set_training(lm_session *s, bool training) {
    if (!s) return LM_ERR_ARG;
    s->training = training;
    return LM_OK;
}

/* Concrete shapes of every slot, and the bytes each needs. */
static lm_status plan_shapes(lm_session *s) {
    char err[1024];
    for (int k = 0; k < s->n; k++) {
        slot *sl = &s->slots[k];
        lm_node *nd = sl->node;
        const lm_op_def *def = lm_op_get(nd->op);
        lm_kcall *c = &s->calls[k];
        memset(c, 0, sizeof *c);
        c->node = nd;
        c->p = &nd->p;
        c->env = &s->env;
        lm_shape out;
        if (nd->op == LM_OP_PLACEHOLDER) {
            if (!sl->feed)
                return lm_fail(s->ctx, LM_ERR_STATE, "run: placeholder %s was not fed", nd->name);
            out = lm_tensor_shape(sl->feed);
        } else if (def->flags & LM_OPF_SOURCE) {
            out = lm_tensor_shape(nd->value);
        } else {
            lm_infer in;
            memset(&in, 0, sizeof in);
            err[0] = '\0';
            in.node = nd;
            in.p = &nd->p;
            in.n_in = nd->n_in;
            in.op_name = def->name;
            in.err = err;
            in.errlen = sizeof err;
            for (int j = 0; j < nd->n_in; j++) {
                slot *x = &s->slots[s->slot_of[nd->in[j]->id]];
                in.in[j].ndim = x->ndim;
                memcpy(in.in[j].dims, x->shape, sizeof x->shape);
                in.in_dt[j] = nd->in[j]->dt;
            }
            lm_status st = def->infer(&in);
            if (st) return lm_fail(s->ctx, st, "%s", err);
            out = in.out;
            for (int i = 0; i < out.ndim; i++)
                if (out.dims[i] < 0)
                    return lm_fail(s->ctx, LM_ERR_SHAPE, "%s: output shape unknown at run time",
                                   nd->name);
        }
        sl->ndim = out.ndim;
        memcpy(sl->shape, out.dims, sizeof sl->shape);
        int64_t numel = lm_shape_numel(out);
        if (numel < 0 || lm_mul_size((size_t)numel, lm_dtype_size(nd->dt), &sl->bytes))
            return lm_fail(s->ctx, LM_ERR_OOM, "%s: output too large", nd->name);
        /* Kernel view of the output and inputs (pointers come later). */
        c->out.dt = nd->dt;
        c->out.ndim = sl->ndim;
        memcpy(c->out.d, sl->shape, sizeof sl->shape);
        c->out.n = numel;
        c->n_in = nd->n_in;
        for (int j = 0; j < nd->n_in; j++) {
            slot *x = &s->slots[s->slot_of[nd->in[j]->id]];
            c->in[j].dt = nd->in[j]->dt;
            c->in[j].ndim = x->ndim;
            memcpy(c->in[j].d, x->shape, sizeof x->shape);
            c->in[j].n = 1;
            for (int i = 0; i < x->ndim; i++) c->in[j].n *= x->shape[i];
        }
        sl->aux_bytes = def->aux_bytes ? def->aux_bytes(c) : 0;
        sl->ws_bytes = def->ws_bytes ? def->ws_bytes(c) : 0;
    }
    return LM_OK;
}

/* First fit among live blocks kept sorted by offset. */
static size_t arena_alloc(lm_session *s, size_t bytes, int owner, int end) {
    size_t off = 0;
    int pos = 0;
    bytes = align_up(bytes ? bytes : 1);
    for (; pos < s->n_live; pos++) {
        if (s->live_off[pos] >= off + bytes) break; /* the gap before this block fits */
        if (align_up(s->live_end[pos]) > off) off = align_up(s->live_end[pos]);
    }
    memmove(s->live_off + pos + 1, s->live_off + pos, (size_t)(s->n_live - pos) * sizeof(size_t));
    memmove(s->live_end + pos + 1, s->live_end + pos, (size_t)(s->n_live - pos) * sizeof(size_t));
    memmove(s->live_slot + pos + 1, s->live_slot + pos, (size_t)(s->n_live - pos) * sizeof(int));
    s->live_off[pos] = off;
    s->live_end[pos] = off + bytes;
    s->live_slot[pos] = owner * 2 + end; /* end: 0 output block, 1 workspace */
    s->n_live++;
    if (off + bytes > s->arena_used) s->arena_used = off + bytes;
    return off;
}

static void arena_release(lm_session *s, int tag) {
    for (int i = 0; i < s->n_live; i++)
        if (s->live_slot[i] == tag) {
            memmove(s->live_off + i, s->live_off + i + 1,
                    (size_t)(s->n_live - i - 1) * sizeof(size_t));
            memmove(s->live_end + i, s->live_end + i + 1,
                    (size_t)(s->n_live - i - 1) * sizeof(size_t));
            memmove(s->live_slot + i, s->live_slot + i + 1,
                    (size_t)(s->n_live - i - 1) * sizeof(int));
            s->n_live--;
            return;
        }
}

static void resolve(lm_session *s);

static lm_status plan(lm_session *s) {
    lm_status st = plan_shapes(s);
    if (st) return st;
    /* Liveness: a block lives until the last consumer of any alias of it. */
    for (int k = 0; k < s->n; k++) s->slots[k].last_use = k;
    for (int k = 0; k < s->n; k++) {
        lm_node *nd = s->slots[k].node;
        for (int j = 0; j < nd->n_in; j++) {
            slot *root = &s->slots[s->slots[s->slot_of[nd->in[j]->id]].root];
            if (root->last_use < k) root->last_use = k;
        }
    }
    for (int i = 0; i < s->n_out; i++) s->slots[s->slots[s->out_slot[i]].root].last_use = s->n;

    s->n_live = 0;
    s->arena_used = 0;
    for (int k = 0; k < s->n; k++) {
        slot *sl = &s->slots[k];
        if (sl->kind == ST_ARENA && !(sl->bound && !sl->aux_bytes))
            sl->off = arena_alloc(s, align_up(sl->bytes) + sl->aux_bytes, k, 0);
        if (sl->ws_bytes) {
            sl->ws_off = arena_alloc(s, sl->ws_bytes, k, 1);
            arena_release(s, 2 * k + 1);
        }
        /* Free blocks whose last use is this node. */
        lm_node *nd = sl->node;
        for (int j = 0; j < nd->n_in; j++) {
            int r = s->slots[s->slot_of[nd->in[j]->id]].root;
            if (s->slots[r].last_use == k && s->slots[r].kind == ST_ARENA) arena_release(s, 2 * r);
        }
        if (sl->kind == ST_ARENA && sl->last_use == k && !sl->bound) arena_release(s, 2 * k);
    }
    if (s->arena_used > s->arena_cap) {
        char *a = lm_aalloc(s->arena_used);
        if (!a)
            return lm_fail(s->ctx, LM_ERR_OOM, "run: out of memory planning %zu bytes",
                           s->arena_used);
        lm_afree(s->arena);
        s->arena = a;
        s->arena_cap = s->arena_used;
    }
    resolve(s);
    s->planned = true;
    return LM_OK;
}

/* Addresses of every slot and kernel argument, from the plan and the feeds. */
static void resolve(lm_session *s) {
    for (int k = 0; k < s->n; k++) {
        slot *sl = &s->slots[k];
        lm_node *nd = sl->node;
        switch (sl->kind) {
        case ST_EXT:
            sl->data =
                nd->op == LM_OP_PLACEHOLDER ? lm_tensor_data(sl->feed) : lm_tensor_data(nd->value);
            sl->aux = NULL;
            break;
        case ST_ALIAS:
            sl->data = s->slots[sl->root].data;
            sl->aux = NULL;
            break;
        default:
            sl->data = sl->bound && !sl->aux_bytes ? sl->bound : s->arena + sl->off;
            sl->aux = sl->aux_bytes ? s->arena + sl->off + align_up(sl->bytes) : NULL;
        }
        lm_kcall *c = &s->calls[k];
        c->out.p = sl->data;
        c->aux = sl->aux;
        c->aux_bytes = sl->aux_bytes;
        c->ws = sl->ws_bytes ? s->arena + sl->ws_off : NULL;
        c->ws_bytes = sl->ws_bytes;
        for (int j = 0; j < nd->n_in; j++) {
            slot *x = &s->slots[s->slot_of[nd->in[j]->id]];
            c->in[j].p = x->data;
            c->in_aux[j] = x->aux;
        }
    }
    for (int i = 0; i < s->n_out; i++) {
        slot *sl = &s->slots[s->out_slot[i]];
        lm_tensor_rebind(s->out_view[i], sl->data, sl->node->dt, sl->ndim, sl->shape);
    }
}

lm_status lm_session_run(lm_session *s) {
    if (!s) return LM_ERR_ARG;
    if (s->g->n_nodes < s->n_ids)
        return lm_fail(s->ctx, LM_ERR_STATE, "run: the graph lost nodes since the session began");
    s->env.ctx = s->ctx;
    s->env.gemm = s->ctx->gemm;
    s->env.isa = s->ctx->isa;
    s->env.nthreads = s->ctx->nthreads;
    s->env.training = s->training;
    s->env.step = s->steps;
    if (!s->planned) {
        lm_status st = plan(s);
        if (st) return st;
        lm_fp_workers(s->ctx, s->env.nthreads);
    } else {
        /* Fed tensors may have moved (a rebind to another batch of the same shape). */
        for (int k = 0; k < s->n; k++) {
            slot *sl = &s->slots[k];
            if (sl->node->op == LM_OP_PLACEHOLDER && sl->data != lm_tensor_data(sl->feed)) {
                resolve(s);
                break;
            }
        }
    }
    unsigned fp = lm_fp_enter(s->ctx);
    for (int k = 0; k < s->n; k++) {
        slot *sl = &s->slots[k];
        /* An empty output has nothing to compute, and its buffers may be NULL. */
        if (sl->kind != ST_ARENA || s->calls[k].out.n == 0) continue;
        const lm_op_def *def = lm_op_get(sl->node->op);
        lm_status st = def->kernel[LM_BACKEND_CPU](&s->calls[k]);
        if (st) {
            lm_fp_leave(fp);
            return st;
        }
    }
    lm_fp_leave(fp);
    /* Bound outputs that could not be written in place are copied. */
    for (int i = 0; i < s->n_out; i++) {
        slot *sl = &s->slots[s->out_slot[i]];
        if (sl->bound && sl->data != sl->bound) memcpy(sl->bound, sl->data, sl->bytes);
    }
    s->steps++;
    return LM_OK;
}

lm_tensor *lm_session_output(lm_session *s, int i) {
    if (!s || i < 0 || i >= s->n_out) return NULL;
    return s->out_view[i];
}

size_t lm_session_arena_bytes(const lm_session *s) {
    return s ? s->arena_used : 0;
}

uint64_t lm_session_steps(const lm_session *s) {
    return s ? s->steps : 0;
}

lm_status lm_session_bind_output(lm_session *s, int i, void *dst, size_t bytes) {
    if (!s) return LM_ERR_ARG;
    if (i < 0 || i >= s->n_out) return lm_fail(s->ctx, LM_ERR_ARG, "bind_output: no output %d", i);
    slot *sl = &s->slots[s->out_slot[i]];
    const lm_node *nd = sl->node;
    for (int d = 0; d < nd->shape.ndim; d++)
        if (nd->shape.dims[d] < 0)
            return lm_fail(s->ctx, LM_ERR_SHAPE, "bind_output: %s has no static shape", nd->name);
    size_t want = (size_t)lm_shape_numel(nd->shape) * lm_dtype_size(nd->dt);
    if (bytes != want)
        return lm_fail(s->ctx, LM_ERR_ARG, "bind_output: %s needs %zu bytes, %zu given", nd->name,
                       want, bytes);
    sl->bound = dst;
    s->planned = false;
    return LM_OK;
}

lm_status lm_session_set_steps(lm_session *s, uint64_t steps) {
    if (!s) return LM_ERR_ARG;
    s->steps = steps;
    return LM_OK;
}
